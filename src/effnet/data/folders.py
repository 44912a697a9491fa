"""Image folders: the files in them, class-folder scans, train/val splits, and a dataset that survives bad files.

Layout: ``DATA/train/CLASS/*.png`` and ``DATA/val/CLASS/*.png`` (or ``test/``), or one ``DATA/CLASS/*.png`` tree
split with ``val_fraction``. Files whose extension is not an image are skipped at scan time;
files that fail to decode (corrupt, truncated) are skipped when loaded: the dataset returns
``None`` and :func:`collate_skip_bad` drops it and passes the path on, so the caller can
count and list them (this works with worker processes, where a shared counter would not).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from effnet.data.transforms import load_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
VAL_DIR_NAMES = ("val", "valid", "validation", "test")  # test/: e.g. CIFAR-10 ships train/ and test/ only


def default_workers(most: int = 4) -> int:
    """Data-loading processes when none are asked for: up to ``most``, but never more than this process's
    share of the CPUs it may run on (more only compete with training; torch's DataLoader warns about them).
    Under torchrun the CPUs are shared by the ``LOCAL_WORLD_SIZE`` processes on this machine."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(0, min(most, cpus // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))))


@dataclass
class FolderScan:
    root: Path
    classes: list[str]
    samples: list[tuple[str, int]]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def require_folder(path: Path, what: str, hint: str = "") -> None:
    """Refuse a path that is not a folder, saying which of the two it is: missing, or a file."""
    if path.is_dir():
        return
    if path.exists():
        raise NotADirectoryError(f"{what} {path} is a file, not a folder; give the folder that holds the images")
    raise FileNotFoundError(f"{what} {path} does not exist{hint}")


def _class_dirs(root: Path) -> list[Path]:
    return sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name)


def scan_folder(root: Path, classes: list[str] | None = None) -> FolderScan:
    """List ``root/CLASS/**`` image files. ``classes`` fixes the label order (for a val split)."""
    require_folder(root, "data folder")
    dirs = _class_dirs(root)
    if not dirs:
        raise ValueError(f"{root} has no class folders; expected {root}/CLASS_NAME/image.jpg")
    names = [d.name for d in dirs]
    if classes is None:
        classes = names
    else:
        unknown = sorted(set(names) - set(classes))
        if unknown:
            raise ValueError(
                f"{root} has class folder(s) {unknown} that the training split does not have; "
                "add them to train/ or remove them from the validation split"
            )
    index = {c: i for i, c in enumerate(classes)}
    scan = FolderScan(root, list(classes), [])
    for d in dirs:
        files = sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith("."))
        images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        scan.skipped += [(str(p), "not an image file") for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]
        if not images:
            raise ValueError(f"class folder {d} contains no images; add images or delete the folder")
        scan.samples += [(str(p), index[d.name]) for p in images]
    return scan


@dataclass
class Splits:
    classes: list[str]
    train: list[tuple[str, int]]
    val: list[tuple[str, int]]
    skipped: list[tuple[str, str]]


def find_splits(data: str | Path, val_fraction: float | None = None, seed: int = 0) -> Splits:
    """Resolve ``DATA`` into train/val sample lists, raising clear errors before training starts."""
    root = Path(data).expanduser()
    require_folder(root, "data folder", " (use --data demo for the built-in digits)")
    if val_fraction is not None and not 0.0 < val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be between 0 and 1, got {val_fraction}")
    train_dir = root / "train"
    val_dir = next((root / n for n in VAL_DIR_NAMES if (root / n).is_dir()), None)
    if train_dir.is_dir():
        train = scan_folder(train_dir)
        if val_fraction is not None:
            tr, va = stratified_split(train.samples, val_fraction, seed)
            return Splits(train.classes, tr, va, train.skipped)
        if val_dir is None:
            raise FileNotFoundError(
                f"missing split: {root}/val not found; add a val/ folder with the same classes "
                "or pass --val-fraction 0.1 to hold out part of train/"
            )
        val = scan_folder(val_dir, classes=train.classes)
        return Splits(train.classes, train.samples, val.samples, train.skipped + val.skipped)
    if val_dir is not None:
        raise FileNotFoundError(f"missing split: {root} has {val_dir.name}/ but no train/ folder")
    if val_fraction is None:
        raise FileNotFoundError(
            f"missing split: {root} has no train/ and val/ folders; arrange it as train/CLASS/... and "
            "val/CLASS/... or pass --val-fraction 0.1 to split the class folders in it"
        )
    whole = scan_folder(root)
    tr, va = stratified_split(whole.samples, val_fraction, seed)
    return Splits(whole.classes, tr, va, whole.skipped)


def stratified_split(
    samples: list[tuple[str, int]], fraction: float, seed: int
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Hold out ``fraction`` of every class (at least one image, if the class has two)."""
    rng = random.Random(seed)
    by_class: dict[int, list[tuple[str, int]]] = {}
    for s in samples:
        by_class.setdefault(s[1], []).append(s)
    train, val = [], []
    for label in sorted(by_class):
        items = by_class[label][:]
        rng.shuffle(items)
        n_val = min(len(items) - 1, max(1, round(fraction * len(items)))) if len(items) > 1 else 0
        val += items[:n_val]
        train += items[n_val:]
    return sorted(train), sorted(val)


class ImageFiles(Dataset):
    """``(path, label)`` samples; indexed by ``(index, seed)`` so augmentation is reproducible.

    A file that cannot be decoded yields ``None`` plus its path instead of raising.
    """

    def __init__(self, samples: list[tuple[str, int]], transform: Any = None) -> None:  # noqa: ANN401
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[Any, int, str]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        path, label = self.samples[index]
        try:
            img = load_image(path)  # a full decode: truncated files fail here; CMYK, palette, 16-bit made RGB
        except Exception as exc:  # noqa: BLE001 - any decode failure means "skip this file"
            return None, label, f"{path}: {type(exc).__name__}: {exc}"
        if self.transform is None:
            return img, label, ""
        if seed is None:
            return self.transform(img), label, ""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.transform(img), label, ""


def collate_skip_bad(batch: list[tuple[Any, int, str]]) -> tuple[torch.Tensor | None, torch.Tensor | None, list[str]]:
    """Stack the good samples; return the failures' descriptions alongside."""
    good = [(x, y) for x, y, _ in batch if x is not None]
    bad = [err for x, _, err in batch if x is None]
    if not good:
        return None, None, bad
    return torch.stack([x for x, _ in good]), torch.tensor([y for _, y in good]), bad


def image_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders replaced by the image files inside them (recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS))
        else:
            out.append(p)
    return out
