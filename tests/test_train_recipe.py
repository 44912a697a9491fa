"""The recipe's parts: TF RMSProp, no weight decay on BN/bias, the lr schedule, EMA."""

import math

import pytest
import torch
from torch import nn

from effnet import create_model
from effnet.training.ema import ModelEMA
from effnet.training.optim import TFRMSprop, build_optimizer, param_groups
from effnet.training.schedule import Schedule, StepScheduler, default_warmup_epochs, scaled_lr


def _hand_tf_rmsprop(p0, grads, lr, rho=0.9, eps=1e-3, momentum=0.9, wd=0.0):
    """TensorFlow's RMSPropOptimizer written out in plain floats (ms starts at 1)."""
    p, ms, mom = p0, 1.0, 0.0
    for g in grads:
        g = g + wd * p
        ms = rho * ms + (1 - rho) * g * g
        mom = momentum * mom + lr * g / math.sqrt(ms + eps)
        p = p - mom
    return p


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_tf_rmsprop_matches_hand_computation(wd):
    grads = [0.5, -2.0, 0.01, 3.0, -0.2]
    w = torch.tensor([1.5], dtype=torch.float64, requires_grad=True)
    opt = TFRMSprop([w], lr=0.1, weight_decay=wd)
    for g in grads:
        w.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
    assert w.item() == pytest.approx(_hand_tf_rmsprop(1.5, grads, 0.1, wd=wd), rel=1e-12)


