"""Ctrl-C during training: the run stops at a step boundary, saves, and says how to resume."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C: the run stopped at a step boundary, saved a checkpoint, and says how to resume."""


def ignore_sigint(worker_id: int) -> None:
    """Loader workers leave Ctrl-C to the main process, which stops the run at a step boundary."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def stop_on_sigint(request_stop: Callable[[], None], distributed: bool) -> Iterator[None]:
    """The first Ctrl-C calls ``request_stop`` (the loop stops at the next step boundary and saves);
    a second raises KeyboardInterrupt at once.

    Not under torchrun (``distributed``): ranks would see the signal at different steps and wait on
    each other. Nor off the main thread or under a handler someone else installed."""
    if (distributed or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return

    def first_ctrl_c(signum: int, frame: Any) -> None:  # noqa: ANN401
        request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, first_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
