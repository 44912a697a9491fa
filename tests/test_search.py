"""Coefficient search and the scaling study: grid constraint, ranking, resume, family, matched-MACs study.

The mechanics run with a cheap deterministic scorer in place of training; one test trains for real on
the embedded digits. Both run on the Optuna engine (tests/test_nas.py covers its workers, heartbeat and retry).
"""

import csv

import optuna
import pytest

from effnet import create_model
from effnet.arch.config import get_config
from effnet.arch.flops import model_cost
from effnet.arch.scaling import ALPHA, BETA, GAMMA, scaled_config
from effnet.search import shared_study
from effnet.search.budget import structure_cost
from effnet.search.grid import (
    Coefficients,
    SearchSettings,
    coefficient_grid,
    family,
    run_search,
    save_family,
    spread,
)
from effnet.search.study import run_study, study_models
from effnet.search.tables import scaled_family_table, search_table, study_table

TINY = SearchSettings(data="demo", resolution=32, width=0.25, depth=0.25, max_steps=2)


class Scorer:
    """Stands in for training: accuracy peaks at (1.2, 1.1, 1.15); counts and records its calls."""

    def __init__(self, fail_on_call=None):
        self.calls, self.fail_on_call = [], fail_on_call

    def __call__(self, config, run_dir, settings):
        self.calls.append(config.name)
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise KeyboardInterrupt("simulated interruption")
        a, b, g = (config.depth / settings.base_config().depth, config.width / settings.base_config().width,
                   config.resolution / settings.base_config().resolution)
        return 90.0 - 100 * ((a - 1.2) ** 2 + (b - 1.1) ** 2 + (g - 1.15) ** 2)


@pytest.mark.parametrize(("step", "tolerance"), [(0.05, 0.05), (0.1, 0.1), (0.2, 0.05)])
def test_every_grid_candidate_satisfies_the_constraint(step, tolerance):
    grid = coefficient_grid(2.0, tolerance, step)
    assert grid
    for c in grid:
        assert min(c.alpha, c.beta, c.gamma) >= 1
        assert abs(c.alpha * c.beta**2 * c.gamma**2 - 2.0) <= 2.0 * tolerance + 1e-9
    # Exhaustive: nothing on the lattice that satisfies the constraint is missing.
    values = [round(1 + i * step, 6) for i in range(int(1 / step + 1e-9) + 1)]
    expected = {(a, b, g) for a in values for b in values for g in values if abs(a * b * b * g * g / 2 - 1) <= tolerance + 1e-9}
    assert {(c.alpha, c.beta, c.gamma) for c in grid} == expected


def test_paper_coefficients_are_on_the_default_grid():
    grid = coefficient_grid()
    assert Coefficients(1.2, 1.1, 1.15) in grid
    assert len(grid) == 109  # includes (1.9, 1, 1), exactly 5% under 2


def test_impossible_grid_is_a_clear_error():
    with pytest.raises(ValueError, match="finer --step"):
        coefficient_grid(3.0, 0.01, 0.7)
    with pytest.raises(ValueError, match="factor >= 1"):
        coefficient_grid(0.5)


def test_spread_keeps_the_ends_and_is_even():
    items = list(range(10))
    assert spread(items, 3) == [0, 4, 9] or spread(items, 3) == [0, 5, 9]
    assert spread(items, None) == items and spread(items, 50) == items
    with pytest.raises(ValueError):
        spread(items, 0)


def test_search_ranks_candidates_and_writes_results_and_plot(tmp_path):
    grid = coefficient_grid(step=0.2)
    scorer = Scorer()
    result = run_search(TINY, tmp_path, grid, train_fn=scorer, log=lambda s: None)
    assert len(scorer.calls) == len(grid) == len(result.ranked)
    tops = [r["top1"] for r in result.ranked]
    assert tops == sorted(tops, reverse=True)
    # Each candidate is the baseline at phi = 1 with its coefficients, counted on the real model.
    for r in result.ranked:
        config = scaled_config(1.0, r["alpha"], r["beta"], r["gamma"], base=TINY.base_config())
        assert (r["params"], r["macs"]) == model_cost(config)
    best = result.best
    assert best == Coefficients(1.0, 1.2, 1.2)  # nearest to (1.2, 1.1, 1.15) on this grid
    study = optuna.load_study(study_name="search", storage=result.storage)
    assert study.user_attrs["settings"]["max_steps"] == 2
    assert sorted(t.params["candidate"] for t in study.trials) == sorted(c.key for c in grid)  # one trial each
    assert result.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = search_table(result.ranked)
    assert table.splitlines()[2].split()[:4] == ["1", "1.000", "1.200", "1.200"]


