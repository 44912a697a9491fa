"""One inference pipeline for ``effnet predict``, ``eval``, ``embed`` and the server.

:func:`load_classifier` turns a registry tag, weights file or ``effnet train`` run folder into a
:class:`Classifier`: the model on one backend with its own classes and eval preprocessing.
:func:`image_batches` feeds it: files are decoded and preprocessed in DataLoader worker processes,
each file's pixel count is read from its header before it is decoded, unreadable files are reported
(never raised) and the readable ones come back in input order, ``batch_size`` at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from effnet.choices import MAX_PIXELS
from effnet.data.folders import IMAGE_EXTENSIONS, image_files
from effnet.data.transforms import eval_transform, upright_rgb
from effnet.deploy.predict import Prediction, load_image_limited, top_predictions
from effnet.weights.registry import Preprocessing


class Classifier:
    """One loaded model on one backend, with its class names and eval preprocessing, ready for batches."""

    def __init__(self, model: nn.Module, name: str, classes: Sequence[str], preprocessing: Preprocessing,
                 backend: str = "eager", weights: str = "", image_size: int | None = None,
                 device: torch.device | str = "cpu") -> None:
        self.model = model
        self.name = name
        self.classes = list(classes)
        self.image_size = image_size or preprocessing.resolution
        self.preprocessing = preprocessing
        self.backend = backend
        self.weights = weights
        self.device = torch.device(device)
        # A plain torchvision transform: picklable, so DataLoader workers get it without the model.
        self.transform = eval_transform(preprocessing, resolution=self.image_size)

    def __repr__(self) -> str:
        return (f"Classifier({self.name}, weights={self.weights!r}, backend={self.backend}, "
                f"{len(self.classes)} classes, {self.image_size}px)")

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """CHW float32, the model's own eval transform (resize, centre crop, normalise) of the upright RGB image."""
        return self.transform(upright_rgb(image))

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """float32 logits (N, classes) of a preprocessed batch (N, 3, H, W), on the CPU."""
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a batch of shape (N, 3, H, W), got {tuple(batch.shape)}")
        with torch.inference_mode():
            return self.model(batch.to(self.device)).float().cpu()

    def classify_batch(self, batch: torch.Tensor, topk: int = 5) -> list[list[Prediction]]:
        """The ``topk`` classes with softmax probabilities for each image of the batch."""
        return top_predictions(self.logits(batch), self.classes, topk)


def load_classifier(model: str | None, weights: str | None, backend: str = "eager", *,
                    image_size: int | None = None, device: str = "cpu") -> Classifier:
    """The classifier that ``weights`` (registry tag, weights file or ``effnet train`` run folder) describe.

    ``model`` overrides the architecture the weights name; ``backend`` is one of
    :data:`effnet.deploy.backends.BACKENDS` (all but eager run on the CPU); ``image_size`` overrides
    the size stored with the weights.
    """
    from effnet.deploy.model_spec import model_spec

    if weights is None:
        raise ValueError("a classifier needs weights: a registry tag (lite0, torchvision/b0, ...), a weights file "
                         "or an effnet train run folder")
    _check_options(backend, image_size)
    return classifier_from_spec(model_spec(weights, model), backend, image_size=image_size, device=device)


def _check_options(backend: str, image_size: int | None) -> None:
    from effnet.deploy.backends import BACKENDS

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if image_size is not None and image_size < 1:
        raise ValueError(f"image size must be >= 1, got {image_size}")


def classifier_from_spec(spec: Any, backend: str = "eager", *, image_size: int | None = None,  # noqa: ANN401
                         device: str = "cpu") -> Classifier:
    """:func:`load_classifier` for a :class:`effnet.deploy.model_spec.ModelSpec` already read."""
    from effnet.deploy.backends import with_backend

    _check_options(backend, image_size)
    dev = _pick_device(device)
    if backend != "eager" and dev.type != "cpu":
        raise ValueError(f"--backend {backend} runs on the CPU; add --device cpu")
    size = image_size or spec.preprocessing.resolution
    net = with_backend(spec.build().to(dev), backend, size)
    classes = spec.class_names or [f"class {i}" for i in range(spec.num_classes)]
    return Classifier(net, spec.config.name, classes, spec.preprocessing, backend, str(spec.weights), size, dev)


