"""Largest training batch that fits a memory budget, per implementation x training backend.

Peak memory of a training step (RSS high-water growth in a fresh process, as in ``effnet bench``: it includes
gradients, optimizer state and every saved activation) grows linearly with the batch. This
measures it at two small batches, fits the line, predicts the largest batch under --budget-mb,
and then checks the prediction with real steps (stepping down while it does not fit, up while
the next batch still fits, at most 4 times), so the reported batch ran within the budget.
"""

from __future__ import annotations

import argparse
import sys

from effnet.bench.harness import BenchConfig, isolated_peak_mb
from effnet.choices import TRAIN_BACKENDS


def step_peak_mb(impl: str, backend: str, model_name: str, batch: int, resolution: int) -> float:
    """RSS high-water growth over two training steps (the first allocates grads and momentum), in a fresh process."""
    cfg = BenchConfig(model=model_name, batch=batch, mode="train", backends=(backend,),
                      compare=() if impl == "effnet" else (impl,), resolution=resolution, warmup=2, latency=False)
    return isolated_peak_mb(cfg, impl, backend)


def largest_batch(impl: str, backend: str, model_name: str, budget_mb: float, resolution: int,
                  probes: tuple[int, int] = (4, 12), max_steps: int = 6) -> dict[str, float]:
    """Secant search on measured peaks: the largest batch measured to fit, and its peak.

    Memory is only roughly linear in the batch (fixed costs dominate small batches), so each new
    measurement replaces the line's far end: the next guess comes from the fitting batch with the
    largest peak and the nearest batch that did not fit (or the largest measured so far).
    """
    def measure(batch: int) -> float:
        return step_peak_mb(impl, backend, model_name, batch, resolution)

    points = {n: measure(n) for n in probes}
    per_image = max((points[probes[1]] - points[probes[0]]) / (probes[1] - probes[0]), 1e-3)
    fixed = points[probes[0]] - per_image * probes[0]
    for _ in range(max_steps):
        fits = [n for n, mb in points.items() if mb <= budget_mb]
        over = [n for n, mb in points.items() if mb > budget_mb]
        low = max(fits, default=0)
        high = min(over, default=None)
        if high is not None and high - low <= 1:
            break
        if low == 0:
            guess = high // 2
        else:
            other = high if high is not None else max(n for n in points if n != low)
            slope = max((points[other] - points[low]) / (other - low), 1e-3)
            guess = low + int((budget_mb - points[low]) / slope)
        upper = high - 1 if high is not None else guess
        guess = min(max(guess, low + 1), upper)
        if guess in points:  # measured already: the search has converged
            break
        points[guess] = measure(guess)
    low = max((n for n, mb in points.items() if mb <= budget_mb), default=0)
    return {"per_image_mb": per_image, "fixed_mb": fixed, "batch": low, "measured_mb": points.get(low, float("nan"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="b0")
    parser.add_argument("--budget-mb", type=float, default=2048)
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--runs", default="torchvision:eager,torchvision:channels_last,effnet:channels_last,"
                        "effnet:plain_autograd,effnet:checkpoint,effnet:checkpoint_selective,effnet:bf16_checkpoint",
                        help=f"comma list of implementation:backend (backends: {', '.join(TRAIN_BACKENDS)})")
    args = parser.parse_args(argv)
    from effnet.arch.config import get_config

    resolution = args.resolution or get_config(args.model).resolution
    print(f"Largest {args.model} training batch ({resolution}px, SGD+momentum) within {args.budget_mb:.0f} MB "
          "of peak RSS growth\n")
    print("| implementation | backend | MB per image | fixed MB | largest batch | measured peak MB |")
    print("|---|---|---:|---:|---:|---:|")
    for run in args.runs.split(","):
        impl, backend = run.split(":")
        r = largest_batch(impl, backend, args.model, args.budget_mb, resolution)
        print(f"| {impl} | {backend} | {r['per_image_mb']:.1f} | {r['fixed_mb']:.0f} | {r['batch']} | "
              f"{r['measured_mb']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
