"""Top-1/top-5 accuracy, loss and per-class accuracy over a data loader (sharded across ranks)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from effnet.training.distributed import DistInfo, all_reduce_sum


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Any,  # noqa: ANN401 - yields (images, labels, bad) from collate_skip_bad
    num_classes: int,
    device: torch.device,
    info: DistInfo | None = None,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> dict[str, Any]:
    """Accuracy of ``model`` on ``loader``; counts are summed over ranks when distributed."""
    info = info or DistInfo(device=device)
    was_training = model.training
    model.eval()
    correct1 = torch.zeros((), dtype=torch.float64, device=device)
    correct5 = torch.zeros_like(correct1)
    loss_sum = torch.zeros_like(correct1)
    per_class = torch.zeros(2, num_classes, dtype=torch.float64, device=device)  # correct, total
    bad: list[str] = []
    k = min(5, num_classes)
    for images, labels, skipped in loader:
        bad += skipped
        if images is None:
            continue
        images, labels = images.to(device), labels.to(device)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext()
        with ctx:
            logits = model(images)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
        top = logits.topk(k, dim=1).indices
        hit1 = top[:, 0] == labels
        correct1 += hit1.sum()
        correct5 += (top == labels[:, None]).any(dim=1).sum()
        per_class[0].index_add_(0, labels, hit1.double())
        per_class[1].index_add_(0, labels, torch.ones_like(labels, dtype=torch.float64))
    for t in (correct1, correct5, loss_sum, per_class):
        all_reduce_sum(t, info)
    model.train(was_training)
    total = per_class[1].sum().item()
    if total == 0:
        raise RuntimeError("no readable images to evaluate on; every file in the validation split failed to load")
    per_class = per_class.cpu()
    return {
        "top1": 100.0 * correct1.item() / total,
        "top5": 100.0 * correct5.item() / total,
        "loss": loss_sum.item() / total,
        "images": int(total),
        "per_class": [
            100.0 * c / n if n else float("nan") for c, n in zip(per_class[0].tolist(), per_class[1].tolist())
        ],
        "skipped": bad,
    }


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


def label_map(folder: Path, folder_classes: list[str], spec: Any) -> tuple[dict[str, int], str]:  # noqa: ANN401
    """Class folder name -> the weights' class index, and how it was matched.

    A run's own class names match by name; a 1000-way ImageNet classifier takes folders named by
    WordNet id (any subset, e.g. an ImageNet-val copy) in the standard order; weights without names
    take exactly as many folders in sorted order (torchvision's ImageFolder convention). Anything
    else is refused: evaluating against the wrong labels would report a meaningless 0%.
    """
    from effnet.data.imagenet import wnid_index

    names = spec.class_names if spec.names_from_run else None
    if names is not None:
        unknown = [c for c in folder_classes if c not in names]
        if not unknown:
            return {c: names.index(c) for c in folder_classes}, "class names"
        raise ValueError(f"{folder} has class folder(s) the weights were not trained on: {_few(unknown)} (the "
                         f"weights know {len(names)}: {_few(names)}); evaluate on a folder of those classes")
    wnids = wnid_index()
    if spec.num_classes == len(wnids) and all(c in wnids for c in folder_classes):
        return {c: wnids[c] for c in folder_classes}, "ImageNet WordNet ids"
    if spec.num_classes == len(wnids):
        odd = [c for c in folder_classes if c not in wnids]
        raise ValueError(f"{folder}: class folder(s) {_few(odd)} are not ImageNet WordNet ids (n01440764 ...), "
                         f"which these 1000-class ImageNet weights need to map folders to classes")
    if len(folder_classes) == spec.num_classes:
        return {c: i for i, c in enumerate(folder_classes)}, "folder order"
    raise ValueError(f"{folder} has {len(folder_classes)} class folders but the weights have {spec.num_classes} "
                     "classes and no class names to match them by; evaluate with the weights' own run folder")


def _few(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def evaluate_folder(
    data: str, model: str | None, weights: str, batch_size: int = 64, workers: int | None = None, device: str = "auto",
    image_size: int | None = None, backend: str = "eager",
) -> dict[str, Any]:
    """Top-1/top-5 of ``weights`` (a file, registry tag or effnet train run folder) on ``data`` (its
    ``val/`` split, or the folder itself), at the weights' own resolution and preprocessing. ``model``
    overrides the architecture the weights name; ``backend`` runs it another way
    (:func:`effnet.deploy.backends.with_backend`: CPU only)."""
    from torch.utils.data import DataLoader

    from effnet.data.transforms import eval_transform
    from effnet.deploy.model_spec import model_spec
    from effnet.training.data import VAL_DIR_NAMES, ImageFiles, collate_skip_bad, default_workers, scan_folder
    from effnet.training.distributed import pick_device

    for name, value, least in (("batch size", batch_size, 1), ("workers", workers, 0), ("image size", image_size, 1)):
        if value is not None and value < least:
            raise ValueError(f"{name} must be >= {least}, got {value}")
    root = Path(data)
    split = next((root / n for n in VAL_DIR_NAMES if (root / n).is_dir()), root)
    spec = model_spec(weights, model)
    scan = scan_folder(split)
    mapping, matched_by = label_map(split, scan.classes, spec)
    samples = [(path, mapping[scan.classes[label]]) for path, label in scan.samples]
    dev = pick_device(device)
    net = spec.build().to(dev)
    size = image_size or spec.preprocessing.resolution
    if backend != "eager":
        from effnet.deploy.backends import with_backend

        if dev.type != "cpu":
            raise ValueError(f"--backend {backend} runs on the CPU; add --device cpu")
        net = with_backend(net, backend, size)
    ds = ImageFiles(samples, eval_transform(spec.preprocessing, resolution=size))
    loader = DataLoader(ds, batch_size=batch_size, num_workers=default_workers() if workers is None else workers,
                        collate_fn=collate_skip_bad)
    result = evaluate(net, loader, spec.num_classes, dev)
    result["skipped"] = [f"{p}: {r}" for p, r in scan.skipped] + result["skipped"]
    result["per_class"] = {c: result["per_class"][i] for c, i in mapping.items()}
    result.update(data=str(split), model=spec.config.name, weights=str(spec.weights), image_size=size,
                  classes_matched_by=matched_by, backend=backend)
    return result
