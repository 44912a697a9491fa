"""Per-model switches: set an attribute on every submodule that has it, for good or for a ``with`` block.

The blocks in :mod:`effnet.arch.layers` carry their own switches (``fast_eval``, ``memory_efficient``,
``channels_last``, ``matmul_max_rows``, ``grad_checkpointing``) instead of module globals, so two
models in one process can run differently and ``torch.jit.script`` sees plain attributes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from torch import nn

#: Default ``matmul_max_rows``: the measured CPU crossover (N*H*W) between matmul and oneDNN's 1x1 conv
#: (above it the eval fast path runs a 1x1 conv as oneDNN's conv, below as one matmul).
MATMUL_MAX_ROWS = 3136


def set_switch(model: nn.Module, name: str, value: Any) -> int:
    """Set ``name`` to ``value`` on every submodule of ``model`` (itself included) that has it; returns how many."""
    modules = [m for m in model.modules() if name in vars(m)]
    if not modules:
        raise ValueError(f"{type(model).__name__} has no block with a {name!r} switch (not an effnet model?)")
    for m in modules:
        setattr(m, name, value)
    return len(modules)


@contextlib.contextmanager
def switched(model: nn.Module, name: str, value: Any) -> Iterator[nn.Module]:
    """``name`` set to ``value`` inside the block; every module's own previous value is restored after."""
    saved = [(m, getattr(m, name)) for m in model.modules() if name in vars(m)]
    set_switch(model, name, value)
    try:
        yield model
    finally:
        for m, old in saved:
            setattr(m, name, old)