def test_tf_rmsprop_differs_from_torch_where_expected():
    """eps inside the root and ms starting at 1: a tiny gradient gets a bounded step in TF,
    while torch's RMSprop (ms from 0, eps outside) turns it into an almost full-size step."""
    g = 1e-4
    a = torch.zeros(1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    tf_opt = TFRMSprop([a], lr=1.0, momentum=0.0)
    torch_opt = torch.optim.RMSprop([b], lr=1.0, alpha=0.9, eps=1e-3, momentum=0.0)
    a.grad, b.grad = torch.full((1,), g), torch.full((1,), g)
    tf_opt.step()
    torch_opt.step()
    ms_tf = 0.9 * 1.0 + 0.1 * g * g
    assert a.item() == pytest.approx(-g / math.sqrt(ms_tf + 1e-3), rel=1e-6)
    assert b.item() == pytest.approx(-g / (math.sqrt(0.1 * g * g) + 1e-3), rel=1e-5)
    assert abs(b.item()) > 10 * abs(a.item())


def test_rmsprop_with_zero_start_and_eps_inside_is_not_torch():
    """Even after many steps (ms forgotten its start) the eps placement keeps them apart."""
    torch.manual_seed(0)
    grads = [torch.randn(4) * 0.01 for _ in range(200)]
    a = torch.zeros(4, requires_grad=True)
    b = torch.zeros(4, requires_grad=True)
    tf_opt, torch_opt = TFRMSprop([a], lr=0.01), torch.optim.RMSprop([b], lr=0.01, alpha=0.9, eps=1e-3, momentum=0.9)
    for g in grads:
        a.grad, b.grad = g.clone(), g.clone()
        tf_opt.step()
        torch_opt.step()
    assert not torch.allclose(a, b, rtol=0.05)


def test_no_weight_decay_on_bn_and_bias():
    model = create_model("b0", phi=0, num_classes=10)
    groups = param_groups(model, 1e-5)
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {names[id(p)] for p in groups[0]["params"]}
    no_decay = {names[id(p)] for p in groups[1]["params"]}
    assert groups[0]["weight_decay"] == 1e-5 and groups[1]["weight_decay"] == 0.0
    assert "stem.bn.weight" in no_decay and "stem.bn.bias" in no_decay and "classifier.bias" in no_decay
    assert "stages.1.0.se.reduce.bias" in no_decay
    assert "stem.conv.weight" in decay and "classifier.weight" in decay and "stages.1.0.se.reduce.weight" in decay
    assert not any(".bn." in n for n in decay)
    assert len(decay) + len(no_decay) == len(list(model.parameters()))
    # The optimiser really does leave BN untouched by decay: zero gradient, only decay acts.
    opt = build_optimizer(model, "sgd", lr=1.0, weight_decay=0.5, momentum=0.0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    after = dict(model.named_parameters())
    assert torch.equal(after["stem.bn.weight"], before["stem.bn.weight"])
    assert torch.allclose(after["stem.conv.weight"], before["stem.conv.weight"] * 0.5)


def test_frozen_parameters_are_left_out():
    model = create_model("b0", phi=0, num_classes=3)
    for n, p in model.named_parameters():
        p.requires_grad_(n.startswith("classifier."))
    groups = param_groups(model, 1e-5)
    assert sum(len(g["params"]) for g in groups) == 2


def test_lr_scaling_and_staircase_schedule():
    assert scaled_lr(4096) == pytest.approx(0.256)
    assert scaled_lr(256) == pytest.approx(0.016)
    s = Schedule(base_lr=0.256, steps_per_epoch=100, total_epochs=350, warmup_epochs=5)
    assert s.lr_at(0) == pytest.approx(0.256 / 500)
    assert s.lr_at(249) == pytest.approx(0.256 * 250 / 500)
    assert s.lr_at(499) == pytest.approx(0.256)
    # staircase counted from step 0: 2.4 epochs = 240 steps; step 500 is in the 3rd stair
    assert s.lr_at(500) == pytest.approx(0.256 * 0.97**2)
    assert s.lr_at(719) == pytest.approx(0.256 * 0.97**2)
    assert s.lr_at(720) == pytest.approx(0.256 * 0.97**3)
    assert s.lr_at(35000 - 1) == pytest.approx(0.256 * 0.97 ** (34999 // 240))


def test_cosine_schedule_and_scheduler_state():
    s = Schedule(base_lr=1.0, steps_per_epoch=10, total_epochs=10, warmup_epochs=1, kind="cosine")
    assert s.lr_at(10) == pytest.approx(1.0)
    assert s.lr_at(55) == pytest.approx(0.5)
    assert s.lr_at(100) == pytest.approx(0.0, abs=1e-12)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=123.0)
    sched = StepScheduler(opt, s)
    assert opt.param_groups[0]["lr"] == pytest.approx(s.lr_at(0))
    for _ in range(37):
        sched.step()
    fresh = StepScheduler(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), s)
    fresh.load_state_dict(sched.state_dict())
    assert fresh.get_last_lr() == pytest.approx(s.lr_at(37)) == pytest.approx(sched.get_last_lr())
    assert default_warmup_epochs(350) == 5.0 and default_warmup_epochs(10) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="schedule"):
        Schedule(1.0, 10, 10, kind="linear")


def test_ema_follows_tf_num_updates_rule():
    model = nn.Linear(2, 1, bias=False)
    nn.init.zeros_(model.weight)
    ema = ModelEMA(model, decay=0.9999)
    values = [1.0, 2.0, 3.0]
    expected = 0.0
    for t, v in enumerate(values):
        d = min(0.9999, (1 + t) / (10 + t))
        assert ema.current_decay() == pytest.approx(d)
        expected = d * expected + (1 - d) * v
        with torch.no_grad():
            model.weight.fill_(v)
        ema.update(model)
    assert ema.module.weight[0, 0].item() == pytest.approx(expected)
    ema.updates = 10**6
    assert ema.current_decay() == pytest.approx(0.9999)
    fixed = ModelEMA(model, decay=0.5, warmup=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    fixed.update(model)
    assert fixed.module.weight[0, 0].item() == pytest.approx(0.5 * 3.0 + 0.5 * 1.0)


def test_ema_averages_bn_statistics_and_copies_counters():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    ema = ModelEMA(model, decay=0.5, warmup=False)
    model.train()
    model(torch.randn(8, 3, 4, 4) * 3 + 2)
    ema.update(model)
    bn, ebn = model[1], ema.module[1]
    assert torch.allclose(ebn.running_mean, 0.5 * bn.running_mean)
    assert ebn.num_batches_tracked.item() == 1
    assert not any(p.requires_grad for p in ema.module.parameters())
