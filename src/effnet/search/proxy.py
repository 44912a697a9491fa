"""The proxy task searches train on: a class-balanced subset of DATA/train, scored on images held out of it.

Search trials never see DATA's own val/ or test/ split: candidates are chosen on a held-out slice of the
training images, so the test split stays untouched for the final comparison. The subset is a folder of
symbolic links (``train/CLASS/...`` and ``val/CLASS/...``) written once per run folder, atomically, so many
workers can share it.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

from effnet.data.folders import scan_folder


def proxy_data(data: str, out_dir: Path, train_images: int | None, val_images: int, seed: int = 0) -> str:
    """``data`` itself when no subset is asked for (or for the demo set); else the linked subset's folder."""
    if train_images is None or data == "demo":
        return data
    if train_images < 1 or val_images < 1:
        raise ValueError(f"--train-subset and --val-subset must be >= 1, got {train_images} and {val_images}")
    root = Path(data).expanduser()
    if not (root / "train").is_dir():
        problem = "is a file, not a folder" if (root / "train").exists() else "does not exist"
        raise FileNotFoundError(f"--train-subset needs DATA/train/CLASS/... folders; {root}/train {problem}")
    target = Path(out_dir) / f"proxy-data-{train_images}-{val_images}-s{seed}"
    if (target / "train").is_dir():
        return str(target)
    scan = scan_folder(root / "train")
    by_class: dict[int, list[str]] = {}
    for path, label in scan.samples:
        by_class.setdefault(label, []).append(path)
    per_class_train = max(1, train_images // len(by_class))
    per_class_val = max(1, val_images // len(by_class))
    rng = random.Random(seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".proxy-", dir=target.parent))
    for label, paths in sorted(by_class.items()):
        if len(paths) < per_class_train + per_class_val:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ValueError(f"class {scan.classes[label]} has {len(paths)} images, fewer than the "
                             f"{per_class_train} + {per_class_val} a subset of this size needs; ask for fewer")
        chosen = rng.sample(sorted(paths), per_class_train + per_class_val)
        for split, items in (("train", chosen[:per_class_train]), ("val", chosen[per_class_train:])):
            folder = tmp / split / scan.classes[label]
            folder.mkdir(parents=True)
            for path in items:
                os.symlink(Path(path).resolve(), folder / Path(path).name)
    try:
        tmp.rename(target)
    except OSError:  # another worker made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)
