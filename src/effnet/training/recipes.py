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

BATCH_SIZE = 64  # the paper recipe's batch, and the largest the fine-tune recipe picks by itself
MIN_BATCH_SIZE = 8
MIN_STEPS_PER_EPOCH = 32  # fewer and a short fine-tune is over before the new head has settled (issue 21)
ADAMW_LR_BATCH_CAP = 32  # a fine-tune's AdamW rate grows with the batch up to here, then stays (issue 21)
# Fewer training images and a fine-tune of 1-3 epochs trailed `effnet probe` on every set measured (300-2,000 images,
# by 1.7-8.6 points); from 2,400 images up it led (by 1.1-15.7): docs/transfer.md, "Where the fine-tune overtakes".
LINEAR_PROBE_BELOW = 2400
# Flags that ask for the backbone to be fine-tuned (or not) in so many words: given, no linear probe is derived.
_BACKBONE_FLAGS = ("head_init", "freeze_backbone", "backbone_lr_scale")


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
    head_init: str | None = None  # "probe": fit a new classifier on frozen features first (LP-FT); "random": don't
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
    why="AdamW at 0.024/256 up to batch 32 (3e-3 above) for the backbone and the new head (from zero), "
        "cosine after 50 warm-up steps, "
        "crops >= 50%, no RandAugment, no EMA, BN statistics re-estimated at momentum 0.1, "
        "the new head not fitted by probe first (LP-FT scored 4 points lower on 300 images; --head-init probe)",
    # backbone at the head's rate (issue 21): a third of it scored 5.4 points lower at 32 px, a tenth 10 at 64 px
    optimizer="adamw", lr_per_256=0.024, weight_decay=0.05, schedule="cosine", ema=False, ema_decay=0.999,
    augment="none", crop_scale=(0.5, 1.0), warmup_steps=50, zero_head=True, backbone_lr_scale=1.0, bn_momentum=0.1,
    drop_connect=0.1,
    # LP-FT (head fitted by `effnet probe`'s code, then fine-tuned) lost on the small set it was meant for: 2 classes
    # x 150 at 64 px, 2 epochs, seeds 0-2, 62.8% against the zero head's 66.9% (docs/transfer.md, issue 21).
    head_init="random",
)

_BY_NAME = {r.name: r for r in (PAPER, FINETUNE)}

# TrainConfig fields a recipe fills when the user left them None.
_FIELDS = ("optimizer", "weight_decay", "schedule", "ema", "ema_decay", "augment", "crop_scale", "label_smoothing",
           "warmup_steps", "zero_head", "head_init", "backbone_lr_scale", "bn_momentum", "dropout", "drop_connect")


def fine_tune_batch_size(n_images: int) -> int:
    """The largest power of two up to 64 that makes an epoch of ``n_images`` at least 32 steps (8 at least).

    300 images at the old fixed 64 were 4 steps an epoch: two epochs ended inside the warm-up.
    """
    batch = BATCH_SIZE
    while batch > MIN_BATCH_SIZE and n_images // batch < MIN_STEPS_PER_EPOCH:
        batch //= 2
    return batch


def fine_tune_lr(recipe: Recipe, batch_size: int) -> float:
    """The recipe's rate per 256 images, scaled linearly with the batch up to 32 and held there above.

    Adam normalises its step, so a larger batch does not call for a proportionally larger one (the paper's
    linear rule is for RMSProp/SGD): on the full CIFAR-10 split at 32 px, one epoch at the derived batch 64,
    linear scaling's 6e-3 scored 53.3% and 3e-3 scored 76.0% (the plain loop: 55.2%; docs/transfer.md).
    """
    return recipe.lr_per_256 * min(batch_size, ADAMW_LR_BATCH_CAP) / 256


def whole_image_eval(image_size: int | None, weights_resolution: int | None) -> bool:
    """Score the val split on the whole image when training below the weights' own resolution.

    The official centre crop adds a fixed 32 px border (size / (size + 32)): 87.5% of each side at 224 px,
    but half of each side at 32 px, where it cost 18 points of val top-1 (docs/transfer.md, issue 21).
    """
    return image_size is not None and weights_resolution is not None and image_size < weights_resolution


def single_pass(epochs: int, max_steps: int | None) -> bool:
    """One epoch sees every image once: random crops then only shift train from val, they regularise nothing.

    On 5,000 CIFAR-10 images at 32 px, one epoch, whole images scored 52.2% against 46.6% with crops >= 50%.
    """
    return epochs == 1 and max_steps is None


