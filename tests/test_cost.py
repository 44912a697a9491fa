"""The torch-free count of `effnet info` equals torch's FlopCounterMode count on the built network."""

from __future__ import annotations

import pytest

from effnet.arch.config import get_config, list_models
from effnet.arch.cost import analytic_cost
from effnet.arch.flops import model_cost
from effnet.arch.scaling import scaled_config

# Default run: one of each kind (B, a large B, Lite with its fixed stem/head); the rest in the slow suite.
QUICK = {"b0", "b3", "b5", "lite0", "lite4"}
CONFIGS = [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in list_models()]
CONFIGS += ["phi=2.5", "phi=0.7", "lite0@225", "b0-same@97"]


def _config(case: str):
    if case.startswith("phi="):
        return scaled_config(float(case[4:])), None
    if case == "lite0@225":
        return get_config("lite0"), 225
    if case == "b0-same@97":
        return get_config("b0").replace(padding="same", se_ratio=0.0), 97
    return get_config(case), None


@pytest.mark.parametrize("case", CONFIGS)
def test_analytic_cost_equals_flop_counter(case):
    config, resolution = _config(case)
    assert analytic_cost(config, resolution) == model_cost(config, resolution)
