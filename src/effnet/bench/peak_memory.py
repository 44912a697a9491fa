"""Peak resident memory of a block of code on Linux, for CPU benchmarks.

``tracemalloc`` sees only Python's allocator and ``torch.profiler`` only tensors from PyTorch's
allocator; neither sees oneDNN scratch buffers or ONNX Runtime's arena. The kernel's resident-set
high-water mark (VmHWM) sees everything. Writing ``5`` to ``/proc/self/clear_refs`` resets the
mark to the current RSS, so after freeing what the allocator caches (``malloc_trim``) the growth of
the mark over the current RSS is the block's own peak working memory.
"""

from __future__ import annotations

import ctypes
import gc
from pathlib import Path
from types import TracebackType


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def trim_heap() -> None:
    """Return freed heap memory to the OS, so that reusing it later shows up as RSS growth."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class PeakRSS:
    """``with PeakRSS() as p: ...`` then ``p.growth_mb``: peak RSS during the block minus RSS before it.

    ``p.exact`` is False when the high-water mark could not be reset (then growth is measured from
    the process's all-time peak and is a lower bound).
    """

    def __init__(self) -> None:
        self.base_kb = 0
        self.peak_kb = 0
        self.exact = False

    def __enter__(self) -> PeakRSS:
        trim_heap()
        self.exact = reset_peak()
        self.base_kb = _status_kb("VmRSS")
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.peak_kb = _status_kb("VmHWM")

    @property
    def growth_mb(self) -> float:
        return max(self.peak_kb - self.base_kb, 0) / 1024

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024
