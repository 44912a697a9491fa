"""Train and eval preprocessing built from torchvision's transforms (spec section 6)."""

from __future__ import annotations

from typing import Any

from torchvision import transforms as T

from effnet.choices import AUGMENTS
from effnet.weights.registry import IMAGENET_MEAN, IMAGENET_STD


def train_transform(
    size: int,
    augment: str = "randaugment",
    magnitude: int = 9,
    layers: int = 2,
    flip: bool = True,
    scale: tuple[float, float] = (0.08, 1.0),
    model: Any = None,  # noqa: ANN401 - config/weights whose normalisation to use
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
    mean, std = normalisation(model)
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(steps)


def normalisation(model: Any = None) -> tuple[tuple[float, ...], tuple[float, ...]]:  # noqa: ANN401
    """Mean and std for a model config / weight set (Lite: 127/128), via :mod:`effnet.data.transforms`."""
    if model is None:
        return IMAGENET_MEAN, IMAGENET_STD
    from effnet.data.transforms import preprocessing_for

    pre = preprocessing_for(model)
    return tuple(pre.mean), tuple(pre.std)
