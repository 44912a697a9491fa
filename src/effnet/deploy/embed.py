"""Pooled features of images (embeddings) and a linear probe fitted on them.

A linear probe answers "how far do the pretrained features go on my data" in seconds: every image
goes through the backbone once, then a softmax-regression head is fitted on the cached features
(full-batch L-BFGS on standardised features), and its top-1 is measured on the val split.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass
class Embeddings:
    features: np.ndarray  # (N, C) float32, in the order of ``files``
    files: list[str]  # the readable images, in input order
    skipped: list[str] = field(default_factory=list)  # "path: reason" for each unreadable file
    labels: np.ndarray | None = None  # class indices, when the images came from class folders


def feature_model(model: str, weights: str | None, backend: str = "eager",
                  image_size: int | None = None) -> tuple[torch.nn.Module, Any]:  # noqa: ANN401
    """The backbone with pooled-feature output (no classifier), in eval mode, on ``backend`` (one of
    :data:`effnet.deploy.backends.BACKENDS`, as for predict), and its weight source."""
    from effnet.data.transforms import preprocessing_for
    from effnet.deploy.backends import with_backend
    from effnet.factory import create_model

    net = create_model(model, weights=weights, num_classes=0).eval()
    source = weights if weights else net.config
    if backend != "eager":  # exported at the size the images are preprocessed to
        size = image_size or preprocessing_for(source).resolution
        net = with_backend(net, backend, size)
    return net, source


def embed_samples(net: torch.nn.Module, samples: list[tuple[str, int]], transform: Any, batch_size: int = 32,  # noqa: ANN401
                  progress: bool = True, desc: str = "embedding", workers: int | None = None) -> Embeddings:
    """Features of ``(path, label)`` samples, batched, decoded by ``workers`` processes
    (:func:`effnet.deploy.pipeline.image_batches`); unreadable files are skipped and named."""
    from tqdm.auto import tqdm

    from effnet.deploy.pipeline import image_batches

    chunks, positions, skipped = [], [], []
    with torch.inference_mode(), tqdm(total=len(samples), desc=desc, unit="img", disable=not progress) as bar:
        for batch in image_batches([path for path, _ in samples], transform, batch_size, workers):
            skipped += [error for _, error in batch.failed]
            if batch.images is not None:
                chunks.append(net(batch.images).float().numpy())
                positions += batch.positions
            bar.update(len(batch.positions) + len(batch.failed))
    dim = getattr(net, "num_features", 0)
    features = np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)
    return Embeddings(features, [samples[i][0] for i in positions], skipped,
                      np.asarray([samples[i][1] for i in positions], dtype=np.int64))


def embed_files(paths: Iterable[str | Path], model: str, weights: str | None, image_size: int | None = None,
                batch_size: int = 32, progress: bool = True, workers: int | None = None,
                backend: str = "eager") -> Embeddings:
    """Pooled features of image files and folders (searched recursively, sorted), in that order."""
    from effnet.data.folders import image_files
    from effnet.data.transforms import eval_transform

    files = image_files(paths)
    if not files:
        raise FileNotFoundError(f"no image files found in {', '.join(map(str, paths))}")
    net, source = feature_model(model, weights, backend, image_size)
    result = embed_samples(net, [(str(f), -1) for f in files], eval_transform(source, resolution=image_size),
                           batch_size, progress, workers=workers)
    result.labels = None
    return result


def save_embeddings(emb: Embeddings, out: str | Path, overwrite: bool = False) -> Path:
    """``features`` (N, C) float32 and ``files`` (N,) as an .npz, written atomically; refuses to replace a file."""
    from effnet.fileio import atomic_path

    out = Path(out)
    if out.suffix != ".npz":
        raise ValueError(f"--out must end in .npz (numpy's archive), got {out}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it or choose another --out")
    arrays = {"features": emb.features.astype(np.float32), "files": np.asarray(emb.files, dtype=str)}
    if emb.labels is not None:
        arrays["labels"] = emb.labels
    with atomic_path(out, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return out


# --- linear probe ------------------------------------------------------------------------------------------

@dataclass
class ProbeResult:
    top1: float
    train_top1: float
    train_loss: float
    n_train: int
    n_val: int
    embed_seconds: float
    fit_seconds: float
    classes: list[str]
    skipped: list[str]


def fit_linear_head(features: np.ndarray, labels: np.ndarray, num_classes: int, weight_decay: float = 1e-3,
                    max_iter: int = 200, label_smoothing: float = 0.0) -> tuple[torch.nn.Linear, float]:
    """Softmax regression on standardised features by full-batch L-BFGS (deterministic, seconds).

    The standardisation is folded into the returned layer, so it applies to raw features.
    ``label_smoothing`` fits the loss a fine-tune then continues with (LP-FT: the head starts at its optimum).
    """
    x = torch.from_numpy(features).double()
    y = torch.from_numpy(labels).long()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    # skip_init: no draw from the global RNG (the weights are set below), so a probe run inside other
    # code (LP-FT, a benchmark) leaves that code's later random draws as they were.
    head = torch.nn.utils.skip_init(torch.nn.Linear, x.shape[1], num_classes, dtype=torch.float64)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.LBFGS(head.parameters(), lr=1, max_iter=max_iter, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (torch.nn.functional.cross_entropy(head(z), y, label_smoothing=label_smoothing)
                + 0.5 * weight_decay * head.weight.square().sum())
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        loss = float(torch.nn.functional.cross_entropy(head(z), y))
        folded = torch.nn.utils.skip_init(torch.nn.Linear, x.shape[1], num_classes)
        folded.weight.copy_(head.weight / std)
        folded.bias.copy_(head.bias - (head.weight * mean / std).sum(1))
    return folded, loss


def linear_probe(data: str | Path, model: str, weights: str | None, image_size: int | None = None,
                 batch_size: int = 32, weight_decay: float = 1e-3, val_fraction: float | None = None,
                 progress: bool = True, workers: int | None = None, backend: str = "eager") -> ProbeResult:
    """Embed ``data``'s train and val splits once, fit a linear head, report val top-1 (%)."""
    from effnet.data.folders import find_splits
    from effnet.data.transforms import eval_transform

    splits = find_splits(data, val_fraction)
    net, source = feature_model(model, weights, backend, image_size)
    transform = eval_transform(source, resolution=image_size)
    t0 = time.perf_counter()
    train = embed_samples(net, splits.train, transform, batch_size, progress, "embedding train", workers)
    val = embed_samples(net, splits.val, transform, batch_size, progress, "embedding val", workers)
    if len(train.files) == 0 or len(val.files) == 0:
        raise ValueError(f"{data}: no readable images in the train or val split")
    t1 = time.perf_counter()
    head, loss = fit_linear_head(train.features, train.labels, len(splits.classes), weight_decay)
    fit_seconds = time.perf_counter() - t1

    def top1(emb: Embeddings) -> float:
        with torch.no_grad():
            pred = head(torch.from_numpy(emb.features)).argmax(1).numpy()
        return 100.0 * float((pred == emb.labels).mean())

    skipped = [f"{p}: {r}" for p, r in splits.skipped] + train.skipped + val.skipped
    return ProbeResult(top1(val), top1(train), loss, len(train.files), len(val.files), t1 - t0, fit_seconds,
                       splits.classes, skipped)
