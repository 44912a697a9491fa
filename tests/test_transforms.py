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


def _timm_tags():
    from effnet.weights.registry import list_weights

    return [ws.tag for ws in list_weights() if ws.source_format.startswith("timm")]


def test_every_timm_tag_is_in_the_registry():
    from timm.models import get_pretrained_cfg

    tags = _timm_tags()
    assert len(tags) == 51
    for tag in ("efficientnet_b0.ra4_e3600_r224_in1k", "efficientnet_b1.ra4_e3600_r240_in1k",
                "efficientnet_b5.sw_in12k", "efficientnet_b5.sw_in12k_ft_in1k"):
        assert f"timm/{tag}" in tags
    for tag in tags:
        assert get_pretrained_cfg(tag.removeprefix("timm/")) is not None, tag


@pytest.mark.parametrize("test_size", [False, True], ids=["input_size", "test_input_size"])
def test_same_tensor_as_timm_for_every_timm_tag(cat, test_size):
    """effnet's eval_transform against timm's create_transform(**resolve_data_config(pretrained_cfg))."""
    from timm.data import create_transform, resolve_data_config
    from timm.models import get_pretrained_cfg

    rocket = Image.fromarray(data.rocket())  # landscape; the cat is nearly square
    differ, sizes = [], set()
    for tag in _timm_tags():
        cfg = get_pretrained_cfg(tag.removeprefix("timm/")).to_dict()
        theirs_tf = create_transform(**resolve_data_config(pretrained_cfg=cfg, use_test_size=test_size))
        ours_tf = eval_transform(tag, test_size=test_size)
        for image in (cat, rocket):
            ours, theirs = ours_tf(image), theirs_tf(image)
            sizes.add(tuple(ours.shape))
            if ours.shape != theirs.shape or (ours - theirs).abs().max() > 1e-5:
                differ.append(tag)
    assert not differ
    assert len(sizes) > 10  # the tags really cover many resolutions


def test_test_size_and_squash_crop():
    p = preprocessing_for("timm/efficientnet_b2.ra_in1k")
    assert (p.resolution, p.test_resolution, p.test_crop_pct) == (256, 288, 1.0)
    assert p.at_test_size().resize == 288 and p.at_test_size().at_test_size() == p.at_test_size()
    assert preprocessing_for("timm/efficientnet_b5.sw_in12k_ft_in1k").crop_mode == "squash"
    # timm floors res / crop_pct: 240 / 0.882 = 272.1 -> 272 (rounding gave 272 too), 300 / 0.904 = 331.9 -> 331
    assert preprocessing_for("timm/tf_efficientnet_b3.in1k").resize == 331
    wide = Image.new("RGB", (400, 200), (10, 20, 30))
    assert eval_transform("timm/efficientnet_b5.sw_in12k_ft_in1k")(wide).shape == (3, 448, 448)


def test_a_converted_file_keeps_crop_mode_and_test_size(tmp_path):
    import dataclasses
    import json

    from safetensors.torch import save_file

    import effnet

    model = effnet.create_model("lite0", num_classes=10)
    prep = dataclasses.replace(preprocessing_for("timm/efficientnet_b5.sw_in12k_ft_in1k"), resolution=64,
                               test_resolution=96, test_crop_pct=1.0)
    meta = {"format": "pt", "effnet_config": json.dumps(model.config.to_dict()),
            "effnet_preprocessing": json.dumps(prep.__dict__)}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "w.safetensors", metadata=meta)
    assert preprocessing_for(str(tmp_path / "w.safetensors")) == prep
    assert eval_transform(str(tmp_path / "w.safetensors"), test_size=True)(Image.new("RGB", (50, 90))).shape == (3, 96, 96)
