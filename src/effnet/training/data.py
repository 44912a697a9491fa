"""Training data: per-sample augmentation seeds and the embedded demo set (image folders: :mod:`effnet.data.folders`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image

from effnet.data.folders import stratified_split
from effnet.fileio import atomic_folder, effnet_home


def sample_seed(base_seed: int, epoch: int, position: int) -> int:
    """A per-sample seed for augmentation, independent of worker, rank and resume point."""
    digest = hashlib.blake2b(f"{base_seed}:{epoch}:{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


# --- the embedded demo set -----------------------------------------------------------------

DEMO_NAME = "digits-v1"
DEMO_SIZE = 32


def demo_dataset(root: Path | None = None) -> Path:
    """scikit-learn's 1,797 handwritten digits as ``train/``/``val/`` folders of 32x32 RGB PNGs.

    Written once (to a temporary folder, then renamed, so an interrupted write never leaves a
    half-made set); 20% of every class is held out for validation with a fixed seed.
    """
    target = (root or effnet_home()) / DEMO_NAME
    if (target / "train").is_dir() and (target / "val").is_dir():
        return target
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    samples = [(str(i), int(label)) for i, label in enumerate(digits.target)]
    train, val = stratified_split(samples, 0.2, seed=0)
    with atomic_folder(target) as tmp:  # if another process finishes first, its copy is kept
        for split, items in (("train", train), ("val", val)):
            for key, label in items:
                pixels = (digits.images[int(key)] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
                img = Image.fromarray(pixels, mode="L").resize((DEMO_SIZE, DEMO_SIZE), Image.BICUBIC).convert("RGB")
                folder = tmp / split / str(label)
                folder.mkdir(parents=True, exist_ok=True)
                img.save(folder / f"{int(key):04d}.png")
    return target
