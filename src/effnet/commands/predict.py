"""`effnet predict IMAGE_OR_DIR... --weights lite0|FILE|RUN_DIR --top 5 [--json] [--batch-size 32 --workers N]`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from effnet.choices import BACKENDS, MAX_PIXELS
from effnet.commands._args import nonnegative_int, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("predict", help="classify images with pretrained weights or a run of effnet train")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders of images")
    p.add_argument("--model", default=None,
                   help="model name (default: what the weights say: a run's model, the weight set's, else the "
                        "architecture the tensors fit)")
    p.add_argument("--weights", default="lite0",
                   help="registry tag (lite0, torchvision/b0, ...), weights file, or an effnet train run folder "
                        "(its classes, model and image size are used)")
    p.add_argument("--top", type=int, default=5, help="how many classes to show per image (default 5)")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                   help=f"skip images with more pixels than this, unread (decompression-bomb guard; default "
                        f"{MAX_PIXELS:,}, PIL's)")
    p.add_argument("--json", action="store_true", help="one JSON object per image and line (JSON Lines), streamed")
    p.add_argument("--backend", choices=tuple(BACKENDS), default="eager",
                   help="how to run the model (default eager); which is fastest: docs/deploy.md")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per model call (default 32)")
    p.add_argument("--workers", type=nonnegative_int, default=None,
                   help="image-decoding processes (default: up to 4, no more than the CPUs available; 0: none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from effnet.deploy.pipeline import load_classifier, predict_files, predict_inputs

    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    if args.max_pixels < 1:
        raise ValueError(f"--max-pixels must be >= 1, got {args.max_pixels}")
    classifier = load_classifier(args.model, args.weights, args.backend)
    items = predict_inputs(args.images)
    failed = 0
    # A bar only on a terminal (never in a log or a pipe); tqdm.write keeps the lines clear of it.
    with tqdm(total=len(items), unit="img", disable=not sys.stderr.isatty(), leave=False) as bar:
        write = tqdm.write if not bar.disable else print

        def out(line: str, file: Any) -> None:  # noqa: ANN401 - a text stream
            write(line, file=file)
            file.flush()  # streamed: a reader of the pipe sees each image's line as it is done
        for path, preds, error in predict_files(classifier, items, args.top, args.batch_size, args.workers,
                                                args.max_pixels):
            bar.update(1)
            if error is not None:
                failed += 1
                out(f"effnet predict: error: {error}", file=sys.stderr)
            elif args.json:
                top = [{"class": p.label, "index": p.index, "probability": round(p.score, 6)} for p in preds]
                out(json.dumps({"image": str(path), "top": top}), file=sys.stdout)
            else:
                out(f"{path}: " + ", ".join(f"{p.label} ({p.score:.1%})" for p in preds), file=sys.stdout)
    return 1 if failed else 0
