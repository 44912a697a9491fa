"""One run per folder: a run folder is claimed with an OS lock and never overwritten unasked.

The lock is ``fcntl.flock`` on the folder itself: the kernel releases it when the process ends,
however it ends, so a killed run never leaves a stale lock behind (and no lock file is written).

A run that fails before its first checkpoint has nothing to resume: it removes what it created
(:meth:`RunFolder.discard_leftovers`), and a folder holding only such leftovers (a run killed in
its first steps: ``tensorboard/``, an empty ``checkpoints/``) is taken by the next run as if empty.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from effnet.fileio import TEMP_PREFIX
from effnet.training.checkpoint import list_checkpoints

# What a run writes; --overwrite removes these and nothing else (a user's own files stay).
RUN_FILES = ("model.safetensors", "model_config.json", "classes.json", "metrics.csv", "loss.png", "accuracy.png",
             "lr.png")
RUN_FOLDERS = ("tensorboard",)
CHECKPOINTS = "checkpoints"


class RunFolderError(RuntimeError):
    """The run folder cannot be used: not a folder, not writable, in use, or holding another run."""


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


class RunFolder:
    """``with RunFolder(path).claim(resume, overwrite):`` holds the folder for one training process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._created: list[Path] = []  # folders this claim made, deepest first
        self._before: set[str] = set()  # what the folder held once claimed

    def claim(self, resume: bool, overwrite: bool) -> RunFolder:
        self._created = [p for p in (self.path, *self.path.parents) if not p.exists() and not p.is_symlink()]
        self._make()
        self._lock()
        try:
            self._check_empty(resume, overwrite)
            self._before = set(os.listdir(self.path))
        except BaseException:
            self.release()
            raise
        return self

    def discard_leftovers(self) -> None:
        """Remove what this run wrote (its files, and the folders the claim made when left empty).

        For a run that failed before its first checkpoint: it has nothing to resume, and a folder
        left holding ``tensorboard/`` would refuse the rerun as "not empty".
        """
        for name in sorted(set(os.listdir(self.path)) - self._before):
            entry = self.path / name
            if name in RUN_FILES:
                entry.unlink(missing_ok=True)
            elif name in RUN_FOLDERS or (name == CHECKPOINTS and not list_checkpoints(entry)):
                shutil.rmtree(entry, ignore_errors=True)
        for folder in self._created:
            try:
                folder.rmdir()  # only when empty: a user's file put there meanwhile keeps it
            except OSError:
                break

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
        if self._only_leftovers(present):
            for name in present:
                shutil.rmtree(self.path / name)
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


    def _only_leftovers(self, present: list[str]) -> bool:
        """True when the folder holds only what a run killed before its first checkpoint leaves."""
        if not set(present) <= {*RUN_FOLDERS, CHECKPOINTS}:
            return False
        if any(not (self.path / name).is_dir() or (self.path / name).is_symlink() for name in present):
            return False
        board = self.path / "tensorboard"
        ckpts = self.path / CHECKPOINTS
        return (all(f.name.startswith("events.out.tfevents.") for f in board.rglob("*") if f.is_file())
                and all(f.name.startswith(TEMP_PREFIX) for f in ckpts.glob("*")))


def fresh_run_dir(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3`` ... when it exists (two default-named runs in one second)."""
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate
