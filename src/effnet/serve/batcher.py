"""Dynamic batching: requests from the event loop, batches on ONE inference thread.

A batch leaves as soon as the model is free, holding at most ``max_delay_s`` for more requests
up to ``max_batch_size`` images (a lone request never waits longer than that). The queue is
bounded: a full queue, a deadline that passes in the queue, or a closing server is answered
503 with ``Retry-After``, never by queueing more. :func:`classify_requests` is the batch function
itself, shared with the Ray Serve deployment (``@serve.batch`` calls it there).
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from effnet.serve.limits import RequestError
from effnet.serve.metrics import Metrics

RETRY_AFTER_S = 1.0


def classify_requests(classifier: Any, requests: Sequence[tuple[torch.Tensor, int]]) -> list[list[list[Any]]]:  # noqa: ANN401
    """The batch function: each request's images (N,3,H,W) and top-k -> its predictions, in one model call."""
    batch = torch.cat([images for images, _ in requests])
    predictions = classifier.classify_batch(batch, max(top for _, top in requests))
    out, start = [], 0
    for images, top in requests:
        out.append([row[:top] for row in predictions[start:start + len(images)]])
        start += len(images)
    return out


@dataclass
class Job:
    images: torch.Tensor
    top: int
    deadline: float  # time.monotonic()
    finish: Callable[[Any], None]  # called once, from the inference thread, with the predictions or an exception
    enqueued: float = field(default_factory=time.monotonic)
    started: bool = False  # taken into a batch (guarded by the batcher's lock)
    cancelled: bool = False  # the client left or the deadline passed: drop it unrun


class Batcher:
    def __init__(self, classifier: Any, metrics: Metrics, max_batch_size: int = 8, max_delay_s: float = 0.002,  # noqa: ANN401
                 max_queue: int = 64) -> None:
        self.classifier = classifier
        self.metrics = metrics
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.max_queue = max_queue
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name="effnet-inference", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ event-loop side
    async def submit(self, images: torch.Tensor, top: int, deadline: float) -> list[list[Any]]:
        """Queue ``images`` and wait for their predictions (RequestError 503 when refused or too late)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()

        def finish(result: Any) -> None:  # noqa: ANN401 - predictions or an exception
            loop.call_soon_threadsafe(_settle, future, result)

        # A request cancelled after its batch started still gets its result: mark it read, not "never retrieved".
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        job = Job(images, top, deadline, finish)
        self._put(job)
        try:
            # Past the deadline a job still in the queue is dropped; one already running finishes.
            await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            if self._cancel_unstarted(job):
                raise RequestError(503, "the deadline passed while the request waited for the model; retry later",
                                   RETRY_AFTER_S) from None
        except asyncio.CancelledError:  # the client went away
            if self._cancel_unstarted(job):
                self.metrics.dropped.inc()
            raise
        return await future

    def _put(self, job: Job) -> None:
        with self._cond:
            if self._closing:
                raise RequestError(503, "the server is shutting down; retry on another instance", RETRY_AFTER_S)
            if len(self._queue) >= self.max_queue:
                raise RequestError(503, f"the server is busy ({self.max_queue} requests queued); retry later",
                                   RETRY_AFTER_S)
            self._queue.append(job)
            self.metrics.queue_depth.set(len(self._queue))
            self._cond.notify()

    def _cancel_unstarted(self, job: Job) -> bool:
        with self._cond:
            if job.started:
                return False
            job.cancelled = True
            return True

    @property
    def idle(self) -> bool:
        with self._cond:
            return not self._queue and not self._busy

    def close(self, timeout: float) -> bool:
        """Refuse new work, finish what is queued; True when the thread ended within ``timeout`` seconds."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ------------------------------------------------------------------ inference thread
    def _loop(self) -> None:
        while (jobs := self._next_batch()) is not None:
            self._run(jobs)

    def _next_batch(self) -> list[Job] | None:
        with self._cond:
            self._busy = False
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait(0.5)  # bounded: re-checks _closing
            jobs: list[Job] = []
            size, leave_at = 0, time.monotonic() + self.max_delay_s
            while True:
                while self._queue and (not jobs or size + len(self._queue[0].images) <= self.max_batch_size):
                    job = self._queue.popleft()
                    if job.cancelled:
                        continue
                    job.started = True
                    jobs.append(job)
                    size += len(job.images)
                remaining = leave_at - time.monotonic()
                if size >= self.max_batch_size or self._queue or remaining <= 0 or self._closing:
                    break
                self._cond.wait(remaining)
            self._busy = bool(jobs)
            self.metrics.queue_depth.set(len(self._queue))
            return jobs

    def _run(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        now = time.monotonic()
        for job in jobs:
            self.metrics.queue_wait.observe(now - job.enqueued)
        self.metrics.batch_size.observe(sum(len(job.images) for job in jobs))
        try:
            with self.metrics.inference.time():
                results = classify_requests(self.classifier, [(job.images, job.top) for job in jobs])
        except Exception as exc:  # the model failed: every request of the batch gets a 500, the server goes on
            error = RequestError(500, f"the model failed on this batch: {type(exc).__name__}: {exc}")
            for job in jobs:
                job.finish(error)
            return
        for job, result in zip(jobs, results):
            job.finish(result)


def _settle(future: asyncio.Future, result: Any) -> None:  # noqa: ANN401
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
