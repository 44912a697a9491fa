"""What a person sees of a search: the tables printed and the plots saved for the coefficient grid
(:mod:`~effnet.search.grid`), the scaling study (:mod:`~effnet.search.study`) and the baseline search
(:mod:`~effnet.search.nas`), from their records (plain dicts). Nothing here trains or searches."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from effnet.fileio import save_figure

# --- the coefficient search -----------------------------------------------------------------------------


def search_table(ranked: list[dict[str, Any]]) -> str:
    from effnet.arch.summary import format_table

    headers = ("rank", "alpha", "beta", "gamma", "a*b^2*g^2", "res", "MMACs", "params", "top-1", "time s")
    rows = [
        [i + 1, r["alpha"], r["beta"], r["gamma"], r["product"], r["resolution"], r["macs"] / 1e6, r["params"],
         r["top1"], r["seconds"]]
        for i, r in enumerate(ranked)
    ]
    return format_table(headers, rows)


def scaled_family_table(rows: list[dict[str, Any]]) -> str:
    from effnet.arch.summary import format_table

    headers = ("phi", "width", "depth", "resolution", "params", "MMACs", "x prev")
    body = [[r["phi"], r["config"].width, r["config"].depth, r["config"].resolution, r["params"], r["macs"] / 1e6,
             "-" if r["growth"] is None else f"{r['growth']:.2f}"] for r in rows]
    return format_table(headers, body)


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


# --- the scaling study --------------------------------------------------------------------------------

def study_table(records: list[dict[str, Any]]) -> str:
    from effnet.arch.summary import format_table

    compound_macs = {r["level"]: r["macs"] for r in records if r["method"] == "compound"}
    headers = ("method", "phi level", "multiplier", "res", "MMACs", "vs compound", "params", "top-1", "time s")
    rows = [
        [r["method"], r["level"], r["multiplier"], r["resolution"], r["macs"] / 1e6,
         f"{r['macs'] / compound_macs[r['level']]:.3f}" if r["level"] in compound_macs else "-",
         r["params"], r["top1"], r["seconds"]]
        for r in records
    ]
    return format_table(headers, rows)


def plot_study(records: list[dict[str, Any]], path: Path, methods: Sequence[str]) -> Path:
    """Accuracy against MACs, one line per scaling method, all starting at the baseline (paper Fig. 8)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    baseline = [r for r in records if r["method"] == "baseline"]
    fig, ax = plt.subplots(figsize=(7, 5))
    styles = dict(width="o--", depth="s--", resolution="^--", compound="*-")
    for method in methods:
        points = sorted(baseline + [r for r in records if r["method"] == method], key=lambda r: r["macs"])
        ax.plot([r["macs"] / 1e6 for r in points], [r["top1"] for r in points], styles[method], label=method,
                markersize=10 if method == "compound" else 6)
    ax.set_xlabel("MMACs")
    ax.set_ylabel("held-out top-1 (%)")
    ax.set_title("Scaling up the baseline: single dimension vs compound")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


# --- the baseline search (NAS) ------------------------------------------------------------------------

def pareto_front(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trials no other trial beats on both accuracy (higher) and MACs (lower), by increasing MACs."""
    ok = [r for r in records if not math.isnan(r["top1"])]
    front = [r for r in ok if not any(o["top1"] >= r["top1"] and o["macs"] <= r["macs"] and
                                      (o["top1"] > r["top1"] or o["macs"] < r["macs"]) for o in ok)]
    return sorted(front, key=lambda r: r["macs"])


def arch_text(arch: dict[str, Any], stages: int) -> str:
    """One stage per group: e6k5 (expand 6, kernel 5), se when SE is on, - without skip, width, layer change."""
    parts = []
    for i in range(stages):
        g = {k: arch[f"s{i}_{k}"] for k in ("expand", "kernel", "se_ratio", "skip", "width", "layers")}
        parts.append(f"e{g['expand']}k{g['kernel']}{'se' if g['se_ratio'] else ''}{'' if g['skip'] else '-'}"
                     f"w{g['width']:g}{g['layers']:+d}")
    return " ".join(parts)


def nas_table(ranked: list[dict[str, Any]], limit: int | None = None) -> str:
    from effnet.arch.summary import format_table

    front = {r["trial"] for r in pareto_front(ranked)}
    headers = ("rank", "trial", "objective", "top-1", "MMACs", "params", "pareto", "time s", "stages")
    rows = [[i + 1, r["trial"], r["value"], r["top1"], r["macs"] / 1e6, r["params"], "*" if r["trial"] in front else "",
             r["seconds"], arch_text(r["arch"], len(r["config"]["stages"]))] for i, r in enumerate(ranked[:limit])]
    return format_table(headers, rows)


def plot_nas(ranked: list[dict[str, Any]], target: float, w: float, path: Path) -> Path:
    """Accuracy against MACs for every trial, the objective's iso-lines, the Pareto front and the best."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ok = [r for r in ranked if not math.isnan(r["top1"])]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    macs = np.array([r["macs"] for r in ok], dtype=float)
    ax.scatter(macs / 1e6, [r["top1"] for r in ok], color="tab:blue", s=20, label="trials", zorder=3)
    if ok:
        grid = np.linspace(macs.min() * 0.8, macs.max() * 1.2, 100)
        for level in np.quantile([r["value"] for r in ok], [0.25, 0.5, 0.75, 1.0]):
            ax.plot(grid / 1e6, level / (grid / target) ** w, color="0.7", lw=0.8, ls=":")
        ax.plot([], [], color="0.7", ls=":", label=f"iso-objective, w = {w:g}")
        front = pareto_front(ok)
        ax.step([r["macs"] / 1e6 for r in front], [r["top1"] for r in front], where="post", color="tab:orange",
                marker="o", label="Pareto front")
        ax.scatter([ok[0]["macs"] / 1e6], [ok[0]["top1"]], marker="*", s=250, color="tab:red", zorder=4,
                   label="best objective")
        ax.axvline(target / 1e6, color="tab:green", lw=0.8, ls="--", label="T (base MACs)")
    ax.set_xlabel("MMACs at the search resolution")
    ax.set_ylabel("held-out top-1 (%)")
    ax.set_title("Baseline search: accuracy against MACs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def optuna_plots(study: Any, out: Path) -> list[Path]:  # noqa: ANN401 - an optuna.Study
    """Optuna's own optimisation-history plot (matplotlib backend)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization.matplotlib import plot_optimization_history

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the matplotlib backend is marked experimental
        ax = plot_optimization_history(study)
    return [save_figure(ax.figure, out / "optuna-history.png")]
