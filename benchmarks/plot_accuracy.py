"""Top-1 on the labelled sample against images/s, every path and model, the Pareto front marked.

Reads the JSON of `effnet bench --accuracy DATA --json` runs (one per model, as `run_all.py --data`
writes them: results/accuracy_MODEL.json) and writes a PNG. A point is on the Pareto front when no
other point is both faster and at least as accurate. Speeds of different runs are only roughly
comparable (the machine's clock moves between runs); within one model they come from one run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKERS = {"eager": "o", "channels_last": "s", "bf16": "D", "compile": "P", "onnxruntime": "^",
           "onnxruntime_int8": "v", "executorch": "<", "executorch_int8": ">"}


def points(paths: list[Path]) -> list[tuple[str, str, float, float]]:
    """(model, backend, images/s, top-1 %) of every scored row."""
    out = []
    for path in paths:
        result = json.loads(path.read_text())
        for row in result["rows"]:
            if row.get("accuracy"):
                out.append((result["config"]["model"], row["backend"], row["images_per_s"], row["accuracy"]["top1"]))
    return out


def pareto(pts: list[tuple[str, str, float, float]]) -> list[tuple[str, str, float, float]]:
    """The points no other point beats on both speed and top-1, fastest first."""
    front = [p for p in pts if not any(q[2] > p[2] and q[3] >= p[3] or q[2] >= p[2] and q[3] > p[3] for q in pts)]
    return sorted(front, key=lambda p: -p[2])


def plot(pts: list[tuple[str, str, float, float]], out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from effnet.fileio import save_figure

    fig, ax = plt.subplots(figsize=(9, 6))
    models = sorted({p[0] for p in pts})
    colors = dict(zip(models, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for model, backend, ips, top1 in pts:
        ax.scatter(ips, top1, marker=MARKERS.get(backend, "x"), color=colors[model], s=55, zorder=3)
    front = pareto(pts)
    ax.plot([p[2] for p in front], [p[3] for p in front], "k--", lw=1, zorder=2, label="Pareto front")
    for model, backend, ips, top1 in front:
        ax.annotate(f"{model} {backend}", (ips, top1), textcoords="offset points", xytext=(5, 4), fontsize=8)
    for model in models:
        ax.scatter([], [], color=colors[model], marker="o", label=model)
    for backend, marker in MARKERS.items():
        if any(p[1] == backend for p in pts):
            ax.scatter([], [], color="grey", marker=marker, label=backend)
    ax.set_xlabel("images/s (batch 32, 2 CPU threads)")
    ax.set_ylabel("top-1 % on the labelled sample")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left", ncol=2)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="*", type=Path, help="bench JSON files (default: results/accuracy_*.json)")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "accuracy_vs_speed.png")
    parser.add_argument("--title", default="Top-1 on the ImageNet sample vs throughput, every inference path")
    args = parser.parse_args(argv)
    files = args.results or sorted((HERE / "results").glob("accuracy_*.json"))
    pts = points(files)
    if not pts:
        raise SystemExit(f"no scored rows in {', '.join(map(str, files)) or 'results/accuracy_*.json'}")
    print(f"wrote {plot(pts, args.out, args.title)}")
    for model, backend, ips, top1 in pareto(pts):
        print(f"Pareto: {model} {backend}: {ips:.1f} images/s, top-1 {top1:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
