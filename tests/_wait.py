"""Waiting for something another process or thread does, with a hang guard and nothing else.

The guard only stops a test that would otherwise hang; it is never a speed assertion, so it is
generous (a saturated CI machine is slow, not wrong). Polling stops as soon as the condition holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

HANG_GUARD_S = 300.0


def wait_for(condition: Callable[[], T], what: str, guard_s: float = HANG_GUARD_S, poll_s: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy and return that; fail naming ``what`` if never."""
    end = time.monotonic() + guard_s
    while time.monotonic() < end:
        found = condition()
        if found:
            return found
        time.sleep(poll_s)
    raise AssertionError(f"never happened within the {guard_s:.0f} s hang guard: {what}")
