"""TrainConfig (every switch of the recipe) and TrainResult (what a run returns)."""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effnet.arch.config import ModelConfig


@dataclass
class TrainConfig:
    """One training run. A field left ``None`` is decided by the recipe (:mod:`effnet.training.recipes`):
    the paper's from-scratch recipe (spec section 6) without ``weights``, the fine-tune recipe with them,
    or ``recipe="paper"|"finetune"`` explicitly. A value given here always wins over the recipe's.

    ``batch_size`` is the *global* batch (split evenly across torchrun ranks); ``lr`` (the new head's,
    when ``backbone_lr_scale`` differs from 1) defaults to the recipe's rate per 256 images of that
    batch; ``image_size=None`` means the model's resolution; the paper recipe's warm-up is 5 epochs,
    capped at a tenth of the run, the fine-tune recipe's ``warmup_steps`` steps.
    """

    data: str | Path = "demo"
    model: str | ModelConfig | Path = "b0"
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int | None = None  # None: the recipe decides (64; a fine-tune lowers it for small data)
    image_size: int | None = None
    lr: float | None = None
    out_dir: str | Path | None = None
    seed: int = 0
    workers: int = 0
    val_fraction: float | None = None
    # model
    weights: str | Path | None = None
    recipe: str | None = None  # "paper" or "finetune"; None: finetune when weights are given
    freeze_backbone: bool | None = None  # None: the recipe decides (a fine-tune of few images keeps it frozen)
    zero_head: bool | None = None  # a new classifier (class count differs from the weights') starts at zero
    head_init: str | None = None  # "probe": fit the new classifier on frozen features first (LP-FT); "random"
    freeze_stages: int = 0  # the stem and this many of model.stages stop training (fine-tuning)
    dropout: float | None = None
    drop_connect: float | None = None
    bn_momentum: float | None = None  # PyTorch convention; None keeps the model's (0.01 = TF 0.99)
    # optimiser and schedule
    optimizer: str | None = None
    momentum: float = 0.9
    opt_eps: float = 1e-3
    weight_decay: float | None = None
    backbone_lr_scale: float | None = None  # everything but the classifier trains at lr * this
    schedule: str | None = None
    warmup_epochs: float | None = None
    warmup_steps: int | None = None  # replaces warmup_epochs when set
    decay_epochs: float = 2.4
    decay_rate: float = 0.97
    ema: bool | None = None
    ema_decay: float | None = None
    label_smoothing: float | None = None
    # augmentation
    augment: str | None = None
    randaugment_magnitude: int = 9
    randaugment_layers: int = 2
    flip: bool = True
    crop_scale: tuple[float, float] | None = None
    eval_crop_pct: float | None = None  # val centre crop; None: the official size / (size + 32)
    # execution
    device: str = "auto"
    amp: str = "auto"  # auto (fp16 on CUDA, off on CPU), off, bf16, fp16
    channels_last: bool | None = None  # None: on for CUDA
    compile: bool = False
    grad_checkpointing: bool | str = False  # True/"full" or "selective": recompute activations, less memory
    checkpoint_stages: tuple[int, ...] | str | None = None  # only these model.stages, or "early"; None: all
    sync_bn: bool = False
    freeze_bn: bool = False  # BN layers use running statistics while training
    deterministic: bool = False
    threads: int | None = None  # torch intra-op threads; None keeps torch's default
    # checkpoints and output
    checkpoint_every_steps: int | None = None
    keep_checkpoints: int = 3
    resume: bool | str | Path = False
    overwrite: bool = False  # replace the run already in out_dir (else a non-empty out_dir is refused)
    progress: bool = True
    tensorboard: bool = True
    plots: bool = True
    quiet: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse nonsense before anything runs (0 never silently means "the default")."""
        at_least_one = {"epochs": self.epochs, "batch_size": self.batch_size, "image_size": self.image_size,
                        "max_steps": self.max_steps, "checkpoint_every_steps": self.checkpoint_every_steps,
                        "threads": self.threads}
        for name, value in at_least_one.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
                hint = "; leave it out for the model's resolution" if name == "image_size" else ""
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}{hint}")
        for name, value in {"workers": self.workers, "keep_checkpoints": self.keep_checkpoints}.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.head_init is not None:
            from effnet.choices import HEAD_INITS

            if self.head_init not in HEAD_INITS:
                raise ValueError(f"head_init must be one of {', '.join(HEAD_INITS)}, got {self.head_init!r}")
            if self.head_init == "probe" and self.weights is None:
                raise ValueError("--head-init probe needs pretrained --weights: a probe of random features fits "
                                 "nothing; pass --weights, or leave --head-init out")
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite contradict each other: --resume continues the run in the "
                             "folder, --overwrite replaces it; pass one")

    def to_dict(self) -> dict[str, Any]:
        """Primitive values only (goes into checkpoints loaded with ``weights_only``)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ModelConfig):
                value = value.to_dict()
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


@dataclass
class TrainResult:
    best_top1: float
    final_top1: float
    final_top5: float
    history: list[dict[str, Any]]
    run_dir: Path
    images_per_sec: float
    checkpoint: Path | None
    steps: int = 0
    elapsed_s: float = 0.0
    classes: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    evaluated_ema: bool = False
    weights_file: Path | None = None  # the evaluated weights (EMA if on) as safetensors, for --weights
    model: Any = None  # the trained nn.Module (raw weights, not the EMA)
    ema_model: Any = None  # the EMA copy, when EMA is on