def _pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# --- images in, batches out --------------------------------------------------------------------------------

@dataclass
class Batch:
    positions: list[int]  # indices into the input list of the readable images, the rows of ``images``
    images: torch.Tensor | None  # (len(positions), 3, H, W), None when no file of the batch was readable
    failed: list[tuple[int, str]]  # (input index, "path: why") for the files that could not be read


class _Files(Dataset):
    """Input files (or errors found before reading, such as an empty folder) -> (tensor or None, error)."""

    def __init__(self, items: Sequence[tuple[Path, str | None]], transform: Callable[[Image.Image], torch.Tensor],
                 max_pixels: int) -> None:
        self.items = items
        self.transform = transform
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str]:
        path, error = self.items[index]
        if error is not None:
            return index, None, error
        try:
            return index, self.transform(load_image_limited(path, self.max_pixels)), ""
        except (ValueError, OSError) as exc:  # unreadable, truncated, too many pixels, gone
            return index, None, str(exc) if str(path) in str(exc) else f"{path}: {exc}"


def _collate(items: list[tuple[int, torch.Tensor | None, str]]) -> Batch:
    good = [(i, x) for i, x, _ in items if x is not None]
    return Batch([i for i, _ in good], torch.stack([x for _, x in good]) if good else None,
                 [(i, err) for i, x, err in items if x is None])


def image_batches(paths: Sequence[str | Path | tuple[Path, str | None]], classifier: Any,  # noqa: ANN401
                  batch_size: int = 32, workers: int | None = None, max_pixels: int = MAX_PIXELS) -> Iterator[Batch]:
    """Batches of preprocessed images, in input order, decoded by ``workers`` processes (None: up to 4).

    ``classifier`` is a :class:`Classifier` or any PIL -> tensor transform. An item of ``paths`` may
    be ``(path, error)`` to pass on an error found earlier (it comes back in ``failed``).
    """
    from effnet.data.folders import default_workers

    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    if workers is not None and workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    items = [p if isinstance(p, tuple) else (Path(p), None) for p in paths]
    transform = classifier.transform if isinstance(classifier, Classifier) else classifier
    workers = default_workers() if workers is None else workers
    workers = min(workers, max(1, -(-len(items) // batch_size)))  # no idle processes for a few files
    loader = DataLoader(_Files(items, transform, max_pixels), batch_size=batch_size, num_workers=workers,
                        collate_fn=_collate, prefetch_factor=4 if workers else None)
    yield from loader


# --- files and folders in, predictions out (effnet predict) ------------------------------------------------

def predict_inputs(paths: Iterable[str | Path]) -> list[tuple[Path, str | None]]:
    """Files as given, folders replaced by their images (recursively, sorted); a folder without images is
    kept as ``(folder, error)`` so that it is reported in its place."""
    items: list[tuple[Path, str | None]] = []
    for given in map(Path, paths):
        files = image_files([given])
        if given.is_dir() and not files:
            items.append((given, f"{given}: no images in this folder (looked for {', '.join(IMAGE_EXTENSIONS)})"))
        items += [(f, None) for f in files]
    return items


def predict_files(
    classifier: Any, paths: Iterable[str | Path | tuple[Path, str | None]], top: int = 5,  # noqa: ANN401 - a Classifier
    batch_size: int = 32, workers: int | None = None, max_pixels: int = MAX_PIXELS,
) -> Iterator[tuple[Path, list[Any] | None, str | None]]:
    """(path, top-``top`` Predictions, None) for each readable image, (path, None, error) for the others
    (unreadable, too many pixels, or a folder without images), in input order, ``batch_size`` images
    per model call, decoded by ``workers`` processes (:func:`image_batches`).
    ``paths`` may be :func:`predict_inputs`' list (files and folders already expanded)."""
    items = [p if isinstance(p, tuple) else None for p in paths]
    items = predict_inputs(paths) if None in items else items
    for batch in image_batches(items, classifier, batch_size, workers, max_pixels):
        preds = classifier.classify_batch(batch.images, top) if batch.images is not None else []
        answers = {pos: (p, None) for pos, p in zip(batch.positions, preds)}
        answers.update({pos: (None, error) for pos, error in batch.failed})
        for pos in sorted(answers):
            yield items[pos][0], *answers[pos]
