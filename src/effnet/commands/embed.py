"""``effnet embed IMAGES_OR_DIR --out feats.npz`` (pooled features) and ``effnet probe DATA`` (linear probe)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from effnet.choices import BACKENDS
from effnet.commands._args import nonnegative_int


def register(subparsers: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    p = subparsers.add_parser("embed", help="pooled features of images, with their file names, as an .npz")
    p.add_argument("images", nargs="+", metavar="IMAGES_OR_DIR", help="image files or folders (searched recursively)")
    _model_args(p)
    p.add_argument("--out", required=True, help="output .npz: features (N, C) float32 and files (N,)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=run_embed)

    q = subparsers.add_parser("probe", help="linear probe: how far pretrained features go on DATA, in seconds",
                              description="Embed train/ and val/ once, fit a linear head on the features "
                                          "(full-batch L-BFGS) and print val top-1.")
    q.add_argument("data", help="image-folder root with train/CLASS/* and val/CLASS/*")
    _model_args(q)
    q.add_argument("--weight-decay", type=float, default=1e-3, help="L2 on the head (standardised features)")
    q.add_argument("--val-fraction", type=float, default=None, help="hold out this fraction when there is no val/")
    q.set_defaults(func=run_probe)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model name (default: the weight set's model)")
    p.add_argument("--weights", default="lite0", help="registry tag or weight file (default lite0)")
    p.add_argument("--image-size", type=int, default=None, help="default: the weight set's resolution")
    p.add_argument("--batch-size", type=int, default=32, help="images per model call (default 32)")
    p.add_argument("--workers", type=nonnegative_int, default=None,
                   help="image-decoding processes (default: up to 4, no more than the CPUs available; 0: none)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--backend", choices=tuple(BACKENDS), default="eager",
                   help="how to run the backbone (default eager), as for predict; which is fastest: docs/deploy.md")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (there is none unless stderr is a terminal)")


def _resolve_model(args: argparse.Namespace) -> str:
    from effnet.weights import get_weight_set, read_weights

    if args.model:
        return args.model
    ws = get_weight_set(args.weights)
    if ws is not None:
        return ws.model
    looks_like = read_weights(args.weights).looks_like
    if not looks_like:
        raise ValueError(f"cannot tell which model {args.weights} is for; pass --model NAME")
    return looks_like[0]


def _setup(args: argparse.Namespace) -> str:
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.image_size is not None and args.image_size < 32:
        raise ValueError(f"--image-size must be at least 32, got {args.image_size}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    args.progress = args.progress and sys.stderr.isatty()  # a bar on a terminal, never in a log
    return _resolve_model(args)


def run_embed(args: argparse.Namespace) -> int:
    from pathlib import Path

    from effnet.deploy.embed import embed_files, save_embeddings

    out = Path(args.out)
    if out.suffix != ".npz":
        raise ValueError(f"--out must end in .npz, got {out}")
    if out.exists() and not args.overwrite:  # checked before the slow part, and again when writing
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it or choose another --out")
    missing = next((p for p in args.images if not Path(p).exists()), None)
    if missing is not None:
        raise FileNotFoundError(f"{missing}: no such file or folder")
    emb = embed_files(args.images, _setup(args), args.weights, args.image_size, args.batch_size, args.progress,
                      args.workers, args.backend)
    if not emb.files:
        raise ValueError(f"no readable images among {len(emb.skipped)} file(s) (first: {emb.skipped[0]}); "
                         "nothing written")
    for line in emb.skipped:
        print(f"effnet embed: skipped {line}", file=sys.stderr)
    save_embeddings(emb, out, args.overwrite)
    print(f"{len(emb.files)} images -> {out} (features {emb.features.shape[0]}x{emb.features.shape[1]})"
          + (f"; skipped {len(emb.skipped)} unreadable" if emb.skipped else ""))
    return 1 if emb.skipped else 0


def run_probe(args: argparse.Namespace) -> int:
    from effnet.deploy.embed import linear_probe

    r = linear_probe(args.data, _setup(args), args.weights, args.image_size, args.batch_size, args.weight_decay,
                     args.val_fraction, args.progress, args.workers, args.backend)
    for line in r.skipped:
        print(f"effnet probe: skipped {line}", file=sys.stderr)
    print(f"linear probe: val top-1 {r.top1:.2f}% (train {r.train_top1:.2f}%) on {len(r.classes)} classes, "
          f"{r.n_train} train / {r.n_val} val images; features {r.embed_seconds:.1f} s, head fit {r.fit_seconds:.1f} s")
    return 0