def test_interrupted_search_resumes_without_retraining(tmp_path):
    grid = coefficient_grid(step=0.2)
    first = Scorer(fail_on_call=4)
    with pytest.raises(KeyboardInterrupt):
        run_search(TINY, tmp_path, grid, train_fn=first, log=lambda s: None)
    study = optuna.load_study(study_name="search", storage=shared_study.default_storage(tmp_path))
    saved = shared_study.completed(study)
    assert [r["key"] for r in saved] == [c.key for c in grid[:3]]  # finished ones survived, intact

    second = Scorer()
    result = run_search(TINY, tmp_path, grid, train_fn=second, log=lambda s: None)
    assert len(second.calls) == len(grid) - 3  # only the unfinished candidates are trained
    assert len(result.ranked) == len(grid)
    fresh = run_search(TINY, tmp_path / "fresh", grid, train_fn=Scorer(), log=lambda s: None, plot=False)
    assert [r["key"] for r in fresh.ranked] == [r["key"] for r in result.ranked]

    third = Scorer()
    run_search(TINY, tmp_path, grid, train_fn=third, log=lambda s: None, plot=False)
    assert third.calls == []


def test_resuming_with_different_settings_is_refused(tmp_path):
    grid = coefficient_grid(step=0.2)[:1]
    run_search(TINY, tmp_path, grid, train_fn=Scorer(), log=lambda s: None, plot=False)
    changed = SearchSettings(**{**TINY.__dict__, "max_steps": 3})
    with pytest.raises(ValueError, match=r"different settings \(max_steps: 2 -> 3\); resume with the same options"):
        run_search(changed, tmp_path, grid, train_fn=Scorer(), log=lambda s: None, plot=False)


def test_family_from_the_winner_is_saved_and_loadable(tmp_path):
    base = get_config("b0")
    rows = family(Coefficients(ALPHA, BETA, GAMMA), base, range(1, 4))
    assert [r["config"].phi for r in rows] == [1.0, 2.0, 3.0]
    growth = [r["growth"] for r in rows[1:]]
    assert all(1.6 < g < 2.4 for g in growth), growth
    paths = save_family(rows, tmp_path)
    loaded = get_config(str(paths[0]))
    assert loaded == rows[0]["config"]
    model = create_model(str(paths[0]), num_classes=10)
    assert model.config.resolution == rows[0]["config"].resolution
    assert "x prev" in scaled_family_table(rows)


def test_study_matches_macs_and_scales_one_dimension_each(tmp_path):
    base = TINY.base_config()
    plan = study_models(base, [1.0, 2.0], Coefficients(ALPHA, BETA, GAMMA))
    assert [p["key"] for p in plan] == ["baseline"] + [
        f"{m}@{lv:g}" for lv in (1.0, 2.0) for m in ("compound", "width", "depth", "resolution")
    ]
    costs = {p["key"]: structure_cost(p["config"])[1] for p in plan}
    for level in ("1", "2"):
        target = costs[f"compound@{level}"]
        for method in ("width", "depth", "resolution"):
            config = next(p["config"] for p in plan if p["key"] == f"{method}@{level}")
            changed = {f for f in ("width", "depth", "resolution") if getattr(config, f) != getattr(base, f)}
            assert changed == {method}
            # Matched to within one rounding step (resolution moves in 8 px steps, depth in whole layers).
            assert costs[f"{method}@{level}"] == pytest.approx(target, rel=0.3), (method, level)
    records, plot = run_study(TINY, tmp_path, [1.0], train_fn=Scorer(), log=lambda s: None)
    assert [r["key"] for r in records] == [p["key"] for p in plan[:5]]
    assert plot.read_bytes()[:4] == b"\x89PNG"
    table = study_table(records)
    assert "compound" in table and "vs compound" in table
    again = Scorer()
    run_study(TINY, tmp_path, [1.0], train_fn=again, log=lambda s: None, plot=False)
    assert again.calls == []



def test_tiny_real_search_on_demo_digits(tmp_path, one_thread):
    """End to end with the training loop: 2 candidates, 32 px, a few steps each."""
    settings = SearchSettings(data="demo", resolution=32, width=0.25, depth=0.25, max_steps=4, batch_size=32,
                              lr=0.005, train_options=dict(optimizer="adamw", augment="none", flip=False))
    grid = [Coefficients(1.2, 1.1, 1.15), Coefficients(1.0, 1.0, 1.4)]
    result = run_search(settings, tmp_path, grid, log=lambda s: None)
    assert len(result.ranked) == 2
    for r in result.ranked:
        # the ranked score is the candidate's own run's final held-out top-1, not a default or a stale value
        rows = list(csv.DictReader((tmp_path / "runs" / r["key"] / "metrics.csv").open()))
        assert r["top1"] == pytest.approx(float(rows[-1]["val_top1"]), abs=0.01)


def test_a_diverged_candidate_ranks_last_and_survives_resume(tmp_path):
    grid = coefficient_grid(step=0.2)[:3]

    def scorer(config, run_dir, settings):
        return float("nan") if config.name == scaled_config(1.0, grid[0].alpha, grid[0].beta, grid[0].gamma,
                                                            base=settings.base_config()).name else 50.0

    result = run_search(TINY, tmp_path, grid, train_fn=scorer, log=lambda s: None, plot=False)
    assert result.ranked[-1]["key"] == grid[0].key and result.best != grid[0]
    again = run_search(TINY, tmp_path, grid, train_fn=Scorer(), log=lambda s: None, plot=False)
    assert again.ranked[-1]["key"] == grid[0].key
