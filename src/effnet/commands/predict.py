"""`effnet predict IMAGE_OR_DIR... --weights lite0|FILE|RUN_DIR --top 5 [--json]`."""

from __future__ import annotations

import argparse
import json
import sys

from effnet.choices import BACKENDS, MAX_PIXELS


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
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    p.add_argument("--backend", choices=tuple(BACKENDS), default="eager",
                   help="how to run the model (default eager); which is fastest: docs/deploy.md")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from effnet.data.transforms import eval_transform
    from effnet.deploy.model_spec import model_spec
    from effnet.deploy.predict import classify_files

    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    if args.max_pixels < 1:
        raise ValueError(f"--max-pixels must be >= 1, got {args.max_pixels}")
    spec = model_spec(args.weights, args.model)
    from effnet.deploy.backends import with_backend

    model = with_backend(spec.build(), args.backend, spec.preprocessing.resolution)
    transform = eval_transform(spec.preprocessing)
    failed = 0
    for path, preds, error in classify_files(model, args.images, transform, args.top, spec.class_names,
                                             args.max_pixels):
        if error is not None:
            failed += 1
            print(f"effnet predict: error: {error}", file=sys.stderr)
            continue
        if args.json:
            top = [{"class": p.name, "index": p.index, "probability": round(p.probability, 6)} for p in preds]
            print(json.dumps({"image": str(path), "top": top}), flush=True)
        else:
            print(f"{path}: " + ", ".join(f"{p.name} ({p.probability:.1%})" for p in preds), flush=True)
    return 1 if failed else 0
