"""The paper's step 0: search the baseline itself (section 4), in MnasNet's space, on the Optuna shared_study.

Each trial decodes an architecture from :mod:`effnet.search.space`, trains it briefly with the recipe of
:func:`effnet.search.grid.train_and_score` on the proxy task, counts its MACs with effnet's own counter
(:mod:`effnet.arch.flops`, the data's class count) and scores it with the paper's objective::

    ACC(m) * (MACs(m) / T) ** w          w = -0.07, T = the base's MACs at the search resolution

Sampler: Optuna's TPE with ``multivariate=True``. The space is 42 categorical choices and the budget a
dozen or two trials: TPE models the good and bad trials' choice frequencies jointly and exploits after a
few random startup trials, where an evolutionary sampler (NSGA-II) needs a population per generation,
i.e. hundreds of trials, before selection does anything. The seed is fixed (``--seed``): trial n samples
with seed + n, so one worker reproduces a run exactly (with several, what trial n sees of the others
depends on timing).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effnet.arch.config import ModelConfig
from effnet.arch.flops import count_macs, count_params, meta_model
from effnet.search import shared_study
from effnet.search.grid import SearchSettings, TrainFn
from effnet.search.space import SearchSpace, decode, suggest
from effnet.search.tables import optuna_plots, plot_nas

DEFAULT_W = -0.07


def objective_value(top1: float, macs: float, target: float, w: float = DEFAULT_W) -> float:
    """``top1 * (macs / target) ** w``: MnasNet's soft constraint (w < 0 trades accuracy for fewer MACs)."""
    check_objective(target, w)
    return top1 * (macs / target) ** w


def check_objective(target: float, w: float) -> None:
    if not target > 0:
        raise ValueError(f"--target-macs must be > 0 (the MACs the objective is centred on), got {target:g}")
    if w > 0:
        raise ValueError(f"--w must be <= 0 (a positive exponent rewards bigger models), got {w:g}; the paper uses -0.07")


def data_classes(settings: SearchSettings) -> int:
    """How many classes the training split has (the classifier's size counts towards MACs at low resolution)."""
    from effnet.data.folders import find_splits
    from effnet.training.data import demo_dataset

    root = demo_dataset() if settings.data == "demo" else Path(settings.data)
    return len(find_splits(root, settings.val_fraction, settings.seed).classes)


def cost(config: ModelConfig, num_classes: int) -> tuple[int, int]:
    """(params, MACs) at the config's resolution for ``num_classes`` outputs."""
    model = meta_model(config, num_classes=num_classes)
    return count_params(model), count_macs(model, config.resolution)


@dataclass(frozen=True)
class NasObjective:
    """One trial: sample, build, count, train, score. Picklable, so spawned workers can run it."""

    settings: SearchSettings
    space: SearchSpace
    target: float
    w: float
    num_classes: int
    out_dir: Path
    train_fn: TrainFn | None = None

    def config(self, params: dict[str, Any], name: str) -> ModelConfig:
        base = self.settings.base_config()  # the search resolution, and any width/depth/BN change asked for
        return decode(params, self.space, name).replace(resolution=base.resolution, bn_momentum=base.bn_momentum,
                                                        width=base.width, depth=base.depth)

    def __call__(self, trial: Any) -> dict[str, Any]:  # noqa: ANN401 - an optuna.Trial
        from effnet.search.grid import train_and_score

        params = suggest(trial, self.space)
        slot = trial.user_attrs[shared_study.SLOT]
        config = self.config(params, f"nas-{slot}")
        n_params, macs = cost(config, self.num_classes)
        start = time.perf_counter()
        top1 = float((self.train_fn or train_and_score)(config, self.out_dir / "runs" / slot, self.settings))
        value = math.nan if math.isnan(top1) else objective_value(top1, macs, self.target, self.w)
        return dict(value=value, top1=top1, macs=macs, params=n_params, seconds=round(time.perf_counter() - start, 2),
                    arch=params, config=config.to_dict())


@dataclass
class NasResult:
    ranked: list[dict[str, Any]]
    best_config: ModelConfig
    target: float
    plot_path: Path | None
    extra_plots: list[Path] = field(default_factory=list)


def run_nas(
    settings: SearchSettings, space: SearchSpace, out_dir: str | Path, trials: int, *, w: float = DEFAULT_W,
    target: float | None = None, workers: int = 1, storage: str | None = None, study_name: str = "nas",
    heartbeat_s: int = shared_study.DEFAULT_HEARTBEAT_S, train_fn: TrainFn | None = None,
    log: Callable[[str], None] = print, plot: bool = True,
) -> NasResult:
    """Search ``trials`` architectures (resuming or extending a study that has some), rank them, plot them."""
    if trials < 1 or workers < 1:
        raise ValueError(f"--trials and --workers must be >= 1, got {trials} and {workers}")
    check_objective(1.0 if target is None else target, w)  # before any work: a refusal leaves nothing behind
    out = Path(out_dir)
    num_classes = data_classes(settings)
    base = settings.base_config()
    target = float(target if target is not None else cost(base, num_classes)[1])
    check_objective(target, w)
    spec = shared_study.StudySpec(name=study_name, storage=storage or shared_study.default_storage(out), sampler="tpe",
                            seed=settings.seed, startup_trials=max(3, min(10, trials // 3)), heartbeat_s=heartbeat_s)
    study_settings = dict(settings.to_dict(), space=space.to_dict(), w=w, target=target)
    shared_study.prepare(spec, [(f"t{i:03d}", {}) for i in range(trials)], study_settings)
    log(f"NAS: {trials} trials over {space.size():.3g} architectures ({base.resolution}px, T = {target / 1e6:.2f} "
        f"MMACs, w = {w:g}); {workers} worker(s); study {study_name!r} in {spec.where}")
    objective = NasObjective(settings, space, target, w, num_classes, out, train_fn)
    shared_study.run_workers(spec, objective, workers, log)
    study = spec.open()
    ranked = rank(shared_study.completed(study))
    best = objective.config(ranked[0]["arch"], "nas-best")
    plot_path = plot_nas(ranked, target, w, out / "nas.png") if plot and ranked else None
    extra = optuna_plots(study, out) if plot else []
    return NasResult(ranked, best, target, plot_path, extra)


def rank(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best objective first; among equals the cheaper model; diverged (NaN) runs last."""
    return sorted(records, key=lambda r: (math.isnan(r["value"]), -(0 if math.isnan(r["value"]) else r["value"]),
                                          r["macs"], r["trial"]))
