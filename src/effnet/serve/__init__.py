"""``effnet serve``: one model behind HTTP (Starlette on uvicorn), dynamically batched.

:func:`local_app` wires a classifier (see :mod:`effnet.deploy.pipeline`) to the routes through a
:class:`~effnet.serve.batcher.Batcher` on one inference thread; :mod:`effnet.serve.ray_app` wires the
same routes to Ray Serve replicas instead. Modules: ``limits`` (what a request may carry),
``requests`` (reading one), ``batcher``, ``oip`` (KServe v2 routes), ``app`` (the rest and the
middleware), ``metrics``, ``server`` (uvicorn and the drain), ``static/index.html`` (the page).
"""

from __future__ import annotations

from typing import Any

from effnet.serve.app import build_app
from effnet.serve.batcher import Batcher
from effnet.serve.metrics import Metrics
from effnet.serve.state import DEFAULT_DEADLINE_S, ServeState


def local_app(classifier: Any, *, max_batch_size: int = 8, max_delay_ms: float = 2.0, max_queue: int = 64,  # noqa: ANN401
              deadline_s: float = DEFAULT_DEADLINE_S, max_pixels: int | None = None,
              ) -> tuple[Any, ServeState, Batcher]:
    """(ASGI app, its state, its batcher) for ``classifier``; the state is ready (warm the model first)."""
    metrics = Metrics()
    batcher = Batcher(classifier, metrics, max_batch_size, max_delay_ms / 1000, max_queue)
    state = ServeState(classifier, batcher.submit, metrics, deadline_s=deadline_s)
    if max_pixels is not None:
        state.max_pixels = max_pixels
    state.set_ready(True)
    return build_app(state), state, batcher


def warm_up(classifier: Any) -> None:  # noqa: ANN401
    """One batch through the model before readiness (compile and onnxruntime do their first-call work here)."""
    import torch

    classifier.classify_batch(torch.zeros(1, 3, classifier.image_size, classifier.image_size), 1)
