"""Training recipes as data: the paper's from-scratch ImageNet recipe and a short fine-tune recipe.

A :class:`Recipe` holds the defaults of every :class:`~effnet.training.config.TrainConfig` field that is
``None`` ("the recipe decides"); :func:`resolve` fills them in, so a flag the user gave always wins.
Without ``weights`` the paper's recipe applies; with pretrained weights the fine-tune recipe does,
because the paper's (350 epochs from scratch: RMSProp at 0.016/256, RandAugment, crops down to 8%,
EMA 0.9999) destroys pretrained features in a short run: see docs/transfer.md for the ablation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from effnet.choices import RECIPES
from effnet.training.config import TrainConfig
from effnet.training.schedule import LR_PER_256


@dataclass(frozen=True)
class Recipe:
    name: str
    why: str
    optimizer: str
    lr_per_256: float  # scaled linearly with the global batch (the paper's rule)
    weight_decay: float
    schedule: str
    ema: bool
    ema_decay: float
    augment: str
    crop_scale: tuple[float, float]
    label_smoothing: float = 0.1
    warmup_epochs: float | None = None  # None: the paper's 5 epochs, at most a tenth of the run
    warmup_steps: int | None = None  # fine-tuning: a fixed number of steps, however short the epochs
    zero_head: bool = False  # a new classifier starts at zero (loss ln(classes)) instead of the paper's init
    backbone_lr_scale: float = 1.0  # the new classifier trains at lr, everything else at lr * this
    bn_momentum: float | None = None  # None: the model's own (0.01, TF's 0.99)
    dropout: float | None = None  # None: the model's own
    drop_connect: float | None = None


PAPER = Recipe(
    name="paper", why="the paper's ImageNet-from-scratch recipe (RMSProp-TF 0.016/256, RandAugment, EMA)",
    optimizer="rmsprop_tf", lr_per_256=LR_PER_256, weight_decay=1e-5, schedule="step", ema=True,
    ema_decay=0.9999, augment="randaugment", crop_scale=(0.08, 1.0),
)

FINETUNE = Recipe(
    name="finetune",
    why="AdamW, new head at 0.024/256 from zero, backbone at a third of that, cosine after 50 warm-up steps, "
        "crops >= 50%, no RandAugment, no EMA, BN statistics re-estimated at momentum 0.1",
    optimizer="adamw", lr_per_256=0.024, weight_decay=0.05, schedule="cosine", ema=False, ema_decay=0.999,
    augment="none", crop_scale=(0.5, 1.0), warmup_steps=50, zero_head=True, backbone_lr_scale=1 / 3, bn_momentum=0.1,
    drop_connect=0.1,
)

_BY_NAME = {r.name: r for r in (PAPER, FINETUNE)}

# TrainConfig fields a recipe fills when the user left them None.
_FIELDS = ("optimizer", "weight_decay", "schedule", "ema", "ema_decay", "augment", "crop_scale", "label_smoothing",
           "warmup_steps", "zero_head", "backbone_lr_scale", "bn_momentum", "dropout", "drop_connect")


def get_recipe(name: str) -> Recipe:
    if name not in _BY_NAME:
        raise ValueError(f"unknown recipe {name!r}; choose {' or '.join(RECIPES)}")
    return _BY_NAME[name]


def choose(cfg: TrainConfig) -> tuple[Recipe, str]:
    """The recipe for ``cfg`` and one line saying which and why."""
    if cfg.recipe is not None:
        recipe = get_recipe(cfg.recipe)
        return recipe, f"recipe: {recipe.name} (--recipe {recipe.name}): {recipe.why}"
    if cfg.weights is not None:
        recipe = FINETUNE
        return recipe, (f"recipe: finetune, because --weights {cfg.weights} is pretrained: {recipe.why}; "
                        "--recipe paper for the paper's from-scratch recipe")
    recipe = PAPER
    return recipe, (f"recipe: paper, because no --weights were given (training from scratch): {recipe.why}; "
                    "--recipe finetune for the fine-tune recipe")


def resolve(cfg: TrainConfig) -> tuple[TrainConfig, str]:
    """``cfg`` with every ``None`` the recipe decides filled in, and the line that explains the choice."""
    recipe, line = choose(cfg)
    filled = {f: getattr(recipe, f) for f in _FIELDS if getattr(cfg, f) is None and getattr(recipe, f) is not None}
    if cfg.warmup_epochs is None and cfg.warmup_steps is None and recipe.warmup_steps is None:
        filled["warmup_epochs"] = recipe.warmup_epochs  # None stays "5 epochs, at most a tenth of the run"
    if cfg.warmup_epochs is not None:
        filled.pop("warmup_steps", None)  # an explicit warm-up in epochs replaces the recipe's steps
    if cfg.lr is None:
        filled["lr"] = recipe.lr_per_256 * cfg.batch_size / 256
    filled["recipe"] = recipe.name
    given = {f: getattr(cfg, f) for f in ("lr", "warmup_epochs", *_FIELDS) if getattr(cfg, f) is not None}
    if given:
        line += "; your " + ", ".join(f"--{k.replace('_', '-')}" for k in given) + " kept"
    return dataclasses.replace(cfg, **filled), line
