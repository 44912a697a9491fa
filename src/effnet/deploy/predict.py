"""Turning images into predictions (ImageNet classes, or a trained run's own); the bundled-photo demo."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from effnet.choices import MAX_PIXELS
from effnet.data.imagenet import imagenet_classes
from effnet.data.transforms import load_image, to_rgb


@dataclass(frozen=True)
class Prediction:
    """One of an image's top classes: what ``effnet predict``, the pipeline and the server report."""

    label: str
    index: int
    score: float  # softmax probability


def top_predictions(logits: torch.Tensor, classes: Sequence[str], topk: int = 5) -> list[list[Prediction]]:
    """The ``topk`` classes with softmax probabilities for each row of ``logits`` (N, len(classes))."""
    if topk < 1:
        raise ValueError(f"top-k must be >= 1, got {topk}")
    values, indices = logits.float().softmax(dim=1).topk(min(topk, logits.shape[1]), dim=1)
    return [[Prediction(classes[i], i, p) for i, p in zip(idxs, vals)]
            for vals, idxs in zip(values.tolist(), indices.tolist())]


@torch.no_grad()
def classify(
    model: nn.Module, images: Sequence[Image.Image], transform: Any, top: int = 5, batch_size: int = 16,
    names: Sequence[str] | None = None,
) -> list[list[Prediction]]:
    """Top-``top`` classes with softmax probabilities for each PIL image.

    ``names`` label the classifier's outputs (a trained run's classes); without them a 1000-way
    classifier gets the ImageNet names and any other ``class i``. A list of another length is an error.
    """
    model.eval()
    device = next(model.parameters()).device
    results: list[list[Prediction]] = []
    for start in range(0, len(images), batch_size):
        batch = torch.stack([transform(to_rgb(im)) for im in images[start:start + batch_size]]).to(device)
        logits = model(batch)
        results += top_predictions(logits, _class_names(names, logits.shape[1]), top)
    return results


def _class_names(names: Sequence[str] | None, num_outputs: int) -> Sequence[str]:
    if names is None and num_outputs == len(imagenet_classes()):
        return imagenet_classes()
    if names is None:
        return [f"class {i}" for i in range(num_outputs)]
    if len(names) != num_outputs:
        raise ValueError(f"the model has {num_outputs} outputs but {len(names)} class names were given")
    return names


@contextlib.contextmanager
def _pil_pixel_limit(limit: int | None) -> Iterator[None]:
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def load_image_limited(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """:func:`load_image`, refusing (ValueError, before decoding) an image of more than ``max_pixels`` pixels."""
    with warnings.catch_warnings(), _pil_pixel_limit(max_pixels):
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # PIL only warns between 1x and 2x the limit
        try:
            return load_image(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            pass
    with _pil_pixel_limit(None), Image.open(path) as image:  # reads the header only
        width, height = image.size
    raise ValueError(f"{path}: {width}x{height} is {width * height:,} pixels, over the limit of {max_pixels:,} "
                     "(a decompression bomb?); skipped; raise the limit with --max-pixels if the image is real")


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


def classify_demo_photos(weights: str = "lite0", top: int = 5, print_fn: Any = print) -> dict[str, list[Prediction]]:
    """Classify the bundled photos with real pretrained weights and print the top-``top`` of each."""
    from effnet.data.transforms import eval_transform
    from effnet.factory import create_model
    from effnet.weights import get_weight_set

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    ws = get_weight_set(weights)
    model = create_model(ws.model if ws else weights, weights=weights).eval()
    transform = eval_transform(weights)
    photos = demo_photos()
    results = classify(model, [im for _, im in photos], transform, top)
    print_fn(f"Top-{top} ImageNet predictions with the real {weights} weights:")
    for (name, _), preds in zip(photos, results):
        print_fn(f"  {name:<10} " + ", ".join(f"{p.label} {p.score:.1%}" for p in preds))
    return {name: preds for (name, _), preds in zip(photos, results)}
