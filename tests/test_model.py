"""Model behaviour: features, heads, padding, DropConnect and input validation."""

import pytest
import torch
from timm.layers import create_conv2d

from effnet import create_model
from effnet.arch.layers import Conv2dSame, drop_connect, same_padding


@pytest.fixture(scope="module")
def tiny_config():
    # A narrow, shallow B0 keeps these tests fast; structure and strides are unchanged.
    from effnet.arch.config import get_config

    return get_config("b0").replace(width=0.25, depth=0.3)


@pytest.mark.parametrize("padding", ["symmetric", "same"])
def test_feature_maps_at_odd_sizes(tiny_config, padding):
    model = create_model(tiny_config, padding=padding).eval()
    x = torch.randn(2, 3, 231, 317)
    with torch.no_grad():
        maps = model.feature_maps(x)
        last = model.forward_features(x)
    expected = [(116, 159), (58, 80), (29, 40), (15, 20), (8, 10)]  # ceil(size / stride)
    assert [tuple(m.shape[-2:]) for m in maps] == expected
    assert [m.shape[1] for m in maps] == model.feature_channels
    assert last.shape == (2, model.num_features, 8, 10)


def test_b0_feature_channels():
    with torch.device("meta"):
        assert create_model("b0").feature_channels == [16, 24, 40, 112, 320]


@pytest.mark.parametrize("size", [(7, 7), (8, 9), (224, 224), (231, 317), (1, 2)])
@pytest.mark.parametrize(("kernel", "stride"), [(3, 2), (5, 2), (3, 1), (5, 1)])
def test_same_padding_matches_timm_dynamic_same_conv(size, kernel, stride):
    torch.manual_seed(0)
    ours = Conv2dSame(4, 6, kernel, stride, bias=False)
    ref = create_conv2d(4, 6, kernel, stride=stride, padding="same")
    ref.weight.data.copy_(ours.weight.data)
    x = torch.randn(1, 4, *size)
    assert torch.equal(ours(x), ref(x))


def test_same_padding_is_asymmetric_for_stride_2():
    assert same_padding(224, 3, 2) == (0, 1)
    assert same_padding(225, 3, 2) == (1, 1)
    assert same_padding(224, 5, 2) == (1, 2)
    assert same_padding(10, 3, 1) == (1, 1)


def test_num_classes_zero_returns_pooled_features(tiny_config):
    model = create_model(tiny_config, num_classes=0).eval()
    out = model(torch.randn(3, 3, 64, 64))
    assert out.shape == (3, model.num_features)


def test_reset_classifier_and_in_chans(tiny_config):
    model = create_model(tiny_config, in_chans=1, num_classes=7)
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, 7)
    model.reset_classifier(4)
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, 4)
    model.reset_classifier(0)
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, model.num_features)


def test_eval_mode_is_deterministic(tiny_config):
    model = create_model(tiny_config, drop_connect=0.5, dropout=0.5).eval()
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(model(x), model(x))


def test_training_mode_is_stochastic(tiny_config):
    model = create_model(tiny_config, drop_connect=0.5, dropout=0.5).train()
    x = torch.randn(4, 3, 64, 64)
    assert not torch.equal(model(x), model(x))


def test_drop_connect_keeps_about_1_minus_p_and_rescales():
    torch.manual_seed(0)
    x = torch.ones(20000, 3, 2, 2)
    out = drop_connect(x, 0.2, training=True)
    per_sample = out.flatten(1)
    kept = per_sample[:, 0] > 0
    assert kept.float().mean().item() == pytest.approx(0.8, abs=0.01)
    # a sample is dropped or kept whole, and kept ones are scaled by 1 / (1 - p)
    assert torch.all((per_sample == 0).all(1) | (per_sample == 1 / 0.8).all(1))
    assert torch.equal(drop_connect(x, 0.2, training=False), x)


def test_drop_connect_only_on_shortcut_blocks():
    with torch.device("meta"):
        model = create_model("b0")
    for stage in model.stages:
        for block in stage:
            has_dc = hasattr(block.drop_connect, "rate")
            assert has_dc == block.has_shortcut
            assert block.has_shortcut == (block.dw.conv.stride == (1, 1) and (
                block.project.conv.out_channels == (block.expand.conv.in_channels if hasattr(block.expand, "conv")
                                                    else block.dw.conv.in_channels)))  # fmt: skip


def test_expand_conv_absent_when_ratio_is_one():
    with torch.device("meta"):
        model = create_model("b0")
    assert not hasattr(model.stages[0][0].expand, "conv")
    assert hasattr(model.stages[1][0].expand, "conv")


def test_any_phi_builds_and_runs():
    model = create_model("b0", phi=0.5, num_classes=10).eval()
    assert model.config.resolution == 240
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"phi": -1}, "phi must be a number from 0"), ({"num_classes": -1}, "num_classes must be >= 0"),
     ({"in_chans": 0}, "in_chans must be >= 1")],
)  # fmt: skip
def test_bad_arguments_fail_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_model("b0", **kwargs)


def test_wrong_channel_count_is_reported_before_any_conv(tiny_config):
    model = create_model(tiny_config)
    with pytest.raises(ValueError, match=r"shape \(N, 3, H, W\), got \(1, 4, 32, 32\).*in_chans=4"):
        model(torch.randn(1, 4, 32, 32))
    with pytest.raises(ValueError, match="got \\(3, 32, 32\\)"):
        model.feature_maps(torch.randn(3, 32, 32))
