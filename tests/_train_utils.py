"""Shared helpers for the training tests: a tiny real image-folder dataset and a tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from effnet import get_config

TINY = get_config("b0").replace(width=0.25, depth=0.34, dropout=0.0, drop_connect=0.0, name="tiny")


def write_digits(root: Path, classes: tuple[int, ...] = (0, 1, 2), per_class: int = 8, size: int = 16,
                 splits: tuple[str, ...] = ("train", "val"), start: int = 0) -> Path:
    """scikit-learn digits as ``root/SPLIT/CLASS/*.png`` (real labelled images, upscaled RGB)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for split_no, split in enumerate(splits):
        for c in classes:
            idx = np.flatnonzero(digits.target == c)[start + split_no * per_class:][:per_class]
            folder = root / split / str(c) if split else root / str(c)
            folder.mkdir(parents=True, exist_ok=True)
            for i in idx:
                pixels = (digits.images[i] * 255 / 16).astype(np.uint8)
                Image.fromarray(pixels, "L").resize((size, size)).convert("RGB").save(folder / f"{i}.png")
    return root


def tiny_kwargs(data: Path, out: Path, **kw: object) -> dict:
    base = dict(data=str(data), model=TINY, epochs=2, batch_size=8, image_size=16, out_dir=str(out), seed=0,
                workers=0, augment="randaugment", progress=False, tensorboard=False, plots=False, quiet=True,
                threads=1, warmup_epochs=0.5)
    base.update(kw)
    return base
