"""What every route shares: the model, the way to run a batch, the limits, the metrics and the drain."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

from effnet.choices import MAX_PIXELS
from effnet.serve.metrics import Metrics

#: (images N,3,H,W, top-k, deadline on time.monotonic()) -> per image, its top-k predictions
Submit = Callable[[torch.Tensor, int, float], Awaitable[list[list[Any]]]]

DEFAULT_DEADLINE_S = 2.0


@dataclass
class ServeState:
    classifier: Any  # effnet.deploy.pipeline.Classifier: preprocess, classify_batch, classes, image_size, name
    submit: Submit
    metrics: Metrics = field(default_factory=Metrics)
    max_pixels: int = MAX_PIXELS
    deadline_s: float = DEFAULT_DEADLINE_S
    decode_pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(2, "effnet-decode"))
    ready: bool = False
    draining: bool = False
    _inflight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set_ready(self, ready: bool) -> None:
        self.ready = ready
        self.metrics.ready.set(1 if ready and not self.draining else 0)

    def start_drain(self) -> None:
        """Readiness turns 503 and new requests are refused; those already accepted go on."""
        self.draining = True
        self.metrics.ready.set(0)

    def enter(self) -> None:
        with self._lock:
            self._inflight += 1

    def leave(self) -> None:
        with self._lock:
            self._inflight -= 1

    @property
    def inflight(self) -> int:
        with self._lock:
            return self._inflight

    def wait_drained(self, timeout: float, idle: Callable[[], bool] = lambda: True) -> bool:
        """Block until no request is in flight (bounded by ``timeout`` seconds); True when drained."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.inflight == 0 and idle():
                return True
            time.sleep(0.02)
        return False
