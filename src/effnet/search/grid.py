"""The paper's step 1: grid-search alpha, beta, gamma on a small baseline, then scale the winner by phi.

Every candidate ``(alpha, beta, gamma)`` has ``alpha, beta, gamma >= 1`` and ``alpha * beta^2 * gamma^2``
within ``tolerance`` (relative) of ``factor`` (2 by default), so each costs about ``factor`` times the
baseline's FLOPs at phi = 1. Each is trained briefly and scored on held-out top-1 accuracy.

Training goes through an injectable ``train_fn(config, run_dir, settings) -> top1`` (default: the
training engine), so the mechanics are testable with a cheap scorer. Results are written after every
candidate to ``results.jsonl`` (rewritten atomically); a rerun with the same settings skips finished
candidates, so an interrupted search resumes where it stopped.
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
from effnet.fileio import atomic_write_text, save_figure
from effnet.search.budget import structure_cost


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


def engine_train_fn(config: ModelConfig, run_dir: Path, settings: SearchSettings) -> float:
    """Train with :func:`effnet.training.train` and return held-out top-1 (%) of the final weights.

    ``resume=True`` continues a candidate that was interrupted mid-training from its last checkpoint
    (a fresh run when there is none). A run whose loss diverges scores NaN and ranks last.
    """
    from effnet.training import TrainConfig, TrainingDiverged, train

    options: dict[str, Any] = dict(progress=False, tensorboard=False, plots=False, quiet=True, resume=True,
                                   keep_checkpoints=1)
    # An EMA with decay 0.9999 barely moves in a few hundred steps; a short search scores the raw weights.
    options["ema"] = False
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


# --- results that survive interruption -------------------------------------------------------


class ResultStore:
    """JSON lines: a settings header, then one record per finished candidate. Rewritten atomically."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = Path(path)
        self.settings = json.loads(json.dumps(settings))  # normalise tuples etc. as they will read back
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        lines = [ln for ln in self.path.read_text().splitlines() if ln.strip()]
        header = json.loads(lines[0]) if lines else {}
        if header.get("settings") != self.settings:
            raise ValueError(
                f"{self.path} holds results made with different settings; resume with the same options, "
                f"or pass another --out folder. Stored: {header.get('settings')}"
            )
        for line in lines[1:]:
            record = json.loads(line)
            self.records[record["key"]] = record

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def add(self, record: dict[str, Any]) -> None:
        self.records[record["key"]] = record
        lines = [json.dumps({"settings": self.settings})] + [json.dumps(r) for r in self.records.values()]
        atomic_write_text(self.path, "\n".join(lines) + "\n")


def evaluate(
    key: str, config: ModelConfig, store: ResultStore, out_dir: Path, settings: SearchSettings,
    train_fn: TrainFn, extra: dict[str, Any], log: Callable[[str], None],
) -> dict[str, Any]:
    """Train and score one config unless the store already has it; the record is saved before returning."""
    if key in store:
        log(f"  {key}: done before (top-1 {store.records[key]['top1']:.3f}), skipped")
        return store.records[key]
    params, macs = structure_cost(config)
    log(f"  {key}: training ({macs / 1e6:.1f} MMACs, {config.resolution}px) ...")
    start = time.perf_counter()
    top1 = float(train_fn(config, out_dir / "runs" / key, settings))
    record = dict(key=key, **extra, width=config.width, depth=config.depth, resolution=config.resolution,
                  params=params, macs=macs, top1=top1, seconds=round(time.perf_counter() - start, 2),
                  config=config.to_dict())
    store.add(record)
    log(f"  {key}: top-1 {top1:.2f} in {record['seconds']:.0f} s")
    return record


# --- step 1: the coefficient search ------------------------------------------------------------


@dataclass
class SearchResult:
    ranked: list[dict[str, Any]]
    results_path: Path
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
) -> SearchResult:
    """Train every candidate (baseline scaled by phi = 1 with its coefficients); rank by held-out top-1.

    ``train_fn`` defaults to :func:`engine_train_fn` (looked up at call time).
    """
    train_fn = train_fn or engine_train_fn
    out = Path(out_dir)
    candidates = list(candidates if candidates is not None else coefficient_grid())
    base = settings.base_config()
    store = ResultStore(out / "results.jsonl", settings.to_dict())
    log(f"searching {len(candidates)} coefficient sets on {base.name} at {base.resolution}px; results in {out}")
    for c in candidates:
        config = scaled_config(1.0, c.alpha, c.beta, c.gamma, base=base)
        extra = dict(alpha=c.alpha, beta=c.beta, gamma=c.gamma, product=round(c.product, 6))
        evaluate(c.key, config, store, out, settings, train_fn, extra, log)
    wanted = {c.key for c in candidates}
    ranked = rank([r for k, r in store.records.items() if k in wanted])
    plot_path = plot_search(ranked, out / "search.png") if plot else None
    return SearchResult(ranked, store.path, plot_path)


def rank(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best accuracy first; among equals, the cheaper model first; failed (NaN) runs last."""
    return sorted(records, key=lambda r: (math.isnan(r["top1"]), -r["top1"] if not math.isnan(r["top1"]) else 0,
                                          r["macs"], r["key"]))


def search_table(ranked: list[dict[str, Any]]) -> str:
    from effnet.arch.summary import format_table

    headers = ("rank", "alpha", "beta", "gamma", "a*b^2*g^2", "res", "MMACs", "params", "top-1", "time s")
    rows = [
        [i + 1, r["alpha"], r["beta"], r["gamma"], r["product"], r["resolution"], r["macs"] / 1e6, r["params"],
         r["top1"], r["seconds"]]
        for i, r in enumerate(ranked)
    ]
    return format_table(headers, rows)


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


def family_table(rows: list[dict[str, Any]]) -> str:
    from effnet.arch.summary import format_table

    headers = ("phi", "width", "depth", "resolution", "params", "MMACs", "x prev")
    body = [[r["phi"], r["config"].width, r["config"].depth, r["config"].resolution, r["params"], r["macs"] / 1e6,
             "-" if r["growth"] is None else f"{r['growth']:.2f}"] for r in rows]
    return format_table(headers, body)


def save_family(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    paths = []
    for r in rows:
        path = Path(folder) / f"{r['config'].name}.json"
        atomic_write_text(path, json.dumps(r["config"].to_dict(), indent=2) + "\n")
        paths.append(path)
    return paths


def plot_search(ranked: list[dict[str, Any]], path: Path) -> Path:
    """Accuracy against MACs for every candidate, the winner marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    ax.scatter([r["macs"] / 1e6 for r in ranked], [r["top1"] for r in ranked], color="tab:blue")
    for r in ranked:
        ax.annotate(f"{r['alpha']:g}/{r['beta']:g}/{r['gamma']:g}", (r["macs"] / 1e6, r["top1"]), fontsize=7,
                    textcoords="offset points", xytext=(3, 3))
    if ranked:
        best = ranked[0]
        ax.scatter([best["macs"] / 1e6], [best["top1"]], marker="*", s=250, color="tab:red", label="best")
        ax.legend()
    ax.set_xlabel("MMACs (phi = 1)")
    ax.set_ylabel("held-out top-1 (%)")
    ax.set_title("Coefficient search: alpha/beta/gamma candidates")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