def linear_probe_instead(cfg: TrainConfig, n_images: int | None) -> bool:
    """Keep the pretrained backbone and fit the head as `effnet probe` does: few images, and no flag says otherwise.

    On 300 images of two classes at 64 px, 2 epochs, fine-tuning scored 66.3% (8 seeds) against the probe's 69.0%,
    and 64.2% (4 seeds) against 71.3% on 600; the backbone frozen with the probe's head scored 69.1% and 71.6%.
    On ten classes at 96 px, 3 epochs, the probe still led at 2,000 images (67.9 against 64.5%) and the
    fine-tune at 3,000 (73.3 against 68.6%): docs/transfer.md, issue 21.
    """
    asked = any(getattr(cfg, f) is not None for f in _BACKBONE_FLAGS) or cfg.freeze_stages != 0
    return n_images is not None and n_images < LINEAR_PROBE_BELOW and not asked


def _linear_probe(cfg: TrainConfig, n_images: int) -> tuple[dict[str, object], str]:
    """The fields that make the fine-tune `effnet probe`'s model, and the reason for the recipe line."""
    fields: dict[str, object] = {"head_init": "probe", "freeze_backbone": True}  # frozen: BN in eval mode too
    also = ""
    if cfg.eval_crop_pct is None:
        also = "val on the official centre crop, "  # the probe's view: None is the official crop at any size
    if cfg.label_smoothing is None:  # the probe's fit has none; with 0.1 the same head scored 65.0%, not 69.0%
        fields["label_smoothing"] = 0.0
        also += "no label smoothing, "
    return fields, (f"backbone kept as pretrained (BN on ImageNet statistics) and the head fitted by the probe, "
                    f"{also}as `effnet probe` does, because {n_images} training images < {LINEAR_PROBE_BELOW} "
                    "(a fine-tune of 1-3 epochs trailed the probe on every set of 300-2,000 images measured, "
                    "by 1.7-8.6 points: docs/transfer.md); --no-freeze-backbone fine-tunes it")


def _weights_resolution(cfg: TrainConfig) -> int | None:
    from effnet.weights.preprocessing import preprocessing_for

    try:
        return preprocessing_for(str(cfg.weights) if cfg.weights else cfg.model).resolution
    except (OSError, ValueError, KeyError):
        return None


def count_train_images(cfg: TrainConfig) -> int | None:
    """How many training images ``cfg.data`` holds; None where the folder cannot be read (the run says why)."""
    from effnet.data.folders import find_splits
    from effnet.training.data import demo_dataset

    try:
        root = demo_dataset() if str(cfg.data) == "demo" else cfg.data
        return len(find_splits(root, cfg.val_fraction, cfg.seed).train)
    except (OSError, ValueError):
        return None


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
    derived = []
    n_images = count_train_images(cfg) if recipe is FINETUNE else None
    probe_only = recipe is FINETUNE and linear_probe_instead(cfg, n_images)
    if cfg.freeze_backbone is None:
        filled["freeze_backbone"] = probe_only
    if probe_only:
        fields, reason = _linear_probe(cfg, n_images)
        filled.update(fields)
        derived.append(reason)
    if cfg.batch_size is None:
        filled["batch_size"] = BATCH_SIZE if n_images is None else fine_tune_batch_size(n_images)
        if filled["batch_size"] != BATCH_SIZE:
            derived.append(f"batch {filled['batch_size']}, because {n_images} training images at {BATCH_SIZE} would "
                           f"make {n_images // BATCH_SIZE} steps an epoch (wanted >= {MIN_STEPS_PER_EPOCH})")
    if (recipe is FINETUNE and not probe_only and cfg.eval_crop_pct is None
            and whole_image_eval(cfg.image_size, _weights_resolution(cfg))):
        filled["eval_crop_pct"] = 1.0
        derived.append(f"val scored on the whole image, because at {cfg.image_size} px the official centre crop "
                       f"would keep {cfg.image_size / (cfg.image_size + 32):.0%} of each side")
    if recipe is FINETUNE and cfg.crop_scale is None and single_pass(cfg.epochs, cfg.max_steps):
        filled["crop_scale"] = (1.0, 1.0)
        derived.append("whole images, no random crops, because one epoch shows each image once")
    if cfg.lr is None:
        batch = filled.get("batch_size", cfg.batch_size)
        linear = recipe.lr_per_256 * batch / 256
        filled["lr"] = fine_tune_lr(recipe, batch) if recipe is FINETUNE else linear
        if filled["lr"] != linear:
            derived.append(f"lr {filled['lr']:.3g}, because AdamW's step does not grow with the batch "
                           f"(0.024/256 x {batch} would be {linear:.3g})")
    if derived:
        line += "; derived: " + "; ".join(derived)
    filled["recipe"] = recipe.name
    given = {f: getattr(cfg, f) for f in ("lr", "warmup_epochs", *_FIELDS, "freeze_backbone") if getattr(cfg, f) is not None}
    if given:
        line += "; your " + ", ".join(f"--{k.replace('_', '-')}" for k in given) + " kept"
    return dataclasses.replace(cfg, **filled), line
