"""Saving a run and resuming it exactly: where the loop stands (:class:`Progress`), what a checkpoint holds,
which checkpoint a ``--resume`` means, and the refusal of a checkpoint of another model or other classes.
The files themselves (atomic writes, rotation, RNG states) are :mod:`effnet.training.checkpoint`'s."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effnet.arch.config import ModelConfig
from effnet.data.labels import few
from effnet.training import checkpoint
from effnet.training.components import TrainingParts
from effnet.training.config import TrainConfig
from effnet.training.distributed import DistInfo, print0


@dataclass
class Progress:
    """Where the loop stands: everything a checkpoint carries besides the weights and optimizer."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    epoch_loss: tuple[float, int] = (0.0, 0)  # global (loss sum, images) of the epoch at the last save


def checkpoint_state(cfg: TrainConfig, parts: TrainingParts, progress: Progress, model_config: ModelConfig,
                     classes: list[str], image_size: int, world_size: int) -> dict[str, Any]:
    return {
        "format": "effnet-train-checkpoint-v1",
        "model": parts.model.state_dict(),
        "ema": parts.ema.state_dict() if parts.ema else None,
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.scaler.state_dict(),
        "rng": checkpoint.rng_state(),
        "sampler": {"seed": cfg.seed, "epoch": progress.epoch, "batch_in_epoch": progress.batch_in_epoch},
        "epoch_loss": list(progress.epoch_loss),
        "epoch": progress.epoch, "step": progress.step, "batch_in_epoch": progress.batch_in_epoch,
        "history": progress.history, "skipped": progress.skipped,
        "config": cfg.to_dict(), "model_config": model_config.to_dict(),
        "classes": classes, "image_size": image_size,
        "world_size": world_size,
    }


class Checkpoints:
    """A run's ``checkpoints/`` folder: the newest checkpoint written, and what to tell a user to continue."""

    def __init__(self, run_dir: Path, keep: int) -> None:
        self.run_dir = run_dir
        self.folder = run_dir / "checkpoints"
        self.keep = keep
        self.last: Path | None = None

    def save(self, state: dict[str, Any], step: int) -> None:
        try:
            self.last = checkpoint.save_checkpoint(state, self.folder, step, self.keep)
        except checkpoint.CheckpointWriteError as exc:
            kept = f"the previous one, {self.last}, is kept" if self.last else "none was written before"
            raise checkpoint.CheckpointWriteError(
                f"{exc}; {kept}. Training stopped at step {step}: free space (or fix the folder's "
                f"permissions), then {self.resume_hint()}") from None

    def resume_hint(self) -> str:
        if self.last is None:  # the run folder is cleaned up: nothing to continue
            return "rerun the same command to start again"
        return f"rerun the same command with --out {self.run_dir} --resume to continue"

    def find(self, resume: bool | str | Path, quiet: bool, info: DistInfo) -> tuple[dict[str, Any], Path] | None:
        """The checkpoint ``--resume`` names (a file, a run folder, or True: this run's newest), loaded."""
        explicit = isinstance(resume, (str, Path)) and not isinstance(resume, bool)
        if explicit and not Path(resume).is_dir():
            return checkpoint.load_checkpoint(Path(resume)), Path(resume)
        folder = Path(resume) if explicit else self.folder
        folder = folder / "checkpoints" if (folder / "checkpoints").is_dir() else folder
        found = checkpoint.load_latest(folder)
        if found is None:
            if explicit:
                raise FileNotFoundError(f"--resume {resume}: no checkpoint (ckpt-s*.pt) in that folder")
            if not quiet:  # a search resumes every trial: a fresh one is the normal case, not news
                print0(info, f"no checkpoint in {self.folder}; starting from scratch")
        return found

    def restore(self, state: dict[str, Any], path: Path, parts: TrainingParts, progress: Progress,
                info: DistInfo) -> None:
        """Load ``state`` (already checked by :func:`check_resumable`) into the parts and the progress."""
        later = [p.name for p in checkpoint.list_checkpoints(self.folder) if checkpoint.checkpoint_step(p) > state["step"]]
        if later:
            print0(info, f"note: resuming from step {state['step']}; the later checkpoints in {self.folder} "
                   f"({', '.join(later)}) belong to the abandoned continuation and are removed at the next save")
        if state.get("world_size", 1) != info.world_size:
            print0(info, f"note: {path} was written with {state.get('world_size')} processes, "
                   f"resuming with {info.world_size}; the data order within the epoch changes")
        parts.model.load_state_dict(state["model"])
        if parts.ema and state.get("ema"):
            parts.ema.load_state_dict(state["ema"])
        parts.optimizer.load_state_dict(state["optimizer"])
        parts.scheduler.load_state_dict(state["scheduler"])
        parts.scaler.load_state_dict(state["scaler"])
        if info.world_size == state.get("world_size", 1) and info.is_main:
            checkpoint.set_rng_state(state["rng"])
        progress.step, progress.epoch, progress.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        progress.history, progress.skipped = list(state["history"]), list(state["skipped"])
        progress.epoch_loss = tuple(state.get("epoch_loss") or (0.0, 0))
        self.last = path
        print0(info, f"resumed from {path} (epoch {progress.epoch + 1}, step {progress.step})")


def check_resumable(state: dict[str, Any], path: Path, model_config: ModelConfig, classes: list[str]) -> None:
    """Refuse a checkpoint of another model or other classes, naming what differs in one line."""
    saved, now = state.get("model_config") or {}, model_config.to_dict()
    changed = [f"{k} {saved.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(saved) | set(now))
               if saved.get(k) != now.get(k)]
    if saved and changed:
        more = f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
        raise ValueError(f"cannot resume from {path}: it is another model ({'; '.join(changed[:3])}{more}); "
                         "resume with the same --model and options, or start a new run")
    old, new = list(state.get("classes") or []), classes
    if old and old != new:
        gone, added = [c for c in old if c not in new], [c for c in new if c not in old]
        what = (f"missing {few(gone)}" if gone else "") + ("; " if gone and added else "") + (
            f"new {few(added)}" if added else "") or "the same names in another order"
        raise ValueError(f"cannot resume from {path}: it was trained on {len(old)} classes, the data has "
                         f"{len(new)} ({what}); resume on the same data, or start a new run")
