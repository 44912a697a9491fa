"""The evaluation preprocessing a model expects, and timm's description of it (``pretrained_cfg``).

A model built without weights is described by the paper's rule (:func:`paper_preprocessing`); a
weight set brings its own :class:`Preprocessing` (``effnet.weights.registry``), which the factory
puts in place of it. Plain data: nothing here reads files or builds a network.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from effnet.arch.config import ModelConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite normalises 0-255 pixels as (x - 127) / 128; the same on 0-1 pixels:
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3
# The official TF evaluation crops res / (res + 32) of the image (efficientnet preprocessing CROP_PADDING).
CROP_PADDING = 32
CROP_MODES = ("center", "squash")


def official_crop_pct(resolution: int) -> float:
    return resolution / (resolution + CROP_PADDING)


def resize_size(resolution: int, crop_pct: float) -> int:
    """The resize before the crop: floor(resolution / crop_pct), timm's rule (torchvision's sizes are exact)."""
    return math.floor(resolution / crop_pct)


@dataclass(frozen=True)
class Preprocessing:
    """Evaluation preprocessing: resize to resolution / crop_pct, centre-crop, normalise.

    ``crop_mode`` ``"center"`` resizes the short side (aspect kept); ``"squash"`` resizes both
    sides (timm's squash). ``mean``/``std`` apply to pixels scaled to 0-1. ``test_resolution`` /
    ``test_crop_pct`` are timm's larger evaluation size, where the weights were measured at one.
    """

    resolution: int
    crop_pct: float
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    crop_mode: str = "center"
    test_resolution: int | None = None
    test_crop_pct: float | None = None

    @property
    def resize(self) -> int:
        return resize_size(self.resolution, self.crop_pct)

    def at_test_size(self) -> Preprocessing:
        """The preprocessing at ``test_resolution`` / ``test_crop_pct`` (itself when there is none)."""
        if self.test_resolution is None:
            return self
        return dataclasses.replace(self, resolution=self.test_resolution, crop_pct=self.test_crop_pct or self.crop_pct,
                                   test_resolution=None, test_crop_pct=None)


def paper_preprocessing(config: ModelConfig) -> Preprocessing:
    """Without a weight set: the model's resolution, the official crop res / (res + 32), bicubic,
    ImageNet mean/std (Lite models: (x - 127) / 128, as their TF release)."""
    lite = config.activation == "relu6"
    res = config.resolution
    return Preprocessing(res, official_crop_pct(res), "bicubic",
                         LITE_MEAN if lite else IMAGENET_MEAN, LITE_STD if lite else IMAGENET_STD)


def timm_cfg(config: ModelConfig, preprocessing: Preprocessing, num_classes: int, tag: str = "",
             url: str = "") -> dict[str, Any]:
    """timm's ``pretrained_cfg`` for a model of ``config`` fed with ``preprocessing``."""
    res = preprocessing.resolution
    cfg: dict[str, Any] = dict(
        architecture=f"effnet_{config.name}", tag=tag, url=url, hf_hub_id="", num_classes=num_classes,
        input_size=(3, res, res), pool_size=(math.ceil(res / 32),) * 2, crop_pct=preprocessing.crop_pct,
        crop_mode=preprocessing.crop_mode, interpolation=preprocessing.interpolation,
        mean=tuple(preprocessing.mean), std=tuple(preprocessing.std), first_conv="stem.conv", classifier="classifier",
    )
    if preprocessing.test_resolution:
        cfg["test_input_size"] = (3, preprocessing.test_resolution, preprocessing.test_resolution)
        cfg["test_crop_pct"] = preprocessing.test_crop_pct or preprocessing.crop_pct
    return cfg
