"""Turning images into ImageNet predictions; the bundled-photo demo."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from effnet.data.imagenet import imagenet_classes
from effnet.data.transforms import load_image, to_rgb

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass(frozen=True)
class Prediction:
    index: int
    name: str
    probability: float


@torch.no_grad()
def classify(
    model: nn.Module, images: Sequence[Image.Image], transform: Any, top: int = 5, batch_size: int = 16
) -> list[list[Prediction]]:
    """Top-``top`` ImageNet classes with softmax probabilities for each PIL image."""
    model.eval()
    device = next(model.parameters()).device
    names = imagenet_classes()
    results: list[list[Prediction]] = []
    for start in range(0, len(images), batch_size):
        batch = torch.stack([transform(to_rgb(im)) for im in images[start:start + batch_size]]).to(device)
        probs = model(batch).float().softmax(dim=1)
        values, indices = probs.topk(min(top, probs.shape[1]), dim=1)
        for vals, idxs in zip(values.tolist(), indices.tolist()):
            label = (lambda i: names[i]) if probs.shape[1] == len(names) else (lambda i: f"class {i}")
            results.append([Prediction(i, label(i), p) for i, p in zip(idxs, vals)])
    return results


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; directories replaced by the image files inside them (recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out


def classify_files(
    model: nn.Module, paths: Iterable[str | Path], transform: Any, top: int = 5
) -> Iterator[tuple[Path, list[Prediction] | None, str | None]]:
    """(path, predictions, None) for each readable image, (path, None, error) for the others."""
    for path in expand_paths(paths):
        try:
            image = load_image(path)
        except (ValueError, FileNotFoundError) as exc:
            yield path, None, str(exc)
            continue
        yield path, classify(model, [image], transform, top)[0], None


def demo_photos() -> list[tuple[str, Image.Image]]:
    """Real photos bundled with scikit-image and scikit-learn, as (name, RGB PIL image)."""
    from skimage import data

    photos = [(name, Image.fromarray(getattr(data, name)())) for name in ("chelsea", "coffee", "rocket", "astronaut")]
    try:
        from sklearn.datasets import load_sample_images

        bunch = load_sample_images()
        photos += [(Path(f).stem, Image.fromarray(im)) for f, im in zip(bunch.filenames, bunch.images)]
    except ImportError:
        pass
    return [(name, to_rgb(im)) for name, im in photos]


def run_demo(weights: str = "lite0", top: int = 5, print_fn: Any = print) -> dict[str, list[Prediction]]:
    """Classify the bundled photos with real pretrained weights and print the top-``top`` of each."""
    from effnet.arch.model import create_model
    from effnet.data.transforms import eval_transform
    from effnet.weights import get_weight_set

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    ws = get_weight_set(weights)
    model = create_model(ws.model if ws else weights, weights=weights).eval()
    transform = eval_transform(weights)
    photos = demo_photos()
    results = classify(model, [im for _, im in photos], transform, top)
    print_fn(f"Top-{top} ImageNet predictions with the real {weights} weights:")
    for (name, _), preds in zip(photos, results):
        print_fn(f"  {name:<10} " + ", ".join(f"{p.name} {p.probability:.1%}" for p in preds))
    return {name: preds for (name, _), preds in zip(photos, results)}
