"""Labels of image folders and how predictions score against them: one home for both.

:func:`imagenet_wnid_labels` maps WordNet-id folders (``n01440764``, any subset of the 1000) to the
class indices of a 1000-way ImageNet classifier, the standard order, never the folder count;
:class:`TopKScore` accumulates top-1 / top-5 / loss / per-class hits batch by batch (``eval``,
``bench --accuracy``, the training loop's validation and the benchmarks all score with it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F


def few(names: Sequence[str], n: int = 3) -> str:
    """``a, b, c and 4 more``: a list short enough for a one-line message."""
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def imagenet_wnid_labels(folder: str | Path, class_folders: Iterable[str]) -> dict[str, int]:
    """WordNet-id folder name -> ImageNet-1k class index; any other folder name is refused in one line."""
    from effnet.data.imagenet import wnid_index

    index = wnid_index()
    names = list(class_folders)
    odd = [c for c in names if c not in index]
    if odd:
        raise ValueError(f"{folder}: class folder(s) {few(odd)} are not ImageNet-1k WordNet ids (n01440764 ...), "
                         "which 1000-class ImageNet weights need to map folders to classes")
    return {c: index[c] for c in names}


def topk_hits(logits: torch.Tensor, labels: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: whether the label is the top-1 class, and whether it is among the top ``k``."""
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return top[:, 0] == labels, (top == labels[:, None]).any(dim=1)


class TopKScore:
    """Top-1 / top-k accuracy, mean cross-entropy and per-class top-1, accumulated over batches.

    The counts live in float64 tensors on ``device`` (:meth:`counts`), so a distributed caller can
    sum them over ranks in place before asking for :meth:`result`.
    """

    def __init__(self, num_classes: int, k: int = 5, device: torch.device | str = "cpu") -> None:
        self.k = k
        self.totals = torch.zeros(3, dtype=torch.float64, device=device)  # top-1 hits, top-k hits, loss sum
        self.per_class = torch.zeros(2, num_classes, dtype=torch.float64, device=device)  # top-1 hits, images

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        logits = logits.float()
        labels = labels.to(logits.device)
        hit1, hitk = topk_hits(logits, labels, self.k)
        self.totals[0] += hit1.sum()
        self.totals[1] += hitk.sum()
        self.totals[2] += F.cross_entropy(logits, labels, reduction="sum").double()
        self.per_class[0].index_add_(0, labels, hit1.double())
        self.per_class[1].index_add_(0, labels, torch.ones_like(labels, dtype=torch.float64))

    def counts(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.totals, self.per_class

    @property
    def images(self) -> int:
        return int(self.per_class[1].sum().item())

    def result(self) -> dict[str, float | int | list[float]]:
        """``top1``, ``top5`` (percent), ``loss``, ``images`` and ``per_class`` top-1 (nan for a class never seen)."""
        total = self.images
        if total == 0:
            raise RuntimeError("no readable images to evaluate on; every file failed to load")
        hits1, hitsk, loss = self.totals.tolist()
        per_class = self.per_class.cpu()
        return {
            "top1": 100.0 * hits1 / total,
            "top5": 100.0 * hitsk / total,
            "loss": loss / total,
            "images": total,
            "per_class": [100.0 * c / n if n else float("nan")
                          for c, n in zip(per_class[0].tolist(), per_class[1].tolist())],
        }
