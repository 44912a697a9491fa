"""`effnet predict IMAGE_OR_DIR... --model lite0 --weights lite0 --top 5 [--json]`."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("predict", help="classify images with pretrained weights (ImageNet classes)")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders of images")
    p.add_argument("--model", default=None, help="model name (default: the weight set's model, else lite0)")
    p.add_argument("--weights", default="lite0", help="registry tag (lite0, torchvision/b0, ...) or weight file")
    p.add_argument("--top", type=int, default=5, help="how many classes to show per image (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from effnet.arch.model import create_model
    from effnet.data.transforms import eval_transform
    from effnet.deploy.predict import classify_files
    from effnet.weights import get_weight_set

    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    ws = get_weight_set(args.weights)
    name = args.model or (ws.model if ws else None)
    if name is None:
        from effnet.weights import read_weights

        looks_like = read_weights(args.weights).looks_like
        if not looks_like:
            raise ValueError(f"cannot tell which model {args.weights} is for; pass --model NAME")
        name = looks_like[0]
    model = create_model(name, weights=args.weights).eval()
    transform = eval_transform(args.weights if ws or not args.model else model.config)
    failed = 0
    for path, preds, error in classify_files(model, args.images, transform, args.top):
        if error is not None:
            failed += 1
            print(f"effnet predict: error: {error}", file=sys.stderr)
            continue
        if args.json:
            top = [{"class": p.name, "index": p.index, "probability": round(p.probability, 6)} for p in preds]
            print(json.dumps({"image": str(path), "top": top}))
        else:
            print(f"{path}: " + ", ".join(f"{p.name} ({p.probability:.1%})" for p in preds))
    return 1 if failed else 0
