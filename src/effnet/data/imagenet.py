"""The 1000 ImageNet-1k class names, in class-index order (taken from torchvision's metadata)."""

from __future__ import annotations

from functools import cache


@cache
def imagenet_classes() -> tuple[str, ...]:
    from torchvision.models import EfficientNet_B0_Weights

    return tuple(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def class_name(index: int) -> str:
    return imagenet_classes()[index]
