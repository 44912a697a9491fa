"""``effnet eval``: top-1/top-5 of a set of weights on an image folder, through the one inference pipeline.

The weights bring their model, classes, resolution and preprocessing (:mod:`effnet.deploy.model_spec`);
the folder's class names are matched to the weights' classes (:func:`label_map`); images are decoded
in worker processes and scored batch by batch (:func:`effnet.deploy.pipeline.image_batches`,
:class:`effnet.data.labels.TopKScore`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from effnet.data.labels import TopKScore, few, imagenet_wnid_labels


def label_map(folder: Path, folder_classes: list[str], spec: Any) -> tuple[dict[str, int], str]:  # noqa: ANN401
    """Class folder name -> the weights' class index, and how it was matched.

    A run's own class names match by name; a 1000-way ImageNet classifier takes folders named by
    WordNet id (any subset, e.g. an ImageNet-val copy) in the standard order; weights without names
    take exactly as many folders in sorted order (torchvision's ImageFolder convention). Anything
    else is refused: evaluating against the wrong labels would report a meaningless 0%.
    """
    from effnet.data.imagenet_wnids import WNIDS

    names = spec.class_names if spec.names_from_run else None
    if names is not None:
        unknown = [c for c in folder_classes if c not in names]
        if not unknown:
            return {c: names.index(c) for c in folder_classes}, "class names"
        raise ValueError(f"{folder} has class folder(s) the weights were not trained on: {few(unknown)} (the "
                         f"weights know {len(names)}: {few(names)}); evaluate on a folder of those classes")
    if spec.num_classes == len(WNIDS):
        return imagenet_wnid_labels(folder, folder_classes), "ImageNet WordNet ids"
    if len(folder_classes) == spec.num_classes:
        return {c: i for i, c in enumerate(folder_classes)}, "folder order"
    raise ValueError(f"{folder} has {len(folder_classes)} class folders but the weights have {spec.num_classes} "
                     "classes and no class names to match them by; evaluate with the weights' own run folder")


def eval_resolution(config: Any, weights: str | None) -> int:  # noqa: ANN401 - a ModelConfig
    """The image size to evaluate at: the one stored with the weights (a registry weight set's own,
    since torchvision's B2-B7 V1 sets were trained for other sizes than the paper's; an effnet run's
    training size), else the model config's."""
    from effnet.weights.registry import get_weight_set

    ws = get_weight_set(str(weights)) if weights else None
    if ws is not None:
        return ws.preprocessing.resolution
    if weights and Path(weights).exists():
        from effnet.deploy.model_spec import model_spec

        return model_spec(str(weights), config).preprocessing.resolution
    return config.resolution


def evaluate_folder(
    data: str, model: str | None, weights: str, batch_size: int = 32, workers: int | None = None,
    device: str = "auto", image_size: int | None = None, backend: str = "eager", progress: bool = False,
) -> dict[str, Any]:
    """Top-1/top-5 of ``weights`` (a file, registry tag or effnet train run folder) on ``data`` (its
    ``val/`` split, or the folder itself), at the weights' own resolution and preprocessing. ``model``
    overrides the architecture the weights name; ``backend`` runs it another way
    (:func:`effnet.deploy.backends.with_backend`: CPU only)."""
    from tqdm.auto import tqdm

    from effnet.data.folders import VAL_DIR_NAMES, scan_folder
    from effnet.deploy.model_spec import model_spec
    from effnet.deploy.pipeline import classifier_from_spec, image_batches

    for name, value, least in (("batch size", batch_size, 1), ("workers", workers, 0), ("image size", image_size, 1)):
        if value is not None and value < least:
            raise ValueError(f"{name} must be >= {least}, got {value}")
    root = Path(data)
    split = next((root / n for n in VAL_DIR_NAMES if (root / n).is_dir()), root)
    spec = model_spec(weights, model)
    scan = scan_folder(split)
    mapping, matched_by = label_map(split, scan.classes, spec)
    labels = torch.tensor([mapping[scan.classes[label]] for _, label in scan.samples])
    classifier = classifier_from_spec(spec, backend, image_size=image_size, device=device)
    score = TopKScore(spec.num_classes, k=5)
    skipped = [f"{p}: {r}" for p, r in scan.skipped]
    with tqdm(total=len(scan.samples), unit="img", disable=not progress, leave=False) as bar:
        for batch in image_batches([p for p, _ in scan.samples], classifier, batch_size, workers):
            skipped += [error for _, error in batch.failed]
            if batch.images is not None:
                score.update(classifier.logits(batch.images), labels[batch.positions])
            bar.update(len(batch.positions) + len(batch.failed))
    result: dict[str, Any] = {**score.result(), "skipped": skipped}
    result["per_class"] = {c: result["per_class"][i] for c, i in mapping.items()}
    result.update(data=str(split), model=spec.config.name, weights=str(spec.weights), image_size=classifier.image_size,
                  classes_matched_by=matched_by, backend=backend)
    return result
