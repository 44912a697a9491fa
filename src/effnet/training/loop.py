"""The training loop: one function, :func:`train`, from a :class:`TrainConfig` to a :class:`TrainResult`.

The run is assembled by :mod:`~effnet.training.components`, saved and resumed by
:mod:`~effnet.training.resume`, stopped by Ctrl-C through :mod:`~effnet.training.signals`, and leaves
its weights and summary through :mod:`~effnet.training.outputs`; this module steps, evaluates and decides.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from effnet.training import recipes, report
from effnet.training.components import build_parts, eval_preprocessing, make_loaders
from effnet.training.config import TrainConfig, TrainResult
from effnet.training.distributed import DistInfo, all_reduce_sum, cleanup_distributed, print0, setup_distributed
from effnet.training.evaluate import evaluate
from effnet.training.modeling import BATCHNORM_OF_ONE, check_batchnorm_batch, resolve_model_config, set_bn_eval
from effnet.training.outputs import export_or_explain, gather_skipped, print_summary
from effnet.training.resume import Checkpoints, Progress, check_resumable, checkpoint_state
from effnet.training.run_folder import RunFolder, fresh_run_dir
from effnet.training.signals import TrainingInterrupted, stop_on_sigint


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


def train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) one run. Works alone or under ``torchrun`` (DDP, rank 0 writes)."""
    info = setup_distributed(cfg.device)
    try:
        return TrainingRun(cfg, info).fit()
    finally:
        cleanup_distributed()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_run_dir(model_name: str) -> Path:
    return fresh_run_dir(Path("runs") / f"{model_name}-{time.strftime('%Y%m%d-%H%M%S')}")


class TrainingRun:
    """One run: its config checked, its parts built; :meth:`fit` trains it."""

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
        self.checkpoints = Checkpoints(self.run_dir, cfg.keep_checkpoints)
        self.loaders = make_loaders(cfg, info, self.model_config, self.image_size)
        self.classes = self.loaders.classes
        if len(self.classes) < 2:
            raise ValueError(f"{cfg.data} has one class ({self.classes[0]}): a classifier needs at least "
                             "two class folders (its accuracy would be 100% by construction)")
        self.steps_per_epoch = len(self.loaders.train_sampler) // (cfg.batch_size // info.world_size)
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"batch size {cfg.batch_size} is larger than the training set "
                f"({len(self.loaders.train_sampler) * info.world_size} images); lower --batch-size"
            )
        check_batchnorm_batch(self.model_config, self.image_size, cfg.batch_size, info.world_size,
                              bool(cfg.freeze_bn or cfg.freeze_backbone))
        # Looked for before the parts are built: a head fitted by the probe (LP-FT) would be replaced by the
        # checkpoint's, and a checkpoint of another model is refused before that fit rather than after it
        self.found = self.checkpoints.find(cfg.resume, cfg.quiet, info) if cfg.resume else None
        if self.found is not None:
            check_resumable(*self.found, self.model_config, self.classes)
        self.parts = build_parts(cfg, info, self.model_config, len(self.classes), self.steps_per_epoch,
                                 self.loaders, resuming=self.found is not None)
        self.model = self.parts.model  # the unwrapped module: checkpoints, EMA and evaluation use this
        self.progress = Progress(skipped=list(self.loaders.skipped_at_scan))
        self._rank_loss: tuple[float, int] = (0.0, 0)  # this rank's (loss sum, images) of the epoch, as of the last step
        self.saved_step: int | None = None
        self.stop_requested = False

    # --- saving -------------------------------------------------------------------------
    def _save(self) -> None:
        # Every rank holds the same weights; only rank 0 writes. RNG states are rank 0's.
        progress = self.progress
        if progress.batch_in_epoch:  # mid-epoch: the epoch's global loss so far (every rank saves at the same step)
            progress.epoch_loss = self._global_loss(*self._rank_loss)
        else:
            progress.epoch_loss = (0.0, 0)
        if self.info.is_main:
            self.checkpoints.save(checkpoint_state(self.cfg, self.parts, progress, self.model_config, self.classes,
                                                   self.image_size, self.info.world_size), progress.step)
        self.saved_step = progress.step

    def _resume(self) -> None:
        if self.found is not None:
            state, path = self.found
            self.found = None  # the checkpoint's tensors are not kept alive through training
            self.checkpoints.restore(state, path, self.parts, self.progress, self.info)

    # --- the loop -----------------------------------------------------------------------
    def _autocast(self) -> Any:  # noqa: ANN401
        if self.parts.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.parts.autocast_dtype)

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        parts, where = self.parts, f"epoch {self.progress.epoch + 1}, step {self.progress.step + 1}"
        images, labels = images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
        if parts.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            try:
                logits = parts.forward_model(images)
            except ValueError as exc:  # the batch's other files were unreadable and skipped
                if BATCHNORM_OF_ONE not in str(exc):
                    raise
                raise ValueError(f"{where}: one readable image in the batch left BatchNorm one value per "
                                 "channel; use a larger --batch-size, or --freeze-bn") from None
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.cfg.label_smoothing)
        finite = torch.isfinite(loss.detach()).float()
        if self.info.enabled:  # all ranks stop together if any rank diverges
            finite = all_reduce_sum(finite.clone(), self.info) / self.info.world_size
        if finite.item() < 1.0:
            last = self.checkpoints.last
            kept = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"loss became {loss.item()} at {where}; training stopped and {kept}. "
                "Lower the learning rate (--lr), or turn off mixed precision (--amp off)."
            )
        parts.optimizer.zero_grad(set_to_none=True)
        parts.scaler.scale(loss).backward()
        parts.scaler.step(parts.optimizer)
        parts.scaler.update()
        if parts.ema:
            parts.ema.update(self.model)
        parts.scheduler.step()
        return loss.detach()

    def _set_train_mode(self) -> None:
        self.parts.forward_model.train()
        if self.cfg.freeze_bn or self.cfg.freeze_backbone or self.cfg.freeze_stages:
            set_bn_eval(self.model, only_frozen=not self.cfg.freeze_bn)

    def _done(self) -> bool:
        return self.cfg.max_steps is not None and self.progress.step >= self.cfg.max_steps

    def _run_epoch(self, bar: Any) -> dict[str, Any]:  # noqa: ANN401 - a tqdm bar or None
        cfg, progress = self.cfg, self.progress
        per_rank = cfg.batch_size // self.info.world_size
        self.loaders.train_sampler.set_epoch(progress.epoch, start=progress.batch_in_epoch * per_rank)
        self._set_train_mode()
        if progress.batch_in_epoch == 0:
            progress.epoch_loss = (0.0, 0)
        # A resumed epoch starts from the checkpoint's global (loss sum, images) so far, held by rank 0 alone:
        # the sum over ranks at the end is then the whole epoch's, as if never interrupted.
        carried_loss, carried_seen = progress.epoch_loss if self.info.is_main else (0.0, 0)
        loss_sum, seen, t0 = torch.zeros((), dtype=torch.float64), 0, time.perf_counter()
        for images, labels, bad in self.loaders.train:
            progress.skipped += bad
            if progress.batch_in_epoch >= self.steps_per_epoch or self._done():
                break
            if images is not None:
                loss = self._train_step(images, labels)
                loss_sum += loss.double().cpu() * images.shape[0]
                seen += images.shape[0]
            progress.step += 1
            progress.batch_in_epoch += 1
            ips = seen * self.info.world_size / max(time.perf_counter() - t0, 1e-9)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum.item() / max(seen, 1):.4f}",
                                lr=f"{self.parts.scheduler.get_last_lr():.2e}", img_s=f"{ips:.0f}")
            self._rank_loss = (loss_sum.item() + carried_loss, seen + carried_seen)
            if cfg.checkpoint_every_steps and progress.step % cfg.checkpoint_every_steps == 0:
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
        model = self.parts.ema.module if self.parts.ema else self.model
        result = evaluate(model, self.loaders.val, len(self.classes), self.device, self.info,
                          self.parts.autocast_dtype, self.parts.channels_last)
        self.progress.skipped += result["skipped"]
        return result

    def fit(self) -> TrainResult:
        """Claim the run folder (lock; never over another run unasked), train, export; Ctrl-C saves and stops."""
        cfg = self.cfg
        folder = RunFolder(self.run_dir).claim(bool(cfg.resume), cfg.overwrite) if self.info.is_main else None
        failed = True
        try:
            with stop_on_sigint(self._request_stop, distributed=self.info.enabled):
                result = self._fit()
            failed = False
            return result
        except TrainingInterrupted:
            raise
        except KeyboardInterrupt:
            last = self.checkpoints.last
            kept = f"the last checkpoint is {last}" if last else "no checkpoint was written"
            raise TrainingInterrupted(f"interrupted at step {self.progress.step}; {kept}; "
                                      f"{self.checkpoints.resume_hint()}") from None
        finally:
            if folder is not None:
                if failed and self.checkpoints.last is None:
                    folder.discard_leftovers()  # nothing to resume: leave nothing that refuses the rerun
                folder.release()

    def _request_stop(self) -> None:
        self.stop_requested = True

    def _stop(self) -> None:
        if self.progress.step and self.saved_step != self.progress.step:
            self._save()
        last = self.checkpoints.last
        saved = f"checkpoint {last} saved" if last else "nothing to save yet"
        raise TrainingInterrupted(f"interrupted at epoch {self.progress.epoch + 1}, step {self.progress.step}; "
                                  f"{saved}; {self.checkpoints.resume_hint()}")

    def _fit(self) -> TrainResult:
        cfg, info, progress = self.cfg, self.info, self.progress
        self._resume()
        writer = report.MetricsWriter(self.run_dir, cfg.tensorboard) if info.is_main else None
        show = info.is_main and cfg.progress and not cfg.quiet
        total_steps = self.steps_per_epoch * cfg.epochs
        if cfg.max_steps is not None:
            total_steps = min(total_steps, cfg.max_steps)
        if not cfg.quiet:
            print0(info, f"training {self.model_config.name} on {len(self.classes)} classes at "
                   f"{self.image_size}px: {cfg.epochs} epochs x {self.steps_per_epoch} steps, global batch "
                   f"{cfg.batch_size}, {info.world_size} process(es) on {self.device}; run folder {self.run_dir}")
        from tqdm.auto import tqdm

        epochs_bar = tqdm(total=cfg.epochs, initial=progress.epoch, desc="epochs", unit="epoch", disable=not show,
                          position=0)
        bar = tqdm(total=total_steps, initial=progress.step, desc="steps", unit="step", disable=not show, leave=False,
                   position=1)
        start = time.perf_counter()
        ips_values = []
        try:
            while progress.epoch < cfg.epochs and not self._done():
                if self.stop_requested:
                    self._stop()
                bar.set_description(f"epoch {progress.epoch + 1}/{cfg.epochs}")
                row = self._run_epoch(bar)
                if self.stop_requested:
                    self._stop()
                metrics = self._evaluate()
                ips_values.append(row["images_per_sec"])
                progress.history.append({"epoch": progress.epoch + 1, "step": progress.step, **row,
                                         "val_loss": metrics["loss"], "val_top1": metrics["top1"],
                                         "val_top5": metrics["top5"], "val_images": metrics["images"],
                                         "lr": self.parts.scheduler.get_last_lr()})
                if progress.batch_in_epoch >= self.steps_per_epoch:
                    progress.epoch, progress.batch_in_epoch = progress.epoch + 1, 0
                    epochs_bar.update(1)
                epochs_bar.set_postfix(top1=f"{metrics['top1']:.2f}%", val_loss=f"{metrics['loss']:.4f}")
                self._save()
                if writer:
                    writer.epoch(progress.history)
                if show:
                    h = progress.history[-1]
                    bar.write(f"epoch {h['epoch']}: loss {h['train_loss']:.4f}  val top-1 {h['val_top1']:.2f}%  "
                              f"top-5 {h['val_top5']:.2f}%  {h['images_per_sec']:.0f} img/s")
        finally:
            bar.close()
            epochs_bar.close()
            if writer:
                writer.close()
        return self._finish(time.perf_counter() - start, ips_values)

    def _finish(self, elapsed: float, ips_values: list[float]) -> TrainResult:
        info, history, ema = self.info, self.progress.history, self.parts.ema
        skipped = gather_skipped(self.progress.skipped, info)
        plots, weights_file = [], None
        if info.is_main:
            weights_file = export_or_explain(
                self.run_dir, self.checkpoints.last, self.checkpoints.resume_hint(),
                model=ema.module if ema else self.model, classes=self.classes, image_size=self.image_size,
                model_config=self.model_config, preprocessing=eval_preprocessing(self.cfg, self.model_config,
                                                                                 self.image_size))
        if info.is_main and history:
            if self.cfg.plots:
                plots = report.save_plots(history, self.run_dir)
            if not self.cfg.quiet:
                print_summary(history, skipped)
        top1 = [h["val_top1"] for h in history]
        return TrainResult(
            best_top1=max(top1) if top1 else math.nan,
            final_top1=top1[-1] if top1 else math.nan,
            final_top5=history[-1]["val_top5"] if history else math.nan,
            history=history, run_dir=self.run_dir,
            images_per_sec=float(np.mean(ips_values)) if ips_values else math.nan,
            checkpoint=self.checkpoints.last, steps=self.progress.step, elapsed_s=elapsed,
            classes=self.classes, skipped_files=skipped, plots=plots, evaluated_ema=ema is not None,
            weights_file=weights_file, model=self.model, ema_model=ema.module if ema else None,
        )
