"""The 1000 ImageNet-1k classes in class-index order: names (from torchvision's metadata) and WordNet ids."""

from __future__ import annotations

from functools import cache

from effnet.data.imagenet_wnids import WNIDS


@cache
def imagenet_classes() -> tuple[str, ...]:
    from torchvision.models import EfficientNet_B0_Weights

    return tuple(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def class_name(index: int) -> str:
    return imagenet_classes()[index]


@cache
def wnid_index() -> dict[str, int]:
    """WordNet id (``n01440764``) -> class index of a 1000-way ImageNet classifier."""
    return {wnid: i for i, wnid in enumerate(WNIDS)}
