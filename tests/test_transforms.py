"""eval_transform against torchvision's own preset; every image mode comes out RGB."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from effnet.data.transforms import eval_transform, load_image, preprocessing_for, to_rgb


@pytest.fixture(scope="module")
def cat():
    return Image.fromarray(data.chelsea())


def test_matches_torchvision_preset(cat):
    import torchvision.models as tvm

    for tag, weights in [("torchvision/b0", tvm.EfficientNet_B0_Weights.IMAGENET1K_V1),
                         ("torchvision/b1.v2", tvm.EfficientNet_B1_Weights.IMAGENET1K_V2)]:
        ours = eval_transform(tag)(cat)
        theirs = weights.transforms()(cat)
        assert ours.shape == theirs.shape
        assert (ours - theirs).abs().max() < 1e-4, tag


def test_defaults_follow_the_official_recipe(cat):
    p = preprocessing_for("b3")
    assert (p.resolution, p.interpolation) == (300, "bicubic")
    assert p.crop_pct == pytest.approx(300 / 332) and p.resize == 332
    lite = preprocessing_for("lite0")
    assert lite.mean == pytest.approx((127 / 255,) * 3) and lite.std == pytest.approx((128 / 255,) * 3)
    x = eval_transform("lite0")(cat)
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    # (x - 127) / 128 on 0-255 pixels: a pure white image maps to 1.0
    white = eval_transform("lite0")(Image.new("RGB", (300, 250), (255, 255, 255)))
    assert torch.allclose(white, torch.full_like(white, 1.0), atol=1e-5)


def test_overrides(cat):
    x = eval_transform("b0", resolution=96, crop_pct=1.0, interpolation="bilinear", mean=(0, 0, 0), std=(1, 1, 1))(cat)
    assert x.shape == (3, 96, 96) and 0.0 <= x.min() and x.max() <= 1.0
    with pytest.raises(ValueError, match="interpolation"):
        eval_transform("b0", interpolation="lanczos9")


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA", "I;16", "1"])
def test_every_mode_becomes_rgb(mode, tmp_path, cat):
    image = cat.convert(mode) if mode != "I;16" else Image.fromarray((np.asarray(cat.convert("L")) * 200).astype(np.uint16))
    suffix = ".tif" if mode in ("CMYK", "I;16") else ".png"
    image.save(tmp_path / f"x{suffix}")
    rgb = load_image(tmp_path / f"x{suffix}")
    assert rgb.mode == "RGB" and rgb.size == cat.size


def test_transparent_pixels_become_white():
    rgba = Image.new("RGBA", (4, 4), (10, 20, 30, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)
    palette = Image.new("P", (4, 4), 0)
    palette.info["transparency"] = 0
    assert to_rgb(palette).getpixel((1, 1)) == (255, 255, 255)


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        load_image(bad)
