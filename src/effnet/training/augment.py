"""Train and eval preprocessing built from torchvision's transforms (spec section 6)."""

from __future__ import annotations

from typing import Any

from torchvision import transforms as T

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
AUGMENTS = ("randaugment", "autoaugment", "none")


def crop_fraction(size: int) -> float:
    """The official eval crop: ``size / (size + 32)`` of the resized image (0.875 at 224)."""
    return size / (size + 32)


def train_transform(
    size: int,
    augment: str = "randaugment",
    magnitude: int = 9,
    layers: int = 2,
    flip: bool = True,
    scale: tuple[float, float] = (0.08, 1.0),
) -> Any:  # noqa: ANN401 - a torchvision transform
    """Random-resized crop, optional flip, RandAugment/AutoAugment, then normalise."""
    if augment not in AUGMENTS:
        raise ValueError(f"unknown augmentation {augment!r}; choose one of {', '.join(AUGMENTS)}")
    steps: list[Any] = [T.RandomResizedCrop(size, scale=scale, interpolation=T.InterpolationMode.BICUBIC)]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    if augment == "randaugment":
        steps.append(T.RandAugment(num_ops=layers, magnitude=magnitude))
    elif augment == "autoaugment":
        steps.append(T.AutoAugment(T.AutoAugmentPolicy.IMAGENET))
    steps += [T.ToTensor(), T.Normalize(MEAN, STD)]
    return T.Compose(steps)


def eval_transform(size: int, crop_pct: float | None = None) -> Any:  # noqa: ANN401 - a torchvision transform
    """Bicubic resize to ``size / crop_pct``, centre crop ``size``, normalise.

    Uses :func:`effnet.transforms.eval_transform` (the preprocessing that belongs to the
    weights) when that module is present; this local version follows the same spec numbers.
    """
    try:
        from effnet.transforms import eval_transform as weights_eval_transform  # type: ignore[attr-defined]
    except ImportError:
        weights_eval_transform = None
    if weights_eval_transform is not None:
        try:
            return weights_eval_transform(size, crop_pct=crop_pct) if crop_pct else weights_eval_transform(size)
        except TypeError:
            pass
    crop_pct = crop_fraction(size) if crop_pct is None else crop_pct
    resize = int(round(size / crop_pct))
    return T.Compose([
        T.Resize(resize, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(size),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ])
