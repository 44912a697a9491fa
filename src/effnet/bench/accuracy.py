"""Quality of the inference paths on real labelled ImageNet images: top-1/top-5 and agreement with fp32.

The data is a folder of WordNet-id folders (``DATA/n01440764/*.JPEG``, any subset of the 1000
classes: labels come from the standard class order, :func:`effnet.data.imagenet.wnid_index`, never
from the folder count). A few images, spread evenly over the sorted list, are set aside to calibrate
the int8 paths; every path is scored on the same remaining images, so int8 is never judged on what
it was calibrated on and all paths compare on equal terms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class LabelledImages:
    calibration: torch.Tensor  # preprocessed images for int8 calibration
    images: torch.Tensor  # preprocessed evaluation images
    labels: torch.Tensor  # their ImageNet-1k class indices
    skipped: tuple[str, ...]  # unreadable files, "path: why"


@dataclass(frozen=True)
class PathAccuracy:
    top1: float  # percent
    top5: float
    agreement: float  # percent of images whose top-1 equals the fp32 model's
    images: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def imagenet_files(root: str | Path) -> list[tuple[Path, int]]:
    """(image file, ImageNet class index) for every image in ``root``'s WordNet-id folders, sorted."""
    from effnet.data.folders import IMAGE_EXTENSIONS
    from effnet.data.labels import imagenet_wnid_labels

    root = Path(root)
    if not root.is_dir():
        problem = "is a file, not a folder" if root.exists() else "no such folder"
        raise ValueError(f"{root}: {problem}; give a folder of ImageNet WordNet-id folders (n01440764/...)")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    index = imagenet_wnid_labels(root, [p.name for p in folders])
    files = [(f, index[d.name]) for d in folders for f in sorted(d.iterdir())
             if f.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise ValueError(f"{root}: no images in WordNet-id folders; expected {root}/n01440764/*.JPEG")
    return files


def load_labelled(root: str | Path, transform: Callable[[Any], torch.Tensor], calibration: int = 100) -> LabelledImages:
    """The images under ``root``, preprocessed; ``calibration`` of them (evenly spaced) set aside for int8."""
    from effnet.data.transforms import load_image

    files = imagenet_files(root)
    if not 0 <= calibration < len(files):
        raise ValueError(f"--calibration {calibration} must be >= 0 and below the {len(files)} images in {root}")
    step = len(files) / calibration if calibration else 0
    calib_idx = {int(i * step) for i in range(calibration)}
    calib, images, labels, skipped = [], [], [], []
    for i, (path, label) in enumerate(files):
        try:
            x = transform(load_image(path))
        except (OSError, ValueError) as exc:
            skipped.append(f"{path}: {exc}")
            continue
        if i in calib_idx:
            calib.append(x)
        else:
            images.append(x)
            labels.append(label)
    if not images:
        raise ValueError(f"{root}: no readable evaluation images ({len(skipped)} unreadable)")
    c = torch.stack(calib) if calib else torch.empty(0, *images[0].shape)
    return LabelledImages(c, torch.stack(images), torch.tensor(labels), tuple(skipped))


def logits_of(run: Callable[[torch.Tensor], Any], images: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """``run``'s float32 logits for ``images``, in batches."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            y = run(images[i:i + batch])
            out.append((y if isinstance(y, torch.Tensor) else torch.from_numpy(y)).float())
    return torch.cat(out)


def score(logits: torch.Tensor, labels: torch.Tensor, fp32_logits: torch.Tensor) -> PathAccuracy:
    """Top-1/top-5 against ``labels`` and top-1 agreement with ``fp32_logits``."""
    from effnet.data.labels import topk_hits

    hit1, hit5 = topk_hits(logits, labels, k=5)
    return PathAccuracy(
        top1=100.0 * float(hit1.float().mean()),
        top5=100.0 * float(hit5.float().mean()),
        agreement=100.0 * float((logits.argmax(1) == fp32_logits.argmax(1)).float().mean()),
        images=len(labels),
    )
