"""``effnet eval DATA --weights W``: top-1/top-5 with the weights' own model, classes, resolution and preprocessing."""

from __future__ import annotations

import argparse
import json
from typing import Any

from effnet.choices import BACKENDS


def register(subparsers: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    p = subparsers.add_parser("eval", help="top-1/top-5 accuracy of weights on an image folder")
    p.add_argument("data", help="image folder: DATA/val/CLASS/*.jpg or DATA/CLASS/*.jpg (CLASS: the weights' class "
                                "names, or ImageNet WordNet ids such as n01440764 for ImageNet weights)")
    p.add_argument("--model", default=None, help="model name or config .json (default: what the weights say)")
    p.add_argument("--weights", required=True, help="weights file, registry tag, or an effnet train run folder")
    p.add_argument("--batch-size", type=int, default=32, help="images per model call (default 32)")
    p.add_argument("--workers", type=int, default=None,
                   help="data-loading processes (default: up to 4, no more than the CPUs available)")
    p.add_argument("--device", default="auto")
    p.add_argument("--image-size", type=int, default=None, help="default: the size stored with the weights")
    p.add_argument("--per-class", action="store_true", help="also report accuracy per class")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--backend", choices=tuple(BACKENDS), default="eager",
                   help="how to run the model (default eager; others on the CPU); which is fastest: docs/deploy.md")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from effnet.deploy.evaluate import evaluate_folder

    result = evaluate_folder(args.data, args.model, args.weights, args.batch_size, args.workers, args.device,
                             args.image_size, backend=args.backend, progress=sys.stderr.isatty())
    if not args.per_class:
        result.pop("per_class")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['model']} + {result['weights']} on {result['data']} ({result['images']} images, "
          f"{result['image_size']}px, classes matched by {result['classes_matched_by']}): top-1 {result['top1']:.2f}%  "
          f"top-5 {result['top5']:.2f}%  loss {result['loss']:.4f}")
    for name, acc in result.get("per_class", {}).items():
        print(f"  {name:>20}: {acc:6.2f}%")
    if result["skipped"]:
        print(f"skipped {len(result['skipped'])} unreadable file(s):")
        for s in result["skipped"]:
            print(f"  {s}")
    return 0
