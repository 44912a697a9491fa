"""The paper's step 1: grid-search alpha, beta, gamma on a small baseline, then scale the winner by phi.

Every candidate ``(alpha, beta, gamma)`` has ``alpha, beta, gamma >= 1`` and ``alpha * beta^2 * gamma^2``
within ``tolerance`` (relative) of ``factor`` (2 by default), so each costs about ``factor`` times the
baseline's FLOPs at phi = 1. Each is trained briefly and scored on held-out top-1 accuracy.

Training goes through an injectable ``train_fn(config, run_dir, settings) -> top1`` (default:
:func:`train_and_score`, effnet's training loop), so the mechanics are testable with a cheap scorer.
The candidates are the grid of an Optuna study (:mod:`effnet.search.shared_study`: SQLite in the run
folder by default, or a shared database or journal file that many workers join); a rerun with the same
settings skips finished candidates, so an interrupted search resumes where it stopped.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from effnet.arch.config import ModelConfig, get_config
from effnet.arch.scaling import scaled_config
from effnet.fileio import atomic_write_text
from effnet.search import shared_study
from effnet.search.budget import structure_cost
from effnet.search.tables import plot_search


@dataclass(frozen=True)
class SearchSettings:
    """What every candidate is trained with. Stored with the results: resuming requires the same settings."""

    data: str = "demo"
    model: str = "b0"
    resolution: int | None = None
    width: float | None = None
    depth: float | None = None
    bn_momentum: float | None = None
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 32
    lr: float | None = None
    seed: int = 0
    val_fraction: float | None = None
    workers: int = 0
    train_options: dict[str, Any] = field(default_factory=dict)

    def base_config(self) -> ModelConfig:
        """The baseline the coefficients are searched on, optionally made smaller (resolution, width, depth).

        ``bn_momentum`` (PyTorch convention) matters for brief runs: the official 0.01 leaves the running
        statistics used at evaluation near their initial values for the first few hundred steps.
        """
        base = get_config(self.model)
        changes = dict(resolution=self.resolution, width=self.width, depth=self.depth, bn_momentum=self.bn_momentum)
        return base.replace(**{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["baseline"] = self.base_config().to_dict()  # a changed .json baseline must not be resumed
        return out


TrainFn = Callable[[ModelConfig, Path, SearchSettings], float]


def train_and_score(config: ModelConfig, run_dir: Path, settings: SearchSettings) -> float:
    """Train with :func:`effnet.training.train` and return held-out top-1 (%) of the final weights.

    ``resume=True`` continues a candidate that was interrupted mid-training from its last checkpoint
    (a fresh run when there is none). A run whose loss diverges scores NaN and ranks last.
    """
    from effnet.training import TrainConfig, TrainingDiverged, train

    options: dict[str, Any] = dict(progress=False, tensorboard=False, plots=False, quiet=True, resume=True,
                                   keep_checkpoints=1)
    # An EMA with decay 0.9999 barely moves in a few hundred steps; a short search scores the raw weights.
    # The paper's classifier init (uniform, 1/sqrt(classes)) starts 10-class logits at tens of units; a zero
    # classifier starts at ln(classes), so a one- or two-epoch run spends its steps on features instead.
    options.update(ema=False, zero_head=True)
    options.update(settings.train_options)
    if "crop_scale" in options:
        options["crop_scale"] = tuple(options["crop_scale"])
    try:
        result = train(
            TrainConfig(
                data=settings.data, model=config, epochs=settings.epochs, max_steps=settings.max_steps,
                batch_size=settings.batch_size, image_size=config.resolution, lr=settings.lr, out_dir=run_dir,
                seed=settings.seed, workers=settings.workers, val_fraction=settings.val_fraction, **options,
            )
        )
    except TrainingDiverged:
        return math.nan
    return float(result.final_top1)


# --- the grid ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coefficients:
    alpha: float
    beta: float
    gamma: float

    @property
    def product(self) -> float:
        return self.alpha * self.beta**2 * self.gamma**2

    @property
    def key(self) -> str:
        return f"a{self.alpha:g}-b{self.beta:g}-g{self.gamma:g}"


def coefficient_grid(
    factor: float = 2.0, tolerance: float = 0.05, step: float = 0.05, max_coefficient: float = 2.0
) -> list[Coefficients]:
    """All ``(alpha, beta, gamma)`` on ``1, 1+step, ... <= max_coefficient`` with
    ``|alpha*beta^2*gamma^2 / factor - 1| <= tolerance``."""
    if factor < 1 or tolerance < 0 or step <= 0 or max_coefficient < 1:
        raise ValueError(
            f"need factor >= 1, tolerance >= 0, step > 0, max coefficient >= 1; got factor={factor}, "
            f"tolerance={tolerance}, step={step}, max={max_coefficient}"
        )
    values = [round(1 + i * step, 6) for i in range(int((max_coefficient - 1) / step + 1e-9) + 1)]
    grid = [
        Coefficients(a, b, g)
        for a in values for b in values for g in values
        if abs(a * b * b * g * g / factor - 1) <= tolerance + 1e-12
    ]
    if not grid:
        raise ValueError(
            f"no (alpha, beta, gamma) on a {step:g} grid has alpha*beta^2*gamma^2 within {tolerance:.0%} of "
            f"{factor:g}: use a finer --step or a larger --tolerance"
        )
    return grid


def spread(items: list, limit: int | None) -> list:
    """At most ``limit`` items, evenly spaced over the list (deterministic)."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 1:
        raise ValueError(f"--max-candidates must be >= 1, got {limit}")
    if limit == 1:
        return [items[len(items) // 2]]
    return [items[round(i * (len(items) - 1) / (limit - 1))] for i in range(limit)]


# --- training a plan of configs with the training loop -----------------------------------------


@dataclass(frozen=True)
class PlanObjective:
    """One trial of a fixed plan: the trial's ``candidate`` names the config to train. Picklable for workers."""

    settings: SearchSettings
    out_dir: Path
    plan: dict[str, tuple[dict[str, Any], dict[str, Any]]]  # key -> (config dict, extra record fields)
    train_fn: TrainFn | None = None

    def __call__(self, trial: Any) -> dict[str, Any]:  # noqa: ANN401 - an optuna.Trial
        key = trial.suggest_categorical("candidate", list(self.plan))
        config_dict, extra = self.plan[key]
        config = ModelConfig.from_dict(config_dict)
        params, macs = structure_cost(config)
        start = time.perf_counter()
        top1 = float((self.train_fn or train_and_score)(config, self.out_dir / "runs" / key, self.settings))
        return dict(value=top1, key=key, **extra, width=config.width, depth=config.depth,
                    resolution=config.resolution, params=params, macs=macs, top1=top1,
                    seconds=round(time.perf_counter() - start, 2), config=config.to_dict())


@dataclass(frozen=True)
class EngineOptions:
    """Where the study lives and who works on it (see :mod:`effnet.search.shared_study`)."""

    storage: str | None = None
    study_name: str | None = None
    workers: int = 1
    heartbeat_s: int = shared_study.DEFAULT_HEARTBEAT_S


def train_plan(
    plan: list[tuple[str, ModelConfig, dict[str, Any]]], settings: SearchSettings, out_dir: Path,
    study_settings: dict[str, Any], default_name: str, options: EngineOptions | None, train_fn: TrainFn | None,
    log: Callable[[str], None],
) -> tuple[list[dict[str, Any]], str]:
    """Train every ``(key, config, extra)`` of the plan once (a GridSampler over the keys); records in plan order.

    Finished keys are not trained again: an interrupted plan resumes, a changed one is refused.
    """
    keys = [key for key, _, _ in plan]
    options = options or EngineOptions()
    if options.workers < 1:  # before the study is created: a refusal leaves nothing behind
        raise ValueError(f"--workers must be >= 1, got {options.workers}")
    spec = shared_study.StudySpec(name=options.study_name or default_name,
                            storage=options.storage or shared_study.default_storage(out_dir), sampler="grid",
                            seed=settings.seed, grid={"candidate": keys}, heartbeat_s=options.heartbeat_s)
    shared_study.prepare(spec, [(key, {"candidate": key}) for key in keys], study_settings)
    objective = PlanObjective(settings, out_dir, {k: (c.to_dict(), extra) for k, c, extra in plan}, train_fn)
    shared_study.run_workers(spec, objective, options.workers, log)
    by_key = {r["key"]: r for r in shared_study.completed(spec.open())}
    return [by_key[k] for k in keys], spec.where


# --- step 1: the coefficient search ------------------------------------------------------------


@dataclass
class SearchResult:
    ranked: list[dict[str, Any]]
    storage: str
    plot_path: Path | None

    @property
    def best(self) -> Coefficients:
        top = self.ranked[0]
        return Coefficients(top["alpha"], top["beta"], top["gamma"])


def run_search(
    settings: SearchSettings,
    out_dir: str | Path,
    candidates: Iterable[Coefficients] | None = None,
    train_fn: TrainFn | None = None,
    log: Callable[[str], None] = print,
    plot: bool = True,
    options: EngineOptions | None = None,
) -> SearchResult:
    """Train every candidate (baseline scaled by phi = 1 with its coefficients); rank by held-out top-1.

    ``train_fn`` defaults to :func:`train_and_score` (looked up at call time).
    """
    out = Path(out_dir)
    candidates = list(candidates if candidates is not None else coefficient_grid())
    base = settings.base_config()
    plan = [(c.key, scaled_config(1.0, c.alpha, c.beta, c.gamma, base=base),
             dict(alpha=c.alpha, beta=c.beta, gamma=c.gamma, product=round(c.product, 6))) for c in candidates]
    log(f"searching {len(candidates)} coefficient sets on {base.name} at {base.resolution}px; results in {out}")
    records, storage = train_plan(plan, settings, out, settings.to_dict(), "search", options, train_fn, log)
    ranked = rank(records)
    plot_path = plot_search(ranked, out / "search.png") if plot else None
    return SearchResult(ranked, storage, plot_path)


def rank(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best accuracy first; among equals, the cheaper model first; failed (NaN) runs last."""
    return sorted(records, key=lambda r: (math.isnan(r["top1"]), -r["top1"] if not math.isnan(r["top1"]) else 0,
                                          r["macs"], r["key"]))


def family(coeffs: Coefficients, base: ModelConfig, phis: Iterable[float]) -> list[dict[str, Any]]:
    """The family ``phi = ...`` scaled from ``base`` with ``coeffs``: configs, params, MACs, growth per step."""
    rows, previous = [], None
    for phi in phis:
        config = scaled_config(phi, coeffs.alpha, coeffs.beta, coeffs.gamma, base=base)
        params, macs = structure_cost(config)
        rows.append(dict(phi=phi, config=config, params=params, macs=macs,
                         growth=None if previous is None else macs / previous))
        previous = macs
    return rows


def save_family(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    paths = []
    for r in rows:
        path = Path(folder) / f"{r['config'].name}.json"
        atomic_write_text(path, json.dumps(r["config"].to_dict(), indent=2) + "\n")
        paths.append(path)
    return paths
