"""TorchScript, FX and the torch.compile family on effnet models, as they work on torchvision's EfficientNet.

Every named model is one of two kinds of block (Swish + SE, or ReLU6 without SE: EfficientNet-Lite)
with either padding; the named sizes differ only in width, depth, resolution and dropout. Each kind is
checked at a small width and depth, in train and eval mode, against the eager model's own output.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.fx
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from effnet import create_model
from effnet.arch.config import NAMED_CONFIGS
from effnet.arch.layers import ConvBNAct

KINDS = [("b0", "symmetric"), ("b0", "same"), ("lite0", "symmetric"), ("lite0", "same")]


def _small(name: str, padding: str = "symmetric", **kw: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, width=0.25, depth=0.34, num_classes=7, padding=padding, **kw)


def _run(model: torch.nn.Module, x: torch.Tensor, seed: int = 3) -> torch.Tensor:
    torch.manual_seed(seed)  # the same dropout / drop-connect masks for the eager and the converted model
    return model(x)


def test_kinds_cover_every_named_model():
    kinds = {(NAMED_CONFIGS[name].activation, NAMED_CONFIGS[name].se_ratio > 0) for name, _ in KINDS}
    assert {(c.activation, c.se_ratio > 0) for c in NAMED_CONFIGS.values()} <= kinds


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name,padding", KINDS)
def test_torchscript_matches_eager(name, padding, train):
    model = _small(name, padding).train(train)
    scripted = torch.jit.script(model)
    x = torch.randn(2, 3, 45, 51)  # odd sizes: SAME padding stays dynamic
    torch.testing.assert_close(_run(scripted, x), _run(model, x), rtol=1e-5, atol=1e-5)
    if train:  # gradients flow through the plain ops TorchScript runs instead of effnet's autograd functions
        _run(scripted, x).sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters()
                   if n.endswith("conv.weight"))
    else:
        with torch.no_grad():  # the eager fast path (folded BN) still agrees with the scripted plain blocks
            torch.testing.assert_close(scripted(x), model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name,padding", KINDS)
def test_fx_symbolic_trace_matches_eager(name, padding, train):
    model = _small(name, padding).train(train)
    graph = torch.fx.symbolic_trace(model)
    x = torch.randn(2, 3, 45, 51)
    torch.testing.assert_close(_run(graph, x), _run(model, x), rtol=1e-5, atol=1e-5)
    targets = {str(n.target) for n in graph.graph.nodes if n.op == "call_module"}  # (SAME-padded convs are traced through)
    assert {"stem.bn", "stages.1.0.dw.bn", "stages.1.0.project.conv", "stages.1.0.project.bn", "head.conv"} <= targets
    with pytest.raises(ValueError, match="in_chans=1"):  # the input check is a node of the graph
        graph(torch.randn(2, 1, 45, 51))


def test_feature_extractor_per_layer_nodes_like_torchvision():
    from torchvision.models import efficientnet_b0

    theirs = get_graph_node_names(efficientnet_b0())[1]
    assert "features.2.0.block.1" in theirs  # torchvision: per-layer names (block 1's depthwise conv-BN-act)
    model = _small("b0").eval()
    train_nodes, eval_nodes = get_graph_node_names(model)
    for node in ("stem.conv", "stages.1.0.dw.conv", "stages.1.0.dw.bn", "stages.3.0.project.conv", "head.act.silu"):
        assert node in train_nodes and node in eval_nodes, node
    extractor = create_feature_extractor(model, {"stages.1": "s1", "stages.1.0.dw.conv": "dw", "head.act.silu": "head"})
    assert not model.training
    x = torch.randn(2, 3, 64, 64)
    seen: dict[str, torch.Tensor] = {}
    hooks = [model.stages[1].register_forward_hook(lambda m, i, o: seen.setdefault("s1", o)),
             model.stages[1][0].dw.conv.register_forward_hook(lambda m, i, o: seen.setdefault("dw", o))]
    model(x)  # with autograd on: the plain blocks, so the conv module runs and its hook fires
    for h in hooks:
        h.remove()
    out = extractor(x)
    torch.testing.assert_close(out["s1"], seen["s1"])
    torch.testing.assert_close(out["dw"], seen["dw"])
    assert out["head"].shape == (2, model.num_features, 2, 2)


def test_failed_trace_changes_nothing():
    """A trace that fails after going through the model leaves its mode, statistics and caches as they were."""
    model = _small("b0").eval()
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))  # fill the eval fast path's folded-weight caches
    before = copy.deepcopy(model.state_dict())
    caches = [m._folded for m in model.modules() if isinstance(m, ConvBNAct)]
    assert all(c is not None for c in caches)

    class Branchy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.net(x)
            return out if out.sum() > 0 else -out  # control flow on a traced value: FX refuses

    with pytest.raises(torch.fx.proxy.TraceError):
        torch.fx.symbolic_trace(Branchy())
    assert not model.training
    assert all(a is b for a, b in zip([m._folded for m in model.modules() if isinstance(m, ConvBNAct)], caches,
                                      strict=True))
    model.train()
    with pytest.raises(torch.fx.proxy.TraceError):
        torch.fx.symbolic_trace(Branchy())
    assert model.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # BN statistics included


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_dynamo_sees_one_graph_without_breaks(train):
    model = _small("b0", "same").train(train)
    explained = torch._dynamo.explain(model)(torch.randn(2, 3, 45, 51))
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


def test_torch_export_and_jit_trace_match_eager():
    model = _small("b0", "same").eval()
    x = torch.randn(2, 3, 45, 51)
    program = torch.export.export(model, (x,))
    torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-5)
    traced = torch.jit.trace(model, x)
    torch.testing.assert_close(traced(x), model(x), rtol=1e-5, atol=1e-5)
