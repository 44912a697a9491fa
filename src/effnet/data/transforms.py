"""Evaluation preprocessing matching a weight set, and an image loader that always yields RGB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

from effnet.weights.preprocessing import preprocessing_for
from effnet.weights.registry import CROP_MODES, official_crop_pct, resize_size

__all__ = ["eval_transform", "load_image", "preprocessing_for", "to_rgb", "upright_rgb"]

INTERPOLATIONS = ("bicubic", "bilinear", "nearest")


def eval_transform(
    weights_or_config: Any = None,
    resolution: int | None = None,
    crop_pct: float | None = None,
    interpolation: str | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    test_size: bool = False,
) -> Any:
    """torchvision v2 transform: PIL image -> normalised float tensor (3, res, res).

    Resize to ``floor(resolution / crop_pct)`` (antialiased; the short side, or both sides for
    crop mode ``squash``), centre-crop ``resolution``, scale to 0-1, normalise: the same tensor
    as timm's ``create_transform(**resolve_data_config(pretrained_cfg=...))``. ``test_size``
    uses the weights' ``test_resolution`` / ``test_crop_pct`` where they have one (timm's
    ``use_test_size``). Explicit arguments override the weight set's values.
    """
    from torchvision.transforms import InterpolationMode, v2

    base = preprocessing_for(weights_or_config)
    if test_size:
        base = base.at_test_size()
    resolution = resolution or base.resolution
    crop_pct = crop_pct or (base.crop_pct if resolution == base.resolution else official_crop_pct(resolution))
    interpolation = interpolation or base.interpolation
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if not 0 < crop_pct <= 1:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    if base.crop_mode not in CROP_MODES:
        raise ValueError(f"crop_mode must be one of {CROP_MODES}, got {base.crop_mode!r}")
    size = resize_size(resolution, crop_pct)
    # Resize/crop before ToImage: PIL images are then resized by PIL, exactly like torchvision's presets.
    return v2.Compose([
        v2.Resize((size, size) if base.crop_mode == "squash" else size,
                  interpolation=InterpolationMode(interpolation), antialias=True),
        v2.CenterCrop(resolution),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(mean or base.mean), list(std or base.std)),
    ])


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL image as RGB: greyscale, palette (with or without transparency), CMYK, RGBA.

    Transparent pixels are composited on white rather than showing whatever colour they hide.
    """
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit/float greyscale: rescale to 8 bits before converting.
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        lo, hi = float(array.min()), float(array.max())
        array = (array - lo) / (hi - lo) * 255 if hi > lo else array * 0
        image = Image.fromarray(array.astype("uint8"), "L")
    return image.convert("RGB")


def upright_rgb(image: Image.Image) -> Image.Image:
    """A decoded image as RGB and as its owner sees it.

    Cameras store a photo as the sensor read it and say in the EXIF orientation tag how to turn it;
    ``exif_transpose`` applies that turn (and drops the tag).
    """
    from PIL import ImageOps

    return to_rgb(ImageOps.exif_transpose(image))


def load_image(path: str | Path) -> Image.Image:
    """Open an image file as RGB, upright (:func:`upright_rgb`); a file that is not a readable image raises
    ValueError naming it."""
    from PIL import UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with Image.open(path) as image:
            image.load()
            return upright_rgb(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None
