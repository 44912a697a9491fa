"""Top-1/top-5 accuracy, loss and per-class accuracy over a data loader (sharded across ranks)."""

from __future__ import annotations

import contextlib
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


def _weights_classes(weights: str) -> list[str] | None:
    """Class names saved by ``effnet train`` next to (or inside) its weights file."""
    import json
    from pathlib import Path

    path = Path(weights)
    if path.suffix == ".safetensors" and path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        if "classes" in meta:
            return json.loads(meta["classes"])
    sidecar = path.parent / "classes.json"
    return json.loads(sidecar.read_text()) if sidecar.is_file() else None


def eval_resolution(config: Any, weights: str | None) -> int:
    """The image size to evaluate at: a registry weight set's own (torchvision's B2-B7 V1 sets were
    trained for other sizes than the paper's), else the model config's."""
    from effnet.weights.registry import get_weight_set

    ws = get_weight_set(str(weights)) if weights else None
    return ws.preprocessing.resolution if ws is not None else config.resolution


def evaluate_folder(
    data: str, model: str, weights: str, batch_size: int = 64, workers: int | None = None, device: str = "auto",
    image_size: int | None = None,
) -> dict[str, Any]:
    """Top-1/top-5 of ``model`` + ``weights`` on ``data`` (its ``val/`` split, or the folder itself),
    with the preprocessing that belongs to the weights (:func:`effnet.data.transforms.eval_transform`)."""
    from pathlib import Path

    from torch.utils.data import DataLoader

    from effnet.arch.config import get_config
    from effnet.arch.model import create_model
    from effnet.data.transforms import eval_transform
    from effnet.training.data import VAL_DIR_NAMES, ImageFiles, collate_skip_bad, default_workers, scan_folder
    from effnet.training.distributed import pick_device

    root = Path(data)
    split = next((root / n for n in VAL_DIR_NAMES if (root / n).is_dir()), root)
    classes = _weights_classes(weights)
    scan = scan_folder(split, classes=classes)
    dev = pick_device(device)
    config = get_config(model)
    num_classes = len(classes) if classes else 1000
    net = create_model(config, num_classes=num_classes, weights=weights).to(dev).eval()
    size = image_size or eval_resolution(config, weights)
    ds = ImageFiles(scan.samples, eval_transform(weights, resolution=size))
    loader = DataLoader(ds, batch_size=batch_size, num_workers=default_workers() if workers is None else workers,
                        collate_fn=collate_skip_bad)
    result = evaluate(net, loader, net.num_classes, dev)
    result["skipped"] = [f"{p}: {r}" for p, r in scan.skipped] + result["skipped"]
    names = classes or [str(i) for i in range(net.num_classes)]
    present = {label for _, label in scan.samples}
    result["per_class"] = {names[i]: acc for i, acc in enumerate(result["per_class"]) if i in present}
    result.update(data=str(split), model=config.name, weights=str(weights), image_size=size)
    return result
