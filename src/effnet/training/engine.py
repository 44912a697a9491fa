"""The training loop: one function, :func:`train`, from a :class:`TrainConfig` to a :class:`TrainResult`."""

from __future__ import annotations

import contextlib
import math
import random
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from effnet.data.folders import ImageFiles, collate_skip_bad, find_splits
from effnet.data.labels import few
from effnet.data.transforms import eval_transform
from effnet.training import augment, checkpoint, data, recipes, report
from effnet.training.config import TrainConfig, TrainResult
from effnet.training.distributed import (
    DistInfo,
    ShardedEpochSampler,
    all_reduce_sum,
    cleanup_distributed,
    match_grad_layout,
    print0,
    setup_distributed,
)
from effnet.training.ema import ModelEMA
from effnet.training.evaluate import evaluate
from effnet.training.modeling import (
    BATCHNORM_OF_ONE,
    build_model,
    check_batchnorm_batch,
    freeze_backbone,
    freeze_stages,
    resolve_model_config,
    set_bn_eval,
)
from effnet.training.optim import build_optimizer
from effnet.training.run_folder import RunFolder, fresh_run_dir
from effnet.training.schedule import Schedule, StepScheduler, default_warmup_epochs, scaled_lr


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C: the run stopped at a step boundary, saved a checkpoint, and says how to resume."""


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) one run. Works alone or under ``torchrun`` (DDP, rank 0 writes)."""
    info = setup_distributed(cfg.device)
    try:
        return _Run(cfg, info).fit()
    finally:
        cleanup_distributed()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_run_dir(model_name: str) -> Path:
    return fresh_run_dir(Path("runs") / f"{model_name}-{time.strftime('%Y%m%d-%H%M%S')}")


