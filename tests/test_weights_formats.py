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


# ---------------------------------------------------------------- tf_ ports, contradictions, invalid numerics
def _timm_logits(model, x):
    with torch.no_grad():
        return model.eval()(x)


def _load(path, source_format=None):
    from effnet.weights import prepare_config_for_weights

    config = prepare_config_for_weights("b0", str(path), source_format)
    model = effnet.create_model(config)
    load_weights(model, str(path), source_format=source_format)
    return model.eval()


def test_tf_port_is_decided_by_its_own_name_never_its_folder(tmp_path):
    """A tf_efficientnet_b0 state dict: TF numerics under its published name; under a neutral name one warning
    names source_format="timm_tf", which then gives timm's logits. A plain efficientnet_b0 file inside a folder
    called tf_efficientnet_... stays PyTorch-trained."""
    import timm

    x = torch.randn(1, 3, 97, 131, generator=torch.Generator().manual_seed(0))  # odd sizes: SAME padding matters
    tf_ref = timm.create_model("tf_efficientnet_b0")
    torch.save(tf_ref.state_dict(), tmp_path / "tf_efficientnet_b0.pth")
    torch.save(tf_ref.state_dict(), tmp_path / "model.pth")
    folder = tmp_path / "tf_efficientnet_experiments"
    folder.mkdir()
    plain_ref = timm.create_model("efficientnet_b0")
    torch.save(plain_ref.state_dict(), folder / "efficientnet_b0.pth")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        named = effnet.create_model("b0", weights=str(tmp_path / "tf_efficientnet_b0.pth"))
        plain = effnet.create_model("b0", weights=str(folder / "efficientnet_b0.pth"))
        declared = _load(tmp_path / "model.pth", source_format="timm_tf")
    assert (named.config.padding, named.config.bn_eps) == ("same", 1e-3)
    assert (plain.config.padding, plain.config.bn_eps) == ("symmetric", 1e-5)
    assert torch.allclose(_timm_logits(named, x), _timm_logits(tf_ref, x), atol=1e-4)
    assert torch.allclose(_timm_logits(declared, x), _timm_logits(tf_ref, x), atol=1e-4)
    assert torch.allclose(_timm_logits(plain, x), _timm_logits(plain_ref, x), atol=1e-4)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        guessed = effnet.create_model("b0", weights=str(tmp_path / "model.pth"))  # reads the file twice
    texts = [str(w.message) for w in caught if 'source_format="timm_tf"' in str(w.message)]
    assert len(texts) == 1 and str(tmp_path / "model.pth") in texts[0]
    assert guessed.config.padding == "symmetric"  # the documented assumption, now said out loud


def test_source_format_that_contradicts_the_key_names_is_refused(tmp_path):
    import torchvision

    torch.save(torchvision.models.efficientnet_b0().state_dict(), tmp_path / "tv.pth")
    for wrong in ("keras", "timm_tf", "lukemelas"):
        with pytest.raises(ValueError, match=f"source format '{wrong}' contradicts .* torchvision's"):
            effnet.weights.read_weights(str(tmp_path / "tv.pth"), source_format=wrong)
        with pytest.raises(ValueError, match="contradicts"):
            effnet.weights.convert_file(tmp_path / "tv.pth", tmp_path / "out.safetensors", "b0", source_format=wrong)
    assert not (tmp_path / "out.safetensors").exists()
    # effnet names carry no numerics of their own, so any declared origin fits them
    state = effnet.create_model("lite0").state_dict()
    assert effnet.weights.read_weights(state, source_format="timm_tf").config_hints["padding"] == "same"


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_and_nothing_changes(tmp_path, bad):
    model = effnet.create_model("lite0", weights="lite0")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["stages.2.1.dw.conv.weight"][0, 0, 1, 1] = bad
    torch.save(state, tmp_path / "bad.pth")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"stages\.2\.1\.dw\.conv\.weight has 1 NaN/infinite value"):
        load_weights(model, str(tmp_path / "bad.pth"))
    with pytest.raises(ValueError, match="NaN/infinite"):
        effnet.create_model("lite0", weights=state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_saved_config_with_invalid_numerics_is_refused(tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    good = effnet.weights.convert_file("lite0", tmp_path / "lite0.safetensors", "lite0")
    with safe_open(str(good), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    for field, value in (("bn_eps", -1), ("bn_eps", float("nan")), ("padding", "valid")):
        config = {**json.loads(meta["effnet_config"]), field: value}
        save_file(tensors, tmp_path / "bad.safetensors", metadata={**meta, "effnet_config": json.dumps(config)})
        with pytest.raises(ValueError, match=f"saved model configuration is invalid .*{field}"):
            effnet.create_model("lite0", weights=str(tmp_path / "bad.safetensors"))


def test_truncated_files_are_one_clear_error(tmp_path):
    good = effnet.weights.convert_file("lite0", tmp_path / "lite0.safetensors", "lite0")
    data = good.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="damaged safetensors file"):
        effnet.weights.read_weights(str(tmp_path / "cut.safetensors"))
