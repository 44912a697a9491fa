"""Scaling to a budget: bisection invariant, MACs/params/latency budgets, and the 2^phi growth of the family."""

import math
import random

import pytest

from effnet.arch.config import get_config
from effnet.arch.flops import model_cost
from effnet.arch.scaling import flops_factor, scaled_config
from effnet.search.budget import CostModel, fit_budget, largest_fitting_index, structure_key


def _check_answer(fits, n, k):
    assert fits(k), f"answer {k} does not fit"
    assert k == n or not fits(k + 1), f"the step after {k} also fits"


@pytest.mark.parametrize("seed", range(20))
def test_bisection_invariant_holds_for_non_monotone_staircases(seed):
    rng = random.Random(seed)
    n = rng.randint(5, 3000)
    # A rising staircase with random dips: cost is not monotone, as with latency noise.
    values, level = [], 0.0
    for _ in range(n + 1):
        level += rng.choice([0, 0, 0, 1, 2])
        values.append(level - (rng.random() * 5 if rng.random() < 0.1 else 0))
    values[0] = min(values)
    target = rng.uniform(values[0], max(values))
    fits = lambda k: values[k] <= target  # noqa: E731
    for guess in (None, 1, n // 3, n - 1, rng.randint(0, n)):
        _check_answer(fits, n, largest_fitting_index(fits, n, guess))


def test_bisection_edges():
    assert largest_fitting_index(lambda k: True, 100, guess=50) == 100
    assert largest_fitting_index(lambda k: k <= 0, 100, guess=50) == 0
    assert largest_fitting_index(lambda k: k <= 99, 100) == 99
    with pytest.raises(ValueError, match="smallest step"):
        largest_fitting_index(lambda k: False, 100)


def test_macs_budget_is_met_and_the_next_step_exceeds_it():
    target = 1e9
    result = fit_budget(target, "macs")
    # The returned model, counted independently, is at or under the budget ...
    params, macs = model_cost(result.config)
    assert macs == result.macs == result.value <= target
    assert params == result.params
    # ... and the next phi step on the precision grid exceeds it.
    assert result.next_phi == pytest.approx(result.phi + 1e-3)
    _, next_macs = model_cost(scaled_config(result.next_phi))
    assert next_macs == result.next_value > target
    # B2 (1.0 GMACs in the paper, 0.994 at 260 px) sits at phi ~ 1: the answer must be near there.
    assert 0.8 < result.phi < 1.3
    assert result.config.phi == result.phi and result.config.resolution % 8 == 0


def test_params_budget_with_custom_coefficients():
    result = fit_budget(10e6, "params", alpha=1.3, beta=1.05, gamma=1.2, precision=1e-2)
    assert result.params <= 10e6 < result.next_value
    params_next, _ = model_cost(scaled_config(result.next_phi, 1.3, 1.05, 1.2))
    assert params_next == result.next_value
    assert result.config.depth == pytest.approx(1.3**result.phi)


def test_latency_budget_with_an_injected_noisy_clock():
    # Latency that grows with MACs plus deterministic jitter: the invariant must hold anyway.
    def fake_latency(config):
        _, macs = model_cost(config)
        return macs / 1e8 + (sum(s.channels for s in structure_key(config)[3]) % 7) * 0.05

    result = fit_budget(8.0, "latency_ms", latency_fn=fake_latency, precision=1e-2, phi_max=4)
    assert result.value <= 8.0 < result.next_value
    assert fake_latency(result.config) == result.value


def test_latency_budget_measured_on_this_machine(one_thread):
    # One CostModel measures each structure once, and fit_budget reads its latencies from it: the
    # baseline that sets the target and the one fit_budget compares against are the same measurement,
    # so the answer's invariant holds however loaded the machine is.
    base = get_config("b0").replace(name="tiny", resolution=32, width=0.5, depth=0.5)
    measured = CostModel("latency_ms")
    base_ms = measured(base)
    assert base_ms > 0
    result = fit_budget(base_ms * 3, "latency_ms", base=base, precision=0.25, phi_max=2, latency_fn=measured)
    assert result.metric == "latency_ms"
    assert result.value == measured(result.config) <= base_ms * 3
    assert result.capped or result.next_value == measured(scaled_config(result.next_phi, base=base)) > base_ms * 3
    assert result.evaluations == measured.evaluations  # nothing was timed twice


def test_budget_below_the_baseline_is_a_clear_error():
    with pytest.raises(ValueError, match="below the unscaled baseline b0"):
        fit_budget(1e8, "macs")
    with pytest.raises(ValueError, match="budget metric"):
        fit_budget(1e9, "flops")


def test_budget_that_never_binds_is_capped():
    result = fit_budget(1e15, "macs", precision=0.5, phi_max=1.0)
    assert result.capped and result.phi == 1.0


def test_family_grows_by_about_two_to_the_phi():
    """Measured MACs ratio per step of phi for the default coefficients (alpha*beta^2*gamma^2 = 1.92).

    Measured: 2.23, 2.11, 1.80, 1.94, 1.65, 1.93, 1.93 for phi 0->1 ... 6->7; geometric mean 1.93.
    The single steps scatter because channels, layers and resolution are rounded.
    """
    macs = [model_cost(scaled_config(phi))[1] for phi in range(8)]
    ratios = [b / a for a, b in zip(macs, macs[1:])]
    print("MACs ratio per phi step:", ", ".join(f"{r:.2f}" for r in ratios))
    assert all(1.5 < r < 2.5 for r in ratios), ratios
    mean_ratio = math.exp(sum(map(math.log, ratios)) / len(ratios))
    assert mean_ratio == pytest.approx(flops_factor(), rel=0.03)
    assert macs[-1] / macs[0] == pytest.approx(2**7, rel=0.25)
