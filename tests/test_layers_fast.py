"""The training forms (memory-efficient Swish / SE, per-block checkpointing): same numbers as plain autograd."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from effnet import create_model
from effnet.arch import fastpath, memory_saving
from effnet.arch.flops import model_cost
from perf_util import lively


def test_swish_gradient_equals_autograd_silu():
    x = torch.randn(4, 8, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(memory_saving.SwishFunction.apply, (x,))
    g = torch.randn_like(x)
    (mine,) = torch.autograd.grad(memory_saving.LeanSwish()(x), x, g)
    (plain,) = torch.autograd.grad(F.silu(x), x, g)
    torch.testing.assert_close(mine, plain, rtol=1e-12, atol=1e-12)


def test_swish_saves_only_its_input():
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    y = memory_saving.LeanSwish()(x * 1.0)
    assert isinstance(y.grad_fn, torch.autograd.function.BackwardCFunction)
    saved = y.grad_fn.saved_tensors
    assert len(saved) == 1 and saved[0].shape == x.shape


def test_squeeze_excite_gradients_equal_plain_autograd():
    se = memory_saving.LeanSqueezeExcite(6, 3).double()
    x = torch.randn(3, 6, 7, 5, dtype=torch.float64, requires_grad=True)
    weights = (se.reduce.weight.flatten(1), se.reduce.bias, se.expand.weight.flatten(1), se.expand.bias)
    assert torch.autograd.gradcheck(lambda x, *w: memory_saving.SqueezeExciteFunction.apply(x, F.silu, *w), (x, *weights))
    up = torch.randn(3, 6, 7, 5, dtype=torch.float64)
    params = [x, *se.parameters()]
    mine = torch.autograd.grad(se(x), params, up)
    with memory_saving.disabled(se):
        plain = torch.autograd.grad(se(x), params, up)
    assert se.memory_efficient and se.act.memory_efficient  # restored
    for a, b in zip(mine, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)

def _train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)  # same drop-connect / dropout masks in every variant
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def _tiny(**kw: object) -> torch.nn.Module:
    """float64, so the comparison is not swamped by float32 rounding in BatchNorm's backward."""
    torch.manual_seed(0)
    return create_model("b0", width=0.25, depth=0.34, num_classes=7, drop_connect=0.2, **kw).double()


def test_model_gradients_equal_plain_autograd():
    model = _tiny()
    x, y = torch.randn(4, 3, 48, 48, dtype=torch.float64), torch.tensor([0, 3, 6, 1])
    fast = _train_step(copy.deepcopy(model), x, y)
    plain_model = copy.deepcopy(model)
    plain_model.set_memory_efficient(False)
    plain = _train_step(plain_model, x, y)
    for name in plain:
        torch.testing.assert_close(fast[name], plain[name], rtol=1e-9, atol=1e-10, msg=name)


@pytest.mark.parametrize("mode,stages", [(True, None), ("selective", None), ("full", None), ("full", (0, 2))])
def test_checkpointing_same_gradients_and_running_stats_updated_once(mode, stages):
    model = _tiny(padding="same")
    x, y = torch.randn(4, 3, 47, 45, dtype=torch.float64), torch.tensor([0, 3, 6, 1])
    plain_model, ckpt_model = copy.deepcopy(model), copy.deepcopy(model)
    plain = _train_step(plain_model, x, y)
    ckpt_model.set_grad_checkpointing(mode, stages)
    ckpt = _train_step(ckpt_model, x, y)
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], rtol=1e-9, atol=1e-10, msg=name)
    for (name, a), (_, b) in zip(plain_model.state_dict().items(), ckpt_model.state_dict().items(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7, msg=name)  # BN running stats, counters
    assert any(not torch.equal(b, model.state_dict()[n]) for n, b in ckpt_model.state_dict().items()
               if n.endswith("running_mean"))


def test_eval_outputs_and_names_unchanged():
    assert model_cost("b0") == (5288548, 385814752)
    torch.manual_seed(0)
    # lively: BN statistics that match the activations, so the logits are O(1), not ~1e-18
    model = lively(create_model("b0", width=0.25, depth=0.34, num_classes=7, drop_connect=0.2)).double()
    x = torch.randn(2, 3, 40, 40, dtype=torch.float64)
    with torch.no_grad():
        fast = model(x)
    with_autograd = model(x.clone().requires_grad_())  # the memory-efficient Swish / SE functions run
    with memory_saving.disabled(model), fastpath.disabled(model), torch.no_grad():
        plain = model(x)  # the reference: plain PyTorch ops, BatchNorm unfolded
    assert plain.abs().max() > 0.1
    torch.testing.assert_close(fast, plain, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(with_autograd.detach(), plain, rtol=1e-12, atol=1e-12)
    plain_se = model.stages[1][0].se
    feats = torch.randn(2, plain_se.reduce.in_channels, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        s = plain_se.expand(F.silu(plain_se.reduce(feats.mean((2, 3), keepdim=True))))
        torch.testing.assert_close(plain_se(feats), feats * s.sigmoid())
    assert "stages.1.0.se.reduce.weight" in model.state_dict()


def _saved_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of distinct activation tensors autograd keeps for the backward pass (parameters excluded)."""
    seen: dict[int, int] = {}
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.untyped_storage().data_ptr() not in params:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum().backward()
    return sum(seen.values())


def test_checkpointing_modes_trade_memory_for_recompute():
    """Plain > selective (conv outputs kept) > full (block inputs only), in saved activation bytes."""
    x = torch.randn(2, 3, 96, 96)
    saved = {}
    for mode in (False, "selective", "full"):
        model = create_model("b0", num_classes=10).train()
        model.set_grad_checkpointing(mode)
        saved[mode] = _saved_bytes(model, x)
    assert saved["full"] < saved["selective"] < 0.6 * saved[False], saved
    model = create_model("b0", num_classes=10).train()
    assert memory_saving.early_stages(model) == [0, 1, 2]  # inputs at 1/2 and 1/4 of the image size
    model.set_grad_checkpointing(True, stages=memory_saving.early_stages(model))
    early = _saved_bytes(model, x)
    assert saved["full"] < early < 0.6 * saved[False], (early, saved)  # 5 of 16 blocks hold most activations
    assert [b.grad_checkpointing for b in model.stages[3]] == [None] * 3
    with pytest.raises(ValueError, match="out of range"):
        model.set_grad_checkpointing(True, stages=[7])
    with pytest.raises(ValueError, match="selective"):
        create_model("b0").set_grad_checkpointing("sometimes")
