"""The paper's scaling study (Figures 3 and 8): width only, depth only, resolution only, and compound.

For each level ``phi``, the compound model (baseline scaled by ``phi`` with alpha, beta, gamma) sets a
MACs target; width, depth and resolution are then each scaled alone to the multiplier whose MACs come
closest to it (bisection on a 0.01 grid of the multiplier, then the nearer of the two neighbours), so all
four are compared at matched cost. Every model is trained with the same settings and scored on held-out
top-1 on the same Optuna engine as the coefficient search (:func:`effnet.search.grid.train_plan`), so
results are saved as they come, many workers can share the work, and an interrupted study resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from effnet.arch.config import ModelConfig
from effnet.arch.scaling import ALPHA, BETA, GAMMA, round_resolution, scaled_config
from effnet.search.budget import CostModel, largest_fitting_index
from effnet.search.grid import Coefficients, EngineOptions, SearchSettings, TrainFn, train_plan
from effnet.search.tables import plot_study

METHODS = ("width", "depth", "resolution", "compound")
MULTIPLIER_STEP = 1e-2
DEFAULT_COEFFICIENTS = Coefficients(ALPHA, BETA, GAMMA)


def single_dimension(base: ModelConfig, method: str, x: float) -> ModelConfig:
    """The baseline with one dimension multiplied by ``x`` (>= 1)."""
    name = f"{method}x{x:g}"
    if method == "width":
        return base.replace(name=name, width=base.width * x)
    if method == "depth":
        return base.replace(name=name, depth=base.depth * x)
    if method == "resolution":
        return base.replace(name=name, resolution=round_resolution(base.resolution * x))
    raise ValueError(f"unknown scaling method {method!r}; choose one of {', '.join(METHODS[:3])}")


def match_macs(base: ModelConfig, method: str, target: float, cost: CostModel) -> tuple[float, ModelConfig]:
    """The multiplier of ``method`` whose MACs are nearest ``target`` (the step at or under it, or the next)."""
    # MACs grow ~x^2 with width and resolution, ~x with depth: a guess that makes the bisection short.
    ratio = target / cost(base)
    guess_x = ratio if method == "depth" else ratio**0.5
    x_max = max(4.0, 2 * ratio)
    n = int((x_max - 1) / MULTIPLIER_STEP)
    config_at = lambda k: single_dimension(base, method, round(1 + k * MULTIPLIER_STEP, 6))  # noqa: E731
    k = largest_fitting_index(lambda i: cost(config_at(i)) <= target, n, int((guess_x - 1) / MULTIPLIER_STEP))
    if k < n and abs(cost(config_at(k + 1)) - target) < abs(cost(config_at(k)) - target):
        k += 1
    return round(1 + k * MULTIPLIER_STEP, 6), config_at(k)


def study_models(base: ModelConfig, levels: Iterable[float], coeffs: Coefficients) -> list[dict[str, Any]]:
    """The baseline, then for each level the compound model and the three single-dimension matches."""
    cost = CostModel("macs")
    plan = [dict(key="baseline", method="baseline", level=0.0, multiplier=1.0, config=base)]
    for phi in levels:
        compound = scaled_config(phi, coeffs.alpha, coeffs.beta, coeffs.gamma, base=base)
        target = cost(compound)
        plan.append(dict(key=f"compound@{phi:g}", method="compound", level=phi, multiplier=phi, config=compound))
        for method in METHODS[:3]:
            x, config = match_macs(base, method, target, cost)
            plan.append(dict(key=f"{method}@{phi:g}", method=method, level=phi, multiplier=x, config=config))
    return plan


def run_study(
    settings: SearchSettings,
    out_dir: str | Path,
    levels: Iterable[float] = (1.0, 2.0),
    coeffs: Coefficients = DEFAULT_COEFFICIENTS,
    train_fn: TrainFn | None = None,
    log: Callable[[str], None] = print,
    plot: bool = True,
    options: EngineOptions | None = None,
) -> tuple[list[dict[str, Any]], Path | None]:
    """Train every model of :func:`study_models`; returns the records (plan order) and the plot path."""
    out = Path(out_dir)
    levels = [float(v) for v in levels]
    study_settings = dict(settings.to_dict(), study="single-vs-compound", coefficients=coeffs.key)
    plan = [(item["key"], item["config"], dict(method=item["method"], level=item["level"],
                                               multiplier=item["multiplier"]))
            for item in study_models(settings.base_config(), levels, coeffs)]
    log(f"scaling study: {len(plan)} models (levels {', '.join(f'{v:g}' for v in levels)}); results in {out}")
    records, _ = train_plan(plan, settings, out, study_settings, "single-vs-compound", options, train_fn, log)
    plot_path = plot_study(records, out / "study.png", METHODS) if plot else None
    return records, plot_path
