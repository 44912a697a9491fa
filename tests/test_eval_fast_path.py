"""Eval-mode fast path: BatchNorm folded on the fly, in-place SE and residual, same numbers.

Agreement with torchvision/timm/Keras through this path is covered by test_weights_equivalence.py
(its comparisons run in eval mode under no_grad).
"""

from __future__ import annotations

import pytest
import torch

from effnet import create_model
from effnet.arch import fastpath
from effnet.arch.layers import ConvBNAct


def _randomize_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
    return model


def _unfused(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with fastpath.disabled(model), torch.no_grad():
        return model(x)


@pytest.mark.parametrize("matmul_rows", [0, 10**9], ids=["1x1-as-conv", "1x1-as-matmul"])
@pytest.mark.parametrize("name,padding,size", [("b0", "symmetric", 224), ("b0", "same", 231), ("lite0", "same", 200)])
def test_folded_eval_matches_unfused(name, padding, size, matmul_rows):
    model = _randomize_bn(create_model(name, padding=padding)).eval()
    model.set_fast_eval(True, matmul_max_rows=matmul_rows)
    x = torch.randn(2, 3, size, size).contiguous(memory_format=torch.channels_last)  # used as is, no copy
    before = x.clone()
    with torch.no_grad():
        fast = model(x)
    torch.testing.assert_close(fast, _unfused(model, x), rtol=1e-4, atol=1e-4)
    assert torch.equal(x, before), "the fast path must never write into the caller's tensor"
    assert all(m._folded is not None for m in model.modules() if isinstance(m, ConvBNAct))


def test_cache_follows_weight_changes():
    """An optimizer step, new BN statistics or load_state_dict must all be seen by the next eval call."""
    model = _randomize_bn(create_model("b0", width=0.25, depth=0.25, num_classes=5)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        first = model(x)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model(torch.randn(4, 3, 64, 64)).logsumexp(1).mean().backward()  # also moves BN running stats
    optimizer.step()
    model.eval()
    with torch.no_grad():
        after_step = model(x)
    assert not torch.allclose(first, after_step, atol=1e-3)
    torch.testing.assert_close(after_step, _unfused(model, x), rtol=1e-4, atol=1e-4)

    state = _randomize_bn(create_model("b0", width=0.25, depth=0.25, num_classes=5), seed=1).state_dict()
    model.load_state_dict(state)
    with torch.no_grad():
        loaded = model(x)
    torch.testing.assert_close(loaded, _unfused(model, x), rtol=1e-4, atol=1e-4)


def test_gradients_in_eval_mode_still_reach_batchnorm():
    """With autograd on (Grad-CAM, adversarial inputs) the unfused layers run, so BN gets gradients."""
    model = create_model("b0", width=0.25, depth=0.25, num_classes=5).eval()
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert model.stem.bn.weight.grad is not None


def test_direct_se_call_leaves_its_input_alone():
    model = create_model("b0").eval()
    se = model.stages[1][0].se
    x = torch.randn(2, se.reduce.in_channels, 6, 6)
    before = x.clone()
    with torch.no_grad():
        se(x)
    assert torch.equal(x, before)
