"""Compound scaling: rounding rules and the scaled configurations."""

import math

import pytest

from effnet.arch.config import B0_STAGES, get_config
from effnet.arch.scaling import (
    block_specs,
    compound_coefficients,
    feature_strides,
    flops_factor,
    round_channels,
    round_layers,
    round_resolution,
    scaled_config,
    scaled_stages,
)


@pytest.mark.parametrize(
    ("channels", "width", "expected"),
    [
        (32, 1.0, 32),
        (32, 1.1, 32),  # 35.2 -> 32 (within 10%)
        (16, 1.2, 24),  # 19.2 -> 16 is >10% below, so +8
        (24, 1.4, 32),
        (112, 1.1, 120),  # 123.2 -> 120
        (1280, 2.0, 2560),
        (320, 4.3, 1376),
        (3, 1.0, 8),  # never below the divisor
    ],
)
def test_round_channels_follows_the_reference_rule(channels, width, expected):
    exact = channels * width
    assert round_channels(channels, width) == expected
    assert round_channels(channels, width) % 8 == 0
    assert round_channels(channels, width) >= 0.9 * exact


def test_round_layers_rounds_up():
    assert round_layers(3, 1.1) == 4
    assert round_layers(1, 3.1) == 4
    assert round_layers(4, 1.0) == 4
    assert round_layers(2, 1.2) == 3


def test_resolution_rounds_to_nearest_multiple_of_8():
    assert round_resolution(224) == 224
    assert round_resolution(224 * 1.15) == 256  # 257.6
    assert round_resolution(3) == 8


def test_compound_coefficients_and_budget():
    d, w, r = compound_coefficients(2.0)
    assert (d, w, r) == pytest.approx((1.44, 1.21, 1.3225))
    assert flops_factor() == pytest.approx(1.2 * 1.1**2 * 1.15**2)
    assert 1.9 < flops_factor() < 2.0


@pytest.mark.parametrize("phi", [0.0, 0.5, 1.0, 2.5, 7.0])
def test_scaled_config_for_any_phi(phi):
    config = scaled_config(phi)
    assert config.width == pytest.approx(1.1**phi)
    assert config.depth == pytest.approx(1.2**phi)
    assert config.resolution == round_resolution(224 * 1.15**phi)
    assert config.phi == phi
    assert 0.2 <= config.dropout <= 0.5


def test_phi_zero_is_b0():
    assert scaled_stages(scaled_config(0)) == scaled_stages(get_config("b0"))


@pytest.mark.parametrize("bad", [{"phi": -0.1}, {"phi": 1, "alpha": 0.9}, {"phi": 1, "gamma": 0.5}])
def test_invalid_scaling_arguments_are_rejected(bad):
    with pytest.raises(ValueError, match=r"phi|alpha|gamma"):
        scaled_config(**bad)


def test_drop_connect_rate_grows_linearly_over_all_blocks():
    config = get_config("b3")
    rates = [b.drop_connect for stage in block_specs(config) for b in stage]
    n = len(rates)
    assert rates == pytest.approx([0.2 * i / n for i in range(n)])


def test_stride_only_on_first_block_and_se_from_input_channels():
    for stage, base in zip(block_specs(get_config("b2")), B0_STAGES):
        assert stage[0].stride == base.stride
        assert all(b.stride == 1 for b in stage[1:])
        for block in stage:
            assert block.se_channels == max(1, int(block.in_channels * 0.25))


def test_lite_fixes_stem_head_and_first_last_depth():
    lite4 = scaled_stages(get_config("lite4"))
    assert lite4[0].layers == 1 and lite4[-1].layers == 1
    assert lite4[1].layers == math.ceil(2 * 1.8)
    assert all(b.se_channels == 0 for stage in block_specs(get_config("lite4")) for b in stage)


def test_feature_strides():
    assert feature_strides(get_config("b0")) == [2, 4, 8, 16, 32]
