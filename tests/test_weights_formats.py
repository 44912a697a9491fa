"""Format detection, refusal of files that do not fit (naming the keys and the size), pickle safety, registry."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch

import effnet
from effnet.weights import UnsafeWeightsError, WeightsMismatchError, get_weight_set, list_weights, load_weights
from effnet.weights.convert import detect_naming
from effnet.weights.registry import local_package_file


def lite0_file():
    return local_package_file(get_weight_set("lite0"))


class Evil:
    """Unpickling this would create the marker file (a stand-in for any code execution)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("legacy", [False, True])
def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path, legacy):
    marker = tmp_path / "pwned"
    path = tmp_path / "weights.pth"
    payload = {"stem.conv.weight": torch.zeros(1), "evil": Evil(marker)}
    if legacy:
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    else:
        torch.save(payload, path)
    model = effnet.create_model("b0")
    with pytest.raises(UnsafeWeightsError, match="weights_only"):
        load_weights(model, str(path))
    with pytest.raises(UnsafeWeightsError):
        effnet.create_model("b0", weights=str(path))
    assert not marker.exists()


def test_not_a_weight_file(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("hello, these are not weights")
    with pytest.raises(ValueError, match="not a weight file"):
        load_weights(effnet.create_model("b0"), str(path))
    with pytest.raises(FileNotFoundError, match="registry tag"):
        load_weights(effnet.create_model("b0"), str(tmp_path / "missing.pth"))


def test_other_size_is_named():
    """The real Lite0 file offered to lite1 and to b0: refused, keys named, the right size suggested."""
    with pytest.raises(WeightsMismatchError) as info:
        effnet.create_model("lite1", weights=str(lite0_file()))
    text = str(info.value)
    assert "looks like lite0" in text and "missing" in text
    with pytest.raises(WeightsMismatchError) as info:
        effnet.create_model("b0", weights="lite0")
    text = str(info.value)
    assert "looks like lite0" in text and "se.reduce.weight" in text and "SE no" in text


def test_mis_shaped_and_unexpected_keys_are_listed(tmp_path):
    model = effnet.create_model("lite0")
    state = model.state_dict()
    state["stages.1.0.dw.conv.weight"] = torch.zeros(5, 1, 3, 3)
    state["extra.thing"] = torch.zeros(2)
    del state["head.bn.running_var"]
    torch.save(state, tmp_path / "bad.pth")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsMismatchError) as info:
        load_weights(model, str(tmp_path / "bad.pth"))
    text = str(info.value)
    assert "head.bn.running_var" in text and "extra.thing" in text
    assert "stages.1.0.dw.conv.weight: file (5, 1, 3, 3)" in text
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing changed
    with pytest.warns(UserWarning, match="do not fit"):
        load_weights(model, str(tmp_path / "bad.pth"), strict=False)


def test_other_class_count_and_channels_keep_backbone():
    ref = effnet.create_model("lite0", weights="lite0")
    with pytest.warns(UserWarning, match="classifier keeps"):
        model = effnet.create_model("lite0", weights="lite0", num_classes=10, in_chans=1)
    assert torch.equal(model.stages[3][0].dw.conv.weight, ref.stages[3][0].dw.conv.weight)
    assert torch.allclose(model.stem.conv.weight, ref.stem.conv.weight.sum(1, keepdim=True))
    assert model.classifier.weight.shape == (10, 1280)


def test_numerics_warning_when_model_built_without_them():
    model = effnet.create_model("lite0", padding="symmetric")
    with pytest.warns(UserWarning, match="'padding': 'same'"):
        load_weights(model, "lite0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_weights(effnet.create_model("lite0", weights="lite0"), "lite0")


def test_naming_detection():
    assert detect_naming(["features.0.0.weight"]) == "torchvision"
    assert detect_naming(["conv_stem.weight", "blocks.0.0.conv_dw.weight"]) == "timm"
    assert detect_naming(["_conv_stem.weight"]) == "lukemelas"
    assert detect_naming(["stem.conv.weight"]) == "effnet"
    with pytest.raises(ValueError, match="cannot tell"):
        detect_naming(["conv1.weight", "fc.weight"])


def test_prepare_config_for_weights():
    cfg = effnet.weights.prepare_config_for_weights("lite0", "lite0")
    assert (cfg.padding, cfg.bn_eps, cfg.activation) == ("same", 1e-3, "relu6")


def test_registry_matches_torchvision():
    import torchvision.models as tvm

    for i in range(8):
        for w in getattr(tvm, f"EfficientNet_B{i}_Weights"):
            ws = get_weight_set(f"torchvision/b{i}.{w.name.rsplit('_', 1)[-1].lower()}")
            assert ws is not None and ws.url == w.url and ws.model == f"b{i}"
            kw = w.transforms.keywords
            assert ws.preprocessing.resolution == kw["crop_size"]
            assert ws.preprocessing.resize == kw["resize_size"]
            assert ws.preprocessing.interpolation == kw["interpolation"].value
            assert w.url.endswith(f"-{ws.sha256_prefix}.pth")


def test_registry_matches_timm():
    from timm.models import get_pretrained_cfg

    sets = [ws for ws in list_weights() if ws.tag.startswith("timm/")]
    assert len(sets) >= 40
    assert {ws.source_format for ws in sets if "tf_efficientnet" in ws.tag} == {"timm_tf"}
    for ws in sets:
        cfg = get_pretrained_cfg(ws.tag.removeprefix("timm/")).to_dict()
        assert ws.url == (cfg["url"] or f"https://huggingface.co/{cfg['hf_hub_id']}/resolve/main/model.safetensors")
        assert ws.preprocessing.crop_pct == cfg["crop_pct"]
        assert ws.preprocessing.mean == tuple(cfg["mean"]) and ws.preprocessing.std == tuple(cfg["std"])


def test_registry_covers_every_model():
    for name in [f"b{i}" for i in range(8)]:
        formats = {ws.source_format for ws in list_weights(name)}
        assert {"torchvision", "keras", "timm_tf"} <= formats, name
        keras = get_weight_set(f"keras/{name}")
        assert keras.md5 and len(keras.md5) == 32
    for name in ("b8", "l2", "lite3", "lite4"):
        assert list_weights(name), name
    for name in ("lite0", "lite1", "lite2"):
        assert local_package_file(get_weight_set(name)).is_file()


def test_backbone_only_file_keeps_fresh_classifier(tmp_path):
    ref = effnet.create_model("lite0", weights="lite0")
    state = {k: v for k, v in ref.state_dict().items() if not k.startswith("classifier.")}
    torch.save(state, tmp_path / "notop.pth")
    with pytest.warns(UserWarning, match="no classifier"):
        model = effnet.create_model("lite0", weights=str(tmp_path / "notop.pth"))
    assert torch.equal(model.head.conv.weight, ref.head.conv.weight)
