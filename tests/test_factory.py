"""effnet.factory: the weights file is read once, and its facts reach the model (issue 18, point 1)."""

from __future__ import annotations

import pytest
import torch

import effnet.weights.load
from effnet.factory import create_model, pretrained_cfg
from effnet.weights import read_weights
from effnet.weights.registry import get_weight_set, local_package_file


@pytest.fixture(scope="module")
def lite0_file():
    try:
        return local_package_file(get_weight_set("lite0"))
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def test_create_model_reads_the_weights_file_once(lite0_file, monkeypatch):
    reads = []
    real = effnet.weights.load.read_file
    monkeypatch.setattr(effnet.weights.load, "read_file", lambda path: reads.append(path) or real(path))
    model = create_model("lite0", weights=str(lite0_file))
    assert reads == [lite0_file]
    # the file's facts: TF numerics, the Lite preprocessing, its own tensors
    assert (model.config.padding, model.config.bn_eps) == ("same", 1e-3)
    assert model.pretrained_cfg["mean"] == pytest.approx((127 / 255,) * 3)
    assert model.pretrained_cfg["tag"] == "lite0" and model.pretrained_cfg["num_classes"] == 1000
    sw = read_weights(str(lite0_file))
    assert torch.equal(model.state_dict()["stem.conv.weight"], sw.state["stem.conv.weight"])


def test_weights_read_beforehand_are_not_read_again(lite0_file, monkeypatch):
    sw = read_weights(str(lite0_file))
    monkeypatch.setattr(effnet.weights.load, "read_file", lambda path: pytest.fail(f"read {path} again"))
    model = create_model("lite0", weights=sw)
    assert model.pretrained_cfg == pretrained_cfg("lite0", sw)
    assert model.config.padding == "same"


def test_pretrained_cfg_without_weights_is_the_paper_rule():
    cfg = pretrained_cfg("b3")
    assert cfg["input_size"] == (3, 300, 300) and cfg["crop_pct"] == pytest.approx(300 / 332)
    assert cfg == create_model("b3").pretrained_cfg
