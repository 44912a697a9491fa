"""`effnet demo`: the main job on bundled real data and weights (what `make demo` runs)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="show the family, classify real photos, train on real digits")
    p.add_argument("--skip-train", action="store_true", help="skip the short training run")
    p.set_defaults(func=run)


def _section(title: str) -> None:
    print(f"\n== {title} ==\n")


def run(args: argparse.Namespace) -> int:
    from effnet.arch.summary import family_table, stages_text

    _section("The EfficientNet family (parameters for 1000 classes, GMACs at each model's resolution)")
    print(family_table())
    _section("The B0 baseline (paper Table 1)")
    print(stages_text("b0"))
    _section("Real photos classified with the real ImageNet EfficientNet-Lite0 weights (top 5)")
    from effnet.deploy.predict import classify_demo_photos

    classify_demo_photos("lite0", top=5)
    if not args.skip_train:
        _section("Training a small EfficientNet on scikit-learn's real handwritten digits")
        from effnet.training.demo import train_on_digits

        train_on_digits()
    return 0
