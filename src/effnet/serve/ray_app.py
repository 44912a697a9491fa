"""The same routes on Ray Serve replicas, for more than one machine (``effnet serve --ray``; needs effnet[ray]).

Each replica loads the model and serves the Starlette app of :mod:`effnet.serve.app`; batching is
Ray Serve's ``@serve.batch`` around the same batch function as the one-process server
(:func:`effnet.serve.batcher.classify_requests`). Ray's proxy routes HTTP to the replicas and
answers 503 when ``max_queued_requests`` are waiting. Importable as a Ray Serve application::

    serve run effnet.serve.ray_app:app_builder weights=lite0 replicas=2

Across machines: ``ray start --head --port 6379`` on one, ``ray start --address HEAD:6379`` on the
others, then ``RAY_ADDRESS=HEAD:6379 effnet serve --ray --replicas 4 --host 0.0.0.0`` (docs/serving.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from ray import serve

from effnet.serve.batcher import RETRY_AFTER_S, classify_requests
from effnet.serve.limits import RequestError

APP_NAME = "effnet"


@serve.deployment(name="EffnetReplica", max_ongoing_requests=64)
@serve.ingress()
class EffnetReplica:
    def __init__(self, model: str | None, weights: str, backend: str = "eager", max_batch_size: int = 8,
                 max_delay_s: float = 0.002, deadline_s: float = 2.0, threads: int | None = None) -> None:
        import torch

        from effnet.deploy.pipeline import load_classifier
        from effnet.serve import warm_up
        from effnet.serve.state import ServeState

        if threads:
            torch.set_num_threads(threads)
        self.classifier = load_classifier(model, weights, backend)
        warm_up(self.classifier)
        self.classify.set_max_batch_size(max_batch_size)
        self.classify.set_batch_wait_timeout_s(max_delay_s)
        self.state = ServeState(self.classifier, self.submit, deadline_s=deadline_s)
        self.state.set_ready(True)

    def __serve_build_asgi_app__(self) -> Any:  # noqa: ANN401 - called by Ray Serve after __init__
        from effnet.serve.app import build_app

        return build_app(self.state)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.002)
    async def classify(self, requests: list[tuple[Any, int]]) -> list[list[list[Any]]]:
        # The model runs in a thread: the replica's event loop keeps accepting (and batching) requests.
        return await asyncio.to_thread(classify_requests, self.classifier, requests)

    async def submit(self, images: Any, top: int, deadline: float) -> list[list[Any]]:  # noqa: ANN401
        try:
            return await asyncio.wait_for(self.classify((images, top)), max(0.0, deadline - time.monotonic()) + 30)
        except TimeoutError:
            raise RequestError(503, "no answer from the model in time; retry later", RETRY_AFTER_S) from None

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()


def application(model: str | None, weights: str, *, backend: str = "eager", replicas: int = 1,
                max_batch_size: int = 8, max_delay_ms: float = 2.0, max_queue: int = 64, deadline_s: float = 2.0,
                num_cpus: float = 1, threads: int | None = None) -> Any:  # noqa: ANN401 - a Ray Serve Application
    """The bound deployment: ``replicas`` copies, one CPU each unless ``num_cpus`` says otherwise."""
    return EffnetReplica.options(num_replicas=replicas, max_queued_requests=max_queue,
                                 ray_actor_options={"num_cpus": num_cpus}).bind(
        model, weights, backend, max_batch_size, max_delay_ms / 1000, deadline_s, threads)


def app_builder(args: dict[str, str]) -> Any:  # noqa: ANN401 - for `serve run effnet.serve.ray_app:app_builder`
    return application(args.get("model"), args.get("weights", "lite0"), backend=args.get("backend", "eager"),
                       replicas=int(args.get("replicas", 1)), max_batch_size=int(args.get("max_batch_size", 8)))


def start(app: Any, host: str = "127.0.0.1", port: int = 8000) -> None:  # noqa: ANN401
    """Serve ``app`` on Ray's HTTP proxy (on the head node only) at host:port; returns once it is running."""
    serve.start(http_options={"host": host, "port": port}, proxy_location="HeadOnly")
    serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)


def serve_with_ray(args: argparse.Namespace) -> int:
    """`effnet serve --ray`: join RAY_ADDRESS's cluster (or start one here), serve until SIGTERM/Ctrl-C."""
    import ray

    port = args.port or _free_port(args.host)
    ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=False)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        start(application(args.model, args.weights, backend=args.backend, replicas=args.replicas,
                          max_batch_size=args.max_batch_size, max_delay_ms=args.max_queue_delay_ms,
                          max_queue=args.max_queue, deadline_s=args.deadline_ms / 1000, threads=args.threads),
              args.host, port)
        print(f"effnet serve: {args.replicas} Ray Serve replica(s) on http://{args.host}:{port}/ "
              "(Ctrl-C or SIGTERM stops)", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
        print("effnet serve: stopping the Ray Serve application", file=sys.stderr, flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
