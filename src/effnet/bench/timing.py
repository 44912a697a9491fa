"""Wall-clock timing of a callable: warm-up, then repeated calls, summarised by percentiles.

Used by the benchmarks and by the compound-scaling helper for latency budgets. The signature of
``time_callable`` is a stable API: keep it.
"""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class TimingStats:
    """Per-call wall times in milliseconds over ``iters`` measured calls (warm-up excluded)."""

    p50_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    std_ms: float
    iters: int
    total_s: float
    samples_ms: tuple[float, ...] = ()

    def to_dict(self, samples: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not samples:
            d.pop("samples_ms")
        return d

    @classmethod
    def from_samples(cls, samples_s: list[float]) -> TimingStats:
        """Summarise raw per-call durations given in seconds."""
        if not samples_s:
            raise ValueError("no timing samples: at least one measured call is needed")
        ms = sorted(s * 1e3 for s in samples_s)
        return cls(
            p50_ms=percentile(ms, 50.0),
            p90_ms=percentile(ms, 90.0),
            mean_ms=statistics.fmean(ms),
            min_ms=ms[0],
            max_ms=ms[-1],
            std_ms=statistics.pstdev(ms) if len(ms) > 1 else 0.0,
            iters=len(ms),
            total_s=sum(samples_s),
            samples_ms=tuple(s * 1e3 for s in samples_s),
        )


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of an already sorted list."""
    if not sorted_values:
        raise ValueError("percentile of an empty list")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def time_callable(
    fn: Callable[[], Any],
    *,
    warmup: int = 3,
    iters: int = 10,
    min_time_s: float = 0.0,
    max_iters: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> TimingStats:
    """Call ``fn()`` ``warmup`` times untimed, then at least ``iters`` times timed.

    Keeps calling past ``iters`` until ``min_time_s`` seconds of measured time have passed (so
    very fast callables still get a stable estimate), but never beyond ``max_iters`` calls if
    given. The garbage collector is paused during the timed calls so that a collection does not
    land inside one sample. ``clock`` returns seconds; it is a parameter so that the logic can be
    tested against a fake clock rather than the machine's load.
    """
    if warmup < 0 or iters < 1:
        raise ValueError(f"need warmup >= 0 and iters >= 1, got warmup={warmup}, iters={iters}")
    if max_iters is not None and max_iters < iters:
        raise ValueError(f"max_iters ({max_iters}) must be >= iters ({iters})")
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        elapsed = 0.0
        while len(samples) < iters or elapsed < min_time_s:
            if max_iters is not None and len(samples) >= max_iters:
                break
            start = clock()
            fn()
            samples.append(clock() - start)
            elapsed += samples[-1]
    finally:
        if gc_was_enabled:
            gc.enable()
    return TimingStats.from_samples(samples)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads (None: unchanged), restoring the count after.

    On a busy machine more threads than free cores make OpenMP spin, and timings measure the contention.
    """
    before = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
