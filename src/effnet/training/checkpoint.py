"""Crash-safe checkpoints: atomic writes, keep the last K, fall back past corrupt files.

A checkpoint is a plain dict of tensors and Python primitives, loaded with
``torch.load(weights_only=True)`` (no pickled code). File names sort by global step.
"""

from __future__ import annotations

import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from effnet.fileio import atomic_path

CHECKPOINT_RE = re.compile(r"^ckpt-s(\d{9})\.pt$")


def checkpoint_name(step: int) -> str:
    return f"ckpt-s{step:09d}.pt"


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, read-only); the previous checkpoints are untouched."""


def atomic_save(obj: Any, path: Path) -> None:  # noqa: ANN401 - any torch-serialisable object
    """``torch.save`` that leaves either the previous file or the complete new one (see atomic_path).

    torch writes through a Python file object so that a failed write raises ``OSError`` with its
    errno (given a path, torch reports a full disk as ``enforce fail at inline_container.cc``).
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoints in ``folder``, oldest first."""
    if not Path(folder).is_dir():
        return []
    found = [p for p in Path(folder).iterdir() if CHECKPOINT_RE.match(p.name)]
    return sorted(found, key=checkpoint_step)


def checkpoint_step(path: Path) -> int:
    return int(CHECKPOINT_RE.match(Path(path).name).group(1))


def save_checkpoint(state: dict[str, Any], folder: Path, step: int, keep: int) -> Path:
    """Write ``state`` as the checkpoint for ``step``, then keep the newest ``keep`` up to ``step``.

    Checkpoints after ``step`` are from a continuation that was abandoned by resuming from an
    earlier checkpoint: they are removed, so the newest file is always this run's latest state
    (and ``keep=1`` can never delete the checkpoint just written). Raises
    :class:`CheckpointWriteError` with the reason when the file cannot be written.
    """
    path = Path(folder) / checkpoint_name(step)
    try:
        atomic_save(state, path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CheckpointWriteError(f"could not write checkpoint {path} ({reason.lower()})") from None
    found = list_checkpoints(folder)
    stale = [p for p in found if checkpoint_step(p) > step]
    upto = [p for p in found if checkpoint_step(p) <= step]
    for old in stale + (upto[:-keep] if keep > 0 else []):
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a checkpoint file" if path.is_dir() else "no such file"
        raise FileNotFoundError(f"checkpoint {path}: {what}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure here means "unreadable checkpoint"
        raise ValueError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise ValueError(f"checkpoint {path} is not an effnet training checkpoint")
    return state


def load_latest(folder: Path) -> tuple[dict[str, Any], Path] | None:
    """The newest readable checkpoint; each unreadable one is reported by name and skipped."""
    for path in reversed(list_checkpoints(folder)):
        try:
            return load_checkpoint(path), path
        except ValueError as exc:
            warnings.warn(f"{exc}; falling back to the previous checkpoint", stacklevel=2)
    return None


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states in a form ``weights_only`` loading accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "cached": cached},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
