"""Cost growth b0..b7: parameters, MACs, measured batch-1 latency, against the paper's 2^phi rule.

Writes cost_growth.md and cost_growth.png into --out. Latency is effnet eager fp32 at each model's
own resolution, batch 1 (large models at their resolution take seconds per image on 2 cores, so
iteration counts are small; use --models to pick a subset). BatchNorm statistics are calibrated on
random data first, as in ``effnet bench``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from effnet import create_model, get_config
from effnet.arch.flops import model_cost
from effnet.bench.candidates import calibrate_bn
from effnet.bench.timing import time_callable


def measure(name: str, iters: int) -> dict[str, float]:
    config = get_config(name)
    params, macs = model_cost(name)
    # Calibrated BN statistics, as in effnet bench: fresh ones give near-denormal activations.
    model = calibrate_bn(create_model(name), config.resolution, batches=1)
    x = torch.randn(1, 3, config.resolution, config.resolution)
    with torch.inference_mode():
        stats = time_callable(lambda: model(x), warmup=1, iters=iters)
    return {"params": params, "macs": macs, "res": config.resolution, "phi": config.phi if config.phi is not None else int(name[1:]),
            "latency_ms": stats.p50_ms, "images_per_s": 1e3 / stats.p50_ms}


def table(rows: dict[str, dict[str, float]]) -> str:
    base = rows["b0"]
    lines = ["| model | phi | res | params (M) | MACs (G) | MACs / b0 | 2^phi | b=1 latency ms | latency / b0 | images/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['phi']:g} | {r['res']} | {r['params'] / 1e6:.2f} | {r['macs'] / 1e9:.3f} | "
                     f"{r['macs'] / base['macs']:.2f} | {2 ** r['phi']:.0f} | {r['latency_ms']:.0f} | "
                     f"{r['latency_ms'] / base['latency_ms']:.2f} | {r['images_per_s']:.2f} |")
    return "\n".join(lines)


def plot(rows: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = rows["b0"]
    phis = [r["phi"] for r in rows.values()]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(phis, [2 ** p for p in phis], "k--", label="2^phi (paper's rule)")
    ax.semilogy(phis, [r["macs"] / base["macs"] for r in rows.values()], "o-", label="MACs / b0")
    ax.semilogy(phis, [r["params"] / base["params"] for r in rows.values()], "s-", label="params / b0")
    ax.semilogy(phis, [r["latency_ms"] / base["latency_ms"] for r in rows.values()], "^-", label="latency / b0")
    for name, r in rows.items():
        ax.annotate(name, (r["phi"], r["macs"] / base["macs"]), textcoords="offset points", xytext=(3, 3), fontsize=8)
    ax.set_xlabel("phi (compound coefficient)")
    ax.set_ylabel("growth relative to b0")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="b0,b1,b2,b3,b4,b5,b6,b7")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    names = args.models.split(",")
    if names[0] != "b0":
        names.insert(0, "b0")
    rows = {}
    for name in names:
        rows[name] = measure(name, args.iters)
        print(f"{name}: {rows[name]['latency_ms']:.0f} ms", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(rows)
    (args.out / "cost_growth.md").write_text(text + "\n")
    plot(rows, args.out / "cost_growth.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
