"""One run per folder: a run folder is claimed with an OS lock and never overwritten unasked.

The lock is ``fcntl.flock`` on the folder itself: the kernel releases it when the process ends,
however it ends, so a killed run never leaves a stale lock behind (and no lock file is written).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from effnet.training.checkpoint import list_checkpoints

# What a run writes; --overwrite removes these and nothing else (a user's own files stay).
RUN_FILES = ("model.safetensors", "model_config.json", "classes.json", "metrics.csv", "loss.png", "accuracy.png",
             "lr.png")
RUN_FOLDERS = ("tensorboard",)


class RunFolderError(RuntimeError):
    """The run folder cannot be used: not a folder, not writable, in use, or holding another run."""


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


class RunFolder:
    """``with RunFolder(path).claim(resume, overwrite):`` holds the folder for one training process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def claim(self, resume: bool, overwrite: bool) -> RunFolder:
        self._make()
        self._lock()
        try:
            self._check_empty(resume, overwrite)
        except BaseException:
            self.release()
            raise
        return self

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def _make(self) -> None:
        path = self.path
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise RunFolderError(f"--out {path}: {blocker} is a file, not a folder; pick a folder for the run")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(f"cannot create run folder {path}: {_reason(exc)}") from None

    def _lock(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunFolderError(f"run folder {self.path} is in use by another effnet train; wait for it to finish "
                                 "or pick another --out") from None
        if not os.access(self.path, os.W_OK):
            os.close(fd)
            raise RunFolderError(f"cannot write to run folder {self.path}: permission denied")
        self._fd = fd

    def _check_empty(self, resume: bool, overwrite: bool) -> None:
        present = sorted(p.name for p in self.path.iterdir())
        if not present or resume:
            return
        if not overwrite:
            shown = ", ".join(present[:4]) + (", ..." if len(present) > 4 else "")
            raise RunFolderError(
                f"run folder {self.path} is not empty ({shown}); continue that run with --resume, "
                "replace it with --overwrite, or pick another --out"
            )
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)
        for name in RUN_FOLDERS:
            shutil.rmtree(self.path / name, ignore_errors=True)
        for ckpt in list_checkpoints(self.path / "checkpoints"):
            ckpt.unlink()


def fresh_run_dir(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3`` ... when it exists (two default-named runs in one second)."""
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate
