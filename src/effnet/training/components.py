"""The parts a training run is assembled from its config: data loaders, the model (frozen parts, DDP,
compile), EMA, optimizer, learning-rate schedule and mixed precision. No training happens here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from effnet.arch.config import ModelConfig
from effnet.data.folders import ImageFiles, collate_skip_bad, find_splits
from effnet.data.transforms import eval_transform
from effnet.training import augment
from effnet.training.config import TrainConfig
from effnet.training.data import demo_dataset
from effnet.training.distributed import DistInfo, ShardedEpochSampler, match_grad_layout
from effnet.training.ema import ModelEMA
from effnet.training.modeling import build_model, freeze_backbone, freeze_stages
from effnet.training.optim import build_optimizer
from effnet.training.schedule import Schedule, StepScheduler, default_warmup_epochs, scaled_lr
from effnet.training.signals import ignore_sigint


@dataclass
class Loaders:
    train: DataLoader
    val: DataLoader
    train_sampler: ShardedEpochSampler
    classes: list[str]
    skipped_at_scan: list[str]


def preprocessing_source(cfg: TrainConfig, model_config: ModelConfig) -> str | ModelConfig:
    """Normalisation follows the pretrained weights when given, else the model family."""
    return str(cfg.weights) if cfg.weights else model_config


def eval_preprocessing(cfg: TrainConfig, model_config: ModelConfig, image_size: int) -> Any:  # noqa: ANN401
    """What the validation split is evaluated with (the weights' or family's, at the run's image size)."""
    from effnet.data.transforms import preprocessing_for
    from effnet.weights.registry import official_crop_pct

    base = preprocessing_for(preprocessing_source(cfg, model_config))
    if image_size == base.resolution:
        return base
    crop_pct = cfg.eval_crop_pct or official_crop_pct(image_size)  # the recipe's, if it set one
    return dataclasses.replace(base, resolution=image_size, crop_pct=crop_pct)


def make_loaders(cfg: TrainConfig, info: DistInfo, model_config: ModelConfig, image_size: int) -> Loaders:
    root = demo_dataset() if str(cfg.data) == "demo" else Path(cfg.data)
    splits = find_splits(root, cfg.val_fraction, cfg.seed)
    train_tf = augment.train_transform(
        image_size, cfg.augment, cfg.randaugment_magnitude, cfg.randaugment_layers, cfg.flip,
        tuple(cfg.crop_scale), model=preprocessing_source(cfg, model_config),
    )
    train_ds = ImageFiles(splits.train, train_tf)
    val_ds = ImageFiles(splits.val, eval_transform(eval_preprocessing(cfg, model_config, image_size)))
    train_sampler = ShardedEpochSampler(len(train_ds), info, cfg.seed, shuffle=True, pad=True)
    val_sampler = ShardedEpochSampler(len(val_ds), info, cfg.seed, shuffle=False, pad=False)
    per_rank = cfg.batch_size // info.world_size
    common = dict(num_workers=cfg.workers, collate_fn=collate_skip_bad, worker_init_fn=ignore_sigint,
                  pin_memory=info.device.type == "cuda", persistent_workers=False)
    # A private generator keeps DataLoader from drawing on the global RNG (exact resume).
    train = DataLoader(train_ds, batch_size=per_rank, sampler=train_sampler, drop_last=True,
                       generator=torch.Generator().manual_seed(cfg.seed), **common)
    val = DataLoader(val_ds, batch_size=per_rank, sampler=val_sampler,
                     generator=torch.Generator().manual_seed(cfg.seed), **common)
    skipped = [f"{path}: {reason}" for path, reason in splits.skipped]
    return Loaders(train, val, train_sampler, splits.classes, skipped)


def amp_mode(amp: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether a GradScaler is needed) for ``--amp``."""
    mode = amp
    if mode == "auto":
        mode = "fp16" if device.type == "cuda" else "off"
    if mode not in ("off", "bf16", "fp16"):
        raise ValueError(f"unknown --amp {mode!r}; choose auto, off, bf16 or fp16")
    if mode == "fp16" and device.type != "cuda":
        raise ValueError("--amp fp16 needs a CUDA GPU; use --amp bf16 on CPU")
    return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[mode], mode == "fp16"


@dataclass
class TrainingParts:
    model: nn.Module  # the unwrapped module: checkpoints, EMA and evaluation use this
    forward_model: nn.Module  # what the loop calls: the model under DDP and/or torch.compile
    ema: ModelEMA | None
    optimizer: torch.optim.Optimizer
    scheduler: StepScheduler
    scaler: torch.amp.GradScaler
    autocast_dtype: torch.dtype | None
    channels_last: bool


def build_parts(cfg: TrainConfig, info: DistInfo, model_config: ModelConfig, num_classes: int,
                steps_per_epoch: int, loaders: Loaders | None = None, resuming: bool = False) -> TrainingParts:
    """``resuming``: a checkpoint's weights will be loaded into the parts, so no head is fitted for them."""
    device = info.device
    model = build_model(model_config, num_classes, cfg.weights, bool(cfg.zero_head))
    if cfg.head_init == "probe" and loaders is not None and not resuming:  # LP-FT: before DDP, which spreads rank 0's head
        from effnet.training.head_init import fit_head_by_probe

        fit_head_by_probe(model, loaders.train.dataset.samples, loaders.val.dataset.transform, cfg.workers,
                          progress=info.is_main and cfg.progress and not cfg.quiet,
                          label_smoothing=cfg.label_smoothing)
    if cfg.freeze_backbone:
        freeze_backbone(model)
    freeze_stages(model, cfg.freeze_stages)
    if cfg.grad_checkpointing or cfg.checkpoint_stages is not None:
        from effnet.arch.memory_saving import early_stages

        stages = early_stages(model) if cfg.checkpoint_stages == "early" else cfg.checkpoint_stages
        model.set_grad_checkpointing(cfg.grad_checkpointing or True, stages)
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.sync_bn and info.enabled and device.type != "cuda":
        raise ValueError("--sync-bn needs CUDA GPUs (PyTorch's SyncBatchNorm does not run on CPU); drop it or use --freeze-bn")
    if cfg.sync_bn and info.enabled:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ema = ModelEMA(model, cfg.ema_decay) if cfg.ema else None
    lr = cfg.lr if cfg.lr is not None else scaled_lr(cfg.batch_size)
    optimizer = build_optimizer(model, cfg.optimizer, lr, cfg.weight_decay, cfg.momentum, cfg.opt_eps,
                                cfg.backbone_lr_scale)
    warmup = cfg.warmup_epochs if cfg.warmup_epochs is not None else default_warmup_epochs(cfg.epochs)
    scheduler = StepScheduler(optimizer, Schedule(
        lr, steps_per_epoch, cfg.epochs, warmup, cfg.schedule, cfg.decay_epochs, cfg.decay_rate,
        warmup_steps=cfg.warmup_steps))
    autocast_dtype, use_scaler = amp_mode(cfg.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    forward_model: nn.Module = model
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        if device.type == "cpu" or channels_last:  # the layouts whose depthwise grads are channels-last
            match_grad_layout(model)
        forward_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if cfg.compile:
        forward_model = torch.compile(forward_model)
    return TrainingParts(model, forward_model, ema, optimizer, scheduler, scaler, autocast_dtype, channels_last)
