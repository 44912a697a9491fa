"""Largest training batch that fits a memory budget, per implementation x training backend.

Peak memory of a training step (RSS high-water growth, as in ``effnet bench``: it includes
gradients, optimizer state and every saved activation) grows linearly with the batch. This
measures it at two small batches, fits the line, predicts the largest batch under --budget-mb,
and then checks the prediction with real steps (stepping down while it does not fit, up while
the next batch still fits, at most 4 times), so the reported batch ran within the budget.
"""

from __future__ import annotations

import argparse
import sys

import torch

from effnet.bench_candidates import TRAIN_BACKENDS, _train_step, build_model, calibrate_bn
from effnet.benchmem import PeakRSS


def step_peak_mb(impl: str, backend: str, model_name: str, batch: int, resolution: int) -> float:
    """RSS high-water growth over two training steps (the first allocates grads and momentum)."""
    torch.manual_seed(0)
    model = calibrate_bn(build_model(impl, model_name, 1000), resolution)
    x = torch.randn(batch, 3, resolution, resolution)
    step, _ = _train_step(impl, backend, model, x)
    with PeakRSS() as peak:
        step()
        step()
    del model, step
    return peak.growth_mb


def largest_batch(impl: str, backend: str, model_name: str, budget_mb: float, resolution: int,
                  probes: tuple[int, int] = (4, 12), max_up: int = 4) -> dict[str, float]:
    a, b = probes
    mem_a = step_peak_mb(impl, backend, model_name, a, resolution)
    mem_b = step_peak_mb(impl, backend, model_name, b, resolution)
    per_image = max((mem_b - mem_a) / (b - a), 1e-3)
    fixed = mem_a - per_image * a
    batch = max(int((budget_mb - fixed) / per_image), 1)
    measured = step_peak_mb(impl, backend, model_name, batch, resolution)
    while measured > budget_mb and batch > 1:  # the line was optimistic: step down by the overshoot
        batch = max(batch - max(int((measured - budget_mb) / per_image), 1), 1)
        measured = step_peak_mb(impl, backend, model_name, batch, resolution)
    for _ in range(max_up):  # the line was pessimistic: step up while the next batch still fits
        bigger = step_peak_mb(impl, backend, model_name, batch + 1, resolution)
        if bigger > budget_mb:
            break
        batch, measured = batch + 1, bigger
    return {"per_image_mb": per_image, "fixed_mb": fixed, "batch": batch, "measured_mb": measured}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="b0")
    parser.add_argument("--budget-mb", type=float, default=2048)
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--runs", default="torchvision:eager,torchvision:channels_last,effnet:channels_last,"
                        "effnet:plain_autograd,effnet:checkpoint,effnet:bf16_checkpoint",
                        help=f"comma list of implementation:backend (backends: {', '.join(TRAIN_BACKENDS)})")
    args = parser.parse_args(argv)
    from effnet.config import get_config

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
