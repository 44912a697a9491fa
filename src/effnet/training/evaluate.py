"""Top-1/top-5 accuracy, loss and per-class accuracy over a data loader (sharded across ranks).

Scoring is :class:`effnet.data.labels.TopKScore`'s; evaluating a folder with a set of weights
(``effnet eval``) is :func:`effnet.deploy.evaluate.evaluate_folder`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from effnet.data.labels import TopKScore
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
    score = TopKScore(num_classes, k=5, device=device)
    bad: list[str] = []
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
        score.update(logits, labels)
    for t in score.counts():
        all_reduce_sum(t, info)
    model.train(was_training)
    if score.images == 0:
        raise RuntimeError("no readable images to evaluate on; every file in the validation split failed to load")
    return {**score.result(), "skipped": bad}