def _ignore_sigint(worker_id: int) -> None:
    """Loader workers leave Ctrl-C to the main process, which stops the run at a step boundary."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass
class _Loaders:
    train: DataLoader
    val: DataLoader
    train_sampler: ShardedEpochSampler
    classes: list[str]
    skipped_at_scan: list[str]


class _Run:
    def __init__(self, cfg: TrainConfig, info: DistInfo) -> None:
        cfg, recipe_line = recipes.resolve(cfg)  # every None the recipe decides, filled in
        self.cfg, self.info, self.device = cfg, info, info.device
        if not cfg.quiet:
            print0(info, recipe_line)
        if cfg.batch_size % info.world_size:
            raise ValueError(f"batch size {cfg.batch_size} (global) must divide evenly over {info.world_size} processes")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        seed_everything(cfg.seed + info.rank)  # ranks differ in dropout masks, like separate GPUs
        self.model_config = resolve_model_config(cfg.model, cfg.dropout, cfg.drop_connect, cfg.bn_momentum)
        self.image_size = cfg.image_size or self.model_config.resolution
        if cfg.resume is True and not cfg.out_dir:
            raise ValueError("--resume needs the run folder to continue: pass --out RUN_DIR (or --resume CHECKPOINT.pt)")
        if not isinstance(cfg.resume, bool) and cfg.resume and not Path(cfg.resume).exists():
            raise FileNotFoundError(f"--resume {cfg.resume}: no such file")
        self.run_dir = Path(cfg.out_dir) if cfg.out_dir else default_run_dir(self.model_config.name)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.loaders = self._make_loaders()
        self.num_classes = len(self.loaders.classes)
        if self.num_classes < 2:
            raise ValueError(f"{cfg.data} has one class ({self.loaders.classes[0]}): a classifier needs at least "
                             "two class folders (its accuracy would be 100% by construction)")
        self.steps_per_epoch = len(self.loaders.train_sampler) // (cfg.batch_size // info.world_size)
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"batch size {cfg.batch_size} is larger than the training set "
                f"({len(self.loaders.train_sampler) * info.world_size} images); lower --batch-size"
            )
        check_batchnorm_batch(self.model_config, self.image_size, cfg.batch_size, info.world_size,
                              bool(cfg.freeze_bn or cfg.freeze_backbone))
        self._make_model_and_optimizer()
        self.history: list[dict[str, Any]] = []
        self.skipped: list[str] = list(self.loaders.skipped_at_scan)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.last_checkpoint: Path | None = None
        self.epoch_loss: tuple[float, int] = (0.0, 0)  # global (loss sum, images) of the epoch at the last save
        self._rank_loss: tuple[float, int] = (0.0, 0)  # this rank's, as of the last step
        self.saved_step: int | None = None
        self.stop_requested = False

    # --- setup --------------------------------------------------------------------------
    def _make_loaders(self) -> _Loaders:
        cfg, info = self.cfg, self.info
        root = data.demo_dataset() if str(cfg.data) == "demo" else Path(cfg.data)
        splits = find_splits(root, cfg.val_fraction, cfg.seed)
        train_tf = augment.train_transform(
            self.image_size, cfg.augment, cfg.randaugment_magnitude, cfg.randaugment_layers, cfg.flip,
            tuple(cfg.crop_scale), model=self._preprocessing_source(),
        )
        train_ds = ImageFiles(splits.train, train_tf)
        val_ds = ImageFiles(splits.val, eval_transform(self._eval_preprocessing()))
        train_sampler = ShardedEpochSampler(len(train_ds), info, cfg.seed, shuffle=True, pad=True)
        val_sampler = ShardedEpochSampler(len(val_ds), info, cfg.seed, shuffle=False, pad=False)
        per_rank = cfg.batch_size // info.world_size
        common = dict(num_workers=cfg.workers, collate_fn=collate_skip_bad, worker_init_fn=_ignore_sigint,
                      pin_memory=self.device.type == "cuda", persistent_workers=False)
        # A private generator keeps DataLoader from drawing on the global RNG (exact resume).
        train = DataLoader(train_ds, batch_size=per_rank, sampler=train_sampler, drop_last=True,
                           generator=torch.Generator().manual_seed(cfg.seed), **common)
        val = DataLoader(val_ds, batch_size=per_rank, sampler=val_sampler,
                         generator=torch.Generator().manual_seed(cfg.seed), **common)
        skipped = [f"{path}: {reason}" for path, reason in splits.skipped]
        return _Loaders(train, val, train_sampler, splits.classes, skipped)

    def _eval_preprocessing(self) -> Any:  # noqa: ANN401 - a Preprocessing
        """What the validation split was evaluated with (the weights' or family's, at the run's image size)."""
        import dataclasses

        from effnet.data.transforms import preprocessing_for
        from effnet.weights.registry import official_crop_pct

        base = preprocessing_for(self._preprocessing_source())
        if self.image_size == base.resolution:
            return base
        crop_pct = self.cfg.eval_crop_pct or official_crop_pct(self.image_size)  # the recipe's, if it set one
        return dataclasses.replace(base, resolution=self.image_size, crop_pct=crop_pct)

    def _preprocessing_source(self) -> Any:  # noqa: ANN401
        """Normalisation follows the pretrained weights when given, else the model family."""
        return str(self.cfg.weights) if self.cfg.weights else self.model_config

    def _amp(self) -> tuple[torch.dtype | None, bool]:
        mode = self.cfg.amp
        if mode == "auto":
            mode = "fp16" if self.device.type == "cuda" else "off"
        if mode not in ("off", "bf16", "fp16"):
            raise ValueError(f"unknown --amp {mode!r}; choose auto, off, bf16 or fp16")
        if mode == "fp16" and self.device.type != "cuda":
            raise ValueError("--amp fp16 needs a CUDA GPU; use --amp bf16 on CPU")
        return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[mode], mode == "fp16"

    def _make_model_and_optimizer(self) -> None:
        cfg, info = self.cfg, self.info
        model = build_model(self.model_config, self.num_classes, cfg.weights, bool(cfg.zero_head))
        if cfg.freeze_backbone:
            freeze_backbone(model)
        freeze_stages(model, cfg.freeze_stages)
        if cfg.grad_checkpointing or cfg.checkpoint_stages is not None:
            from effnet.arch.memory import early_stages

            stages = early_stages(model) if cfg.checkpoint_stages == "early" else cfg.checkpoint_stages
            model.set_grad_checkpointing(cfg.grad_checkpointing or True, stages)
        self.channels_last = cfg.channels_last if cfg.channels_last is not None else self.device.type == "cuda"
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        if cfg.sync_bn and info.enabled and self.device.type != "cuda":
            raise ValueError("--sync-bn needs CUDA GPUs (PyTorch's SyncBatchNorm does not run on CPU); drop it or use --freeze-bn")
        if cfg.sync_bn and info.enabled:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model  # the unwrapped module: checkpoints, EMA and evaluation use this
        self.ema = ModelEMA(model, cfg.ema_decay) if cfg.ema else None
        self.global_batch = cfg.batch_size
        lr = cfg.lr if cfg.lr is not None else scaled_lr(self.global_batch)
        self.optimizer = build_optimizer(model, cfg.optimizer, lr, cfg.weight_decay, cfg.momentum, cfg.opt_eps,
                                         cfg.backbone_lr_scale)
        warmup = cfg.warmup_epochs if cfg.warmup_epochs is not None else default_warmup_epochs(cfg.epochs)
        self.scheduler = StepScheduler(self.optimizer, Schedule(
            lr, self.steps_per_epoch, cfg.epochs, warmup, cfg.schedule, cfg.decay_epochs, cfg.decay_rate,
            warmup_steps=cfg.warmup_steps))
        self.autocast_dtype, use_scaler = self._amp()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        forward_model: nn.Module = model
        if info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            if self.device.type == "cpu" or self.channels_last:  # the layouts whose depthwise grads are channels-last
                match_grad_layout(model)
            forward_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        if cfg.compile:
            forward_model = torch.compile(forward_model)
        self.forward_model = forward_model

    # --- checkpoints --------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "format": "effnet-train-checkpoint-v1",
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": checkpoint.rng_state(),
            "sampler": {"seed": self.cfg.seed, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch},
            "epoch_loss": list(self.epoch_loss),
            "epoch": self.epoch, "step": self.step, "batch_in_epoch": self.batch_in_epoch,
            "history": self.history, "skipped": self.skipped,
            "config": self.cfg.to_dict(), "model_config": self.model_config.to_dict(),
            "classes": self.loaders.classes, "image_size": self.image_size,
            "world_size": self.info.world_size,
        }

    def _save(self) -> None:
        # Every rank holds the same weights; only rank 0 writes. RNG states are rank 0's.
        if self.batch_in_epoch:  # mid-epoch: the epoch's global loss so far (every rank saves at the same step)
            self.epoch_loss = self._global_loss(*self._rank_loss)
        else:
            self.epoch_loss = (0.0, 0)
        if self.info.is_main:
            try:
                self.last_checkpoint = checkpoint.save_checkpoint(
                    self._state(), self.ckpt_dir, self.step, self.cfg.keep_checkpoints)
            except checkpoint.CheckpointWriteError as exc:
                kept = f"the previous one, {self.last_checkpoint}, is kept" if self.last_checkpoint else "none was written before"
                raise checkpoint.CheckpointWriteError(
                    f"{exc}; {kept}. Training stopped at step {self.step}: free space (or fix the folder's "
                    f"permissions), then {self._resume_hint()}") from None
        self.saved_step = self.step

    def _resume_hint(self) -> str:
        if self.last_checkpoint is None:  # the run folder is cleaned up: nothing to continue
            return "rerun the same command to start again"
        return f"rerun the same command with --out {self.run_dir} --resume to continue"

    def _resume(self) -> None:
        cfg = self.cfg
        explicit = isinstance(cfg.resume, (str, Path)) and not isinstance(cfg.resume, bool)
        if explicit and not Path(cfg.resume).is_dir():
            found = (checkpoint.load_checkpoint(Path(cfg.resume)), Path(cfg.resume))
        else:
            folder = Path(cfg.resume) if explicit else self.ckpt_dir
            folder = folder / "checkpoints" if (folder / "checkpoints").is_dir() else folder
            found = checkpoint.load_latest(folder)
            if found is None:
                if explicit:
                    raise FileNotFoundError(f"--resume {cfg.resume}: no checkpoint (ckpt-s*.pt) in that folder")
                if not cfg.quiet:  # a search resumes every trial: a fresh one is the normal case, not news
                    print0(self.info, f"no checkpoint in {self.ckpt_dir}; starting from scratch")
                return
        state, path = found
        self._check_resumable(state, path)
        later = [p.name for p in checkpoint.list_checkpoints(self.ckpt_dir) if checkpoint.checkpoint_step(p) > state["step"]]
        if later:
            print0(self.info, f"note: resuming from step {state['step']}; the later checkpoints in {self.ckpt_dir} "
                   f"({', '.join(later)}) belong to the abandoned continuation and are removed at the next save")
        if state.get("world_size", 1) != self.info.world_size:
            print0(self.info, f"note: {path} was written with {state.get('world_size')} processes, "
                   f"resuming with {self.info.world_size}; the data order within the epoch changes")
        self.model.load_state_dict(state["model"])
        if self.ema and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.info.world_size == state.get("world_size", 1) and self.info.is_main:
            checkpoint.set_rng_state(state["rng"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.history, self.skipped = list(state["history"]), list(state["skipped"])
        self.epoch_loss = tuple(state.get("epoch_loss") or (0.0, 0))
        self.last_checkpoint = path
        print0(self.info, f"resumed from {path} (epoch {self.epoch + 1}, step {self.step})")

    def _check_resumable(self, state: dict[str, Any], path: Path) -> None:
        """Refuse a checkpoint of another model or other classes, naming what differs in one line."""
        saved, now = state.get("model_config") or {}, self.model_config.to_dict()
        changed = [f"{k} {saved.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(saved) | set(now))
                   if saved.get(k) != now.get(k)]
        if saved and changed:
            more = f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
            raise ValueError(f"cannot resume from {path}: it is another model ({'; '.join(changed[:3])}{more}); "
                             "resume with the same --model and options, or start a new run")
        old, new = list(state.get("classes") or []), self.loaders.classes
        if old and old != new:
            gone, added = [c for c in old if c not in new], [c for c in new if c not in old]
            what = (f"missing {few(gone)}" if gone else "") + ("; " if gone and added else "") + (
                f"new {few(added)}" if added else "") or "the same names in another order"
            raise ValueError(f"cannot resume from {path}: it was trained on {len(old)} classes, the data has "
                             f"{len(new)} ({what}); resume on the same data, or start a new run")

    # --- the loop -----------------------------------------------------------------------
    def _autocast(self) -> Any:  # noqa: ANN401
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        images, labels = images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            try:
                logits = self.forward_model(images)
            except ValueError as exc:  # the batch's other files were unreadable and skipped
                if BATCHNORM_OF_ONE not in str(exc):
                    raise
                raise ValueError(f"epoch {self.epoch + 1}, step {self.step + 1}: one readable image in the batch left "
                                 "BatchNorm one value per channel; use a larger --batch-size, or --freeze-bn") from None
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.cfg.label_smoothing)
        finite = torch.isfinite(loss.detach()).float()
        if self.info.enabled:  # all ranks stop together if any rank diverges
            finite = all_reduce_sum(finite.clone(), self.info) / self.info.world_size
        if finite.item() < 1.0:
            where = f"epoch {self.epoch + 1}, step {self.step + 1}"
            kept = f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"loss became {loss.item()} at {where}; training stopped and {kept}. "
                "Lower the learning rate (--lr), or turn off mixed precision (--amp off)."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema:
            self.ema.update(self.model)
        self.scheduler.step()
        return loss.detach()

    def _set_train_mode(self) -> None:
        self.forward_model.train()
        if self.cfg.freeze_bn or self.cfg.freeze_backbone or self.cfg.freeze_stages:
            set_bn_eval(self.model, only_frozen=not self.cfg.freeze_bn)

    def _done(self) -> bool:
        return self.cfg.max_steps is not None and self.step >= self.cfg.max_steps

    def _run_epoch(self, bar: Any) -> dict[str, Any]:  # noqa: ANN401 - a tqdm bar or None
        cfg = self.cfg
        per_rank = cfg.batch_size // self.info.world_size
        self.loaders.train_sampler.set_epoch(self.epoch, start=self.batch_in_epoch * per_rank)
        self._set_train_mode()
        if self.batch_in_epoch == 0:
            self.epoch_loss = (0.0, 0)
        # A resumed epoch starts from the checkpoint's global (loss sum, images) so far, held by rank 0 alone:
        # the sum over ranks at the end is then the whole epoch's, as if never interrupted.
        carried_loss, carried_seen = self.epoch_loss if self.info.is_main else (0.0, 0)
        loss_sum, seen, t0 = torch.zeros((), dtype=torch.float64), 0, time.perf_counter()
        for images, labels, bad in self.loaders.train:
            self.skipped += bad
            if self.batch_in_epoch >= self.steps_per_epoch or self._done():
                break
            if images is not None:
                loss = self._train_step(images, labels)
                loss_sum += loss.double().cpu() * images.shape[0]
                seen += images.shape[0]
            self.step += 1
            self.batch_in_epoch += 1
            ips = seen * self.info.world_size / max(time.perf_counter() - t0, 1e-9)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum.item() / max(seen, 1):.4f}",
                                lr=f"{self.scheduler.get_last_lr():.2e}", img_s=f"{ips:.0f}")
            self._rank_loss = (loss_sum.item() + carried_loss, seen + carried_seen)
            if cfg.checkpoint_every_steps and self.step % cfg.checkpoint_every_steps == 0:
                self._save()
            if self.stop_requested:
                break
        elapsed = time.perf_counter() - t0
        images = seen * self.info.world_size
        totals = self._global_loss(loss_sum + carried_loss, seen + carried_seen)
        return {"train_loss": totals[0] / max(totals[1], 1),  # the global mean loss, the same on every rank
                "images_per_sec": images / max(elapsed, 1e-9), "epoch_time_s": elapsed}

    def _global_loss(self, loss_sum: torch.Tensor | float, seen: int) -> tuple[float, int]:
        totals = all_reduce_sum(torch.tensor([float(loss_sum), float(seen)], dtype=torch.float64), self.info)
        return totals[0].item(), int(totals[1].item())

    def _evaluate(self) -> dict[str, Any]:
        model = self.ema.module if self.ema else self.model
        result = evaluate(model, self.loaders.val, self.num_classes, self.device, self.info,
                          self.autocast_dtype, self.channels_last)
        self.skipped += result["skipped"]
        return result

    def fit(self) -> TrainResult:
        """Claim the run folder (lock; never over another run unasked), train, export; Ctrl-C saves and stops."""
        cfg = self.cfg
        folder = RunFolder(self.run_dir).claim(bool(cfg.resume), cfg.overwrite) if self.info.is_main else None
        failed = True
        try:
            with self._stop_on_sigint():
                result = self._fit()
            failed = False
            return result
        except TrainingInterrupted:
            raise
        except KeyboardInterrupt:
            kept = f"the last checkpoint is {self.last_checkpoint}" if self.last_checkpoint else "no checkpoint was written"
            raise TrainingInterrupted(f"interrupted at step {self.step}; {kept}; {self._resume_hint()}") from None
        finally:
            if folder is not None:
                if failed and self.last_checkpoint is None:
                    folder.discard_leftovers()  # nothing to resume: leave nothing that refuses the rerun
                folder.release()

    @contextlib.contextmanager
    def _stop_on_sigint(self) -> Any:  # noqa: ANN401 - a context manager
        """The first Ctrl-C asks the loop to stop at the next step boundary (and save); a second stops at once.

        Not under torchrun: ranks would see the signal at different steps and wait on each other."""
        if (self.info.enabled or threading.current_thread() is not threading.main_thread()
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
            yield
            return

        def request_stop(signum: int, frame: Any) -> None:  # noqa: ANN401
            self.stop_requested = True
            signal.signal(signal.SIGINT, signal.default_int_handler)

        signal.signal(signal.SIGINT, request_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def _stop(self) -> None:
        if self.step and self.saved_step != self.step:
            self._save()
        saved = f"checkpoint {self.last_checkpoint} saved" if self.last_checkpoint else "nothing to save yet"
        raise TrainingInterrupted(f"interrupted at epoch {self.epoch + 1}, step {self.step}; {saved}; "
                                  f"{self._resume_hint()}")

    def _fit(self) -> TrainResult:
        cfg, info = self.cfg, self.info
        if cfg.resume:
            self._resume()
        writer = report.MetricsWriter(self.run_dir, cfg.tensorboard) if info.is_main else None
        show = info.is_main and cfg.progress and not cfg.quiet
        total_steps = self.steps_per_epoch * cfg.epochs
        if cfg.max_steps is not None:
            total_steps = min(total_steps, cfg.max_steps)
        if not cfg.quiet:
            print0(info, f"training {self.model_config.name} on {len(self.loaders.classes)} classes at "
                   f"{self.image_size}px: {cfg.epochs} epochs x {self.steps_per_epoch} steps, global batch "
                   f"{cfg.batch_size}, {info.world_size} process(es) on {self.device}; run folder {self.run_dir}")
        from tqdm.auto import tqdm

        epochs_bar = tqdm(total=cfg.epochs, initial=self.epoch, desc="epochs", unit="epoch", disable=not show,
                          position=0)
        bar = tqdm(total=total_steps, initial=self.step, desc="steps", unit="step", disable=not show, leave=False,
                   position=1)
        start = time.perf_counter()
        ips_values = []
        try:
            while self.epoch < cfg.epochs and not self._done():
                if self.stop_requested:
                    self._stop()
                bar.set_description(f"epoch {self.epoch + 1}/{cfg.epochs}")
                row = self._run_epoch(bar)
                if self.stop_requested:
                    self._stop()
                metrics = self._evaluate()
                ips_values.append(row["images_per_sec"])
                self.history.append({"epoch": self.epoch + 1, "step": self.step, **row,
                                     "val_loss": metrics["loss"], "val_top1": metrics["top1"],
                                     "val_top5": metrics["top5"], "val_images": metrics["images"], "lr": self.scheduler.get_last_lr()})
                if self.batch_in_epoch >= self.steps_per_epoch:
                    self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                    epochs_bar.update(1)
                epochs_bar.set_postfix(top1=f"{metrics['top1']:.2f}%", val_loss=f"{metrics['loss']:.4f}")
                self._save()
                if writer:
                    writer.epoch(self.history)
                if show:
                    h = self.history[-1]
                    bar.write(f"epoch {h['epoch']}: loss {h['train_loss']:.4f}  val top-1 {h['val_top1']:.2f}%  "
                              f"top-5 {h['val_top5']:.2f}%  {h['images_per_sec']:.0f} img/s")
        finally:
            bar.close()
            epochs_bar.close()
            if writer:
                writer.close()
        return self._finish(time.perf_counter() - start, ips_values)

    def _finish(self, elapsed: float, ips_values: list[float]) -> TrainResult:
        info = self.info
        skipped = self.skipped
        if info.enabled:
            gathered: list[Any] = [None] * info.world_size
            torch.distributed.all_gather_object(gathered, skipped)
            skipped = [s for part in gathered for s in part]
        skipped = list(dict.fromkeys(skipped))
        plots, weights_file = [], None
        if info.is_main:
            try:
                weights_file = self._export_weights()
            except OSError as exc:  # disk full or read-only at the very end: the checkpoints hold the run
                reason = (exc.strerror or str(exc)).lower()
                kept = f"the checkpoint {self.last_checkpoint} holds the trained run" if self.last_checkpoint else \
                    "no checkpoint was written"
                raise RuntimeError(f"could not write the weights to {self.run_dir} ({reason}); {kept}; free space, "
                                   f"then {self._resume_hint()} (it only writes the weights)") from None
        if info.is_main and self.history:
            if self.cfg.plots:
                plots = report.save_plots(self.history, self.run_dir)
            if not self.cfg.quiet:
                print(report.summary_table(self.history))
                if skipped:
                    print(f"skipped {len(skipped)} unreadable file(s):")
                    for s in skipped:
                        print(f"  {s}")
        top1 = [h["val_top1"] for h in self.history]
        return TrainResult(
            best_top1=max(top1) if top1 else math.nan,
            final_top1=top1[-1] if top1 else math.nan,
            final_top5=self.history[-1]["val_top5"] if self.history else math.nan,
            history=self.history, run_dir=self.run_dir,
            images_per_sec=float(np.mean(ips_values)) if ips_values else math.nan,
            checkpoint=self.last_checkpoint, steps=self.step, elapsed_s=elapsed,
            classes=self.loaders.classes, skipped_files=skipped, plots=plots, evaluated_ema=self.ema is not None,
            weights_file=weights_file, model=self.model, ema_model=self.ema.module if self.ema else None,
        )

    def _export_weights(self) -> Path:
        """``model.safetensors`` (the evaluated weights), ``model_config.json`` and ``classes.json``."""
        import dataclasses
        import json

        from safetensors.torch import save

        from effnet.fileio import atomic_path, atomic_write_text

        model = self.ema.module if self.ema else self.model
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        path = self.run_dir / "model.safetensors"
        # Self-contained: effnet predict/eval take classes, config and preprocessing from the file.
        metadata = {"format": "effnet", "classes": json.dumps(self.loaders.classes), "image_size": str(self.image_size),
                    "effnet_config": json.dumps(self.model_config.to_dict()),
                    "effnet_preprocessing": json.dumps(dataclasses.asdict(self._eval_preprocessing()))}
        with atomic_path(path, suffix=".safetensors") as tmp:
            tmp.write_bytes(save(state, metadata=metadata))  # Python writes: a full disk is an OSError
        self.model_config.save(self.run_dir / "model_config.json")
        atomic_write_text(self.run_dir / "classes.json", json.dumps(self.loaders.classes, indent=1) + "\n")
        return path

