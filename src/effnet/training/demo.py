"""The demo run for ``make demo``: the paper's recipe on the embedded digits, a few minutes on CPU."""

from __future__ import annotations

import time
from pathlib import Path

from effnet.arch.config import get_config
from effnet.training.config import TrainConfig, TrainResult
from effnet.training.loop import train


def demo_config(out_dir: str | Path = "runs/demo", threads: int | None = None) -> TrainConfig:
    """A B0 shrunk to width 0.25 / depth 0.34 at 64 px, 10 epochs of the recipe (RMSProp-TF, staircase lr,
    EMA, label smoothing). Departures, each because digits are tiny and few: no horizontal flip (it changes
    digits), no RandAugment (8x8 sources), milder crops, dropout/drop-connect 0.1, and BN momentum 0.1 so
    the running statistics settle within ~200 steps."""
    model = get_config("b0").replace(name="b0-tiny", width=0.25, depth=0.34)
    return TrainConfig(data="demo", model=model, epochs=10, batch_size=64, image_size=64, out_dir=str(out_dir),
                       augment="none", flip=False, crop_scale=(0.5, 1.0), bn_momentum=0.1, dropout=0.1,
                       drop_connect=0.1, threads=threads, tensorboard=True,
                       overwrite=True)  # the demo's own folder: each `effnet demo` replaces the last


def train_on_digits(out_dir: str | Path = "runs/demo", threads: int | None = None) -> TrainResult:
    """Train on the digits, print held-out accuracy, images/s and where the plots are."""
    start = time.perf_counter()
    result = train(demo_config(out_dir, threads))
    minutes = (time.perf_counter() - start) / 60
    print(f"\ndigits demo: held-out top-1 {result.final_top1:.2f}% (EMA weights) on "
          f"{result.history[-1]['val_images']} held-out images"
          f" after {result.steps} steps in {minutes:.1f} min, {result.images_per_sec:.0f} training images/s")
    print(f"plots: {', '.join(str(p) for p in result.plots)}")
    print(f"metrics: {result.run_dir / 'metrics.csv'}  weights: {result.weights_file}")
    return result
