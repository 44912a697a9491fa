"""`effnet predict IMAGE_OR_DIR... --weights lite0|FILE|RUN_DIR --top 5 [--json]`."""

from __future__ import annotations

import argparse
import json
import sys

from effnet.deploy.backends import BACKENDS
from effnet.deploy.predict import MAX_PIXELS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("predict", help="classify images with pretrained weights or a run of effnet train")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR",
                   help="image files or folders of images; first an .onnx or .pte file of effnet export to run it")
    p.add_argument("--model", default=None,
                   help="model name (default: what the weights say: a run's model, the weight set's, else the "
                        "architecture the tensors fit)")
    p.add_argument("--weights", default=None,
                   help="registry tag (lite0, torchvision/b0, ...), weights file, an effnet train run folder "
                        "(its classes, model and image size are used) or an .onnx/.pte of effnet export "
                        "(default lite0)")
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
    from effnet.deploy.artifacts import is_artifact

    if args.weights is None and len(args.images) > 1 and is_artifact(args.images[0]):  # effnet predict m.onnx x.jpg
        args.weights, args.images = args.images[0], args.images[1:]
    spec = model_spec(args.weights or "lite0", args.model)
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
