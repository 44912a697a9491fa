"""``effnet train DATA --model NAME``: the paper's recipe on an image folder or ``--data demo``."""

from __future__ import annotations

import argparse
from typing import Any

from effnet.choices import AMP_MODES, AUGMENTS, CHECKPOINT_MODES, HEAD_INITS, OPTIMIZERS, RECIPES, SCHEDULES


def register(subparsers: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    p = subparsers.add_parser("train", help="train or fine-tune on an image folder (train/CLASS/*.jpg, val/CLASS/*.jpg)",
                              description="Train from scratch with the paper's recipe, or fine-tune --weights with the "
                                          "fine-tune recipe (the first line says which and why); works under "
                                          "torchrun for many GPUs.")
    p.add_argument("data", nargs="?", default=None, help="image-folder root, or 'demo' for the built-in digits")
    p.add_argument("--data", dest="data_opt", default=None, help="same as DATA ('demo' for the built-in digits)")
    p.add_argument("--model", default="b0", help="model name (b0..b7, lite0..) or a config .json")
    p.add_argument("--weights", default=None, help="start from these pretrained weights (file or registry tag)")
    p.add_argument("--recipe", default=None, choices=RECIPES,
                   help="default: finetune with --weights, else paper (the paper's from-scratch ImageNet recipe); "
                        "flags given below override the recipe's values")
    p.add_argument("--freeze-backbone", action=argparse.BooleanOptionalAction, default=None,
                   help="train only the classifier; default: the recipe's (a fine-tune on few images keeps the "
                        "pretrained backbone and fits the head as effnet probe does; the recipe line says when)")
    p.add_argument("--head-init", default=None, choices=HEAD_INITS,
                   help="probe: fit the new classifier on frozen features first, as effnet probe does (LP-FT); "
                        "random: start it at zero; default: the recipe's (finetune: random, as LP-FT scored lower: docs/transfer.md; "
                        "probe with the backbone frozen on few images)")
    p.add_argument("--freeze-stages", type=int, default=0, help="keep the stem and the first N stages fixed")
    p.add_argument("--backbone-lr-scale", type=float, default=None,
                   help="backbone lr = --lr x this (the new classifier trains at --lr); default: the recipe's")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None,
                   help="global batch size (split over torchrun ranks); default 64, lower for a small fine-tune")
    p.add_argument("--image-size", type=int, default=None, help="default: the model's resolution")
    p.add_argument("--lr", type=float, default=None, help="default: the recipe's rate per 256 images of the batch")
    p.add_argument("--optimizer", default=None, choices=OPTIMIZERS)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--schedule", default=None, choices=SCHEDULES)
    p.add_argument("--warmup-epochs", type=float, default=None)
    p.add_argument("--warmup-steps", type=int, default=None, help="warm-up length in steps (replaces epochs)")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None, help="average the weights (EMA)")
    p.add_argument("--ema-decay", type=float, default=None)
    p.add_argument("--label-smoothing", type=float, default=None)
    p.add_argument("--augment", default=None, choices=AUGMENTS)
    p.add_argument("--crop-scale", type=_scale_range, default=None, metavar="MIN,MAX",
                   help="random-resized-crop area range (paper: 0.08,1; finetune: 0.5,1)")
    p.add_argument("--randaugment-magnitude", type=int, default=9)
    p.add_argument("--no-flip", dest="flip", action="store_false")
    p.add_argument("--dropout", type=float, default=None)
    p.add_argument("--drop-connect", type=float, default=None)
    p.add_argument("--bn-momentum", type=float, default=None)
    p.add_argument("--val-fraction", type=float, default=None, help="hold out this fraction when there is no val/")
    p.add_argument("--out", "--out-dir", dest="out_dir", default=None, help="run folder (default runs/MODEL-TIME)")
    p.add_argument("--resume", nargs="?", const=True, default=False, help="continue from the run folder's newest checkpoint (or this file)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (without it a non-empty --out is refused)")
    p.add_argument("--checkpoint-every", dest="checkpoint_every_steps", type=int, default=None, help="also every N steps")
    p.add_argument("--keep", dest="keep_checkpoints", type=int, default=3)
    p.add_argument("--workers", type=int, default=None,
                   help="data-loading processes (default: up to 4, no more than the CPUs available)")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", default="auto", choices=AMP_MODES)
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--grad-checkpointing", nargs="?", const="full", default=False, choices=CHECKPOINT_MODES,
                   help="recompute block activations in the backward pass: less memory, more time (default full)")
    p.add_argument("--checkpoint-stages", type=_stage_list, default=None, metavar="I,J,...",
                   help="checkpoint only these stages (0-6 for B0; 'early' = the high-resolution ones: most "
                        "of the memory for little recomputation)")
    p.add_argument("--sync-bn", action="store_true")
    p.add_argument("--freeze-bn", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=run)


def _scale_range(text: str) -> tuple[float, float]:
    low, high = (float(v) for v in text.split(","))
    if not 0 < low <= high <= 1:
        raise argparse.ArgumentTypeError(f"need 0 < MIN <= MAX <= 1, got {text}")
    return low, high


def _stage_list(text: str) -> tuple[int, ...] | str:
    return "early" if text == "early" else tuple(int(i) for i in text.split(","))


def run(args: argparse.Namespace) -> int:
    from effnet.training import TrainConfig, train

    data = args.data_opt or args.data
    if data is None:
        raise ValueError("give the data folder (effnet train DATA) or --data demo")
    keys = ["model", "weights", "recipe", "head_init", "freeze_backbone", "freeze_stages", "backbone_lr_scale",
            "warmup_steps", "crop_scale", "epochs", "max_steps", "batch_size", "image_size", "lr", "optimizer",
            "weight_decay", "schedule", "warmup_epochs", "ema", "ema_decay", "label_smoothing", "augment",
            "randaugment_magnitude", "flip", "dropout", "drop_connect", "bn_momentum", "val_fraction", "out_dir",
            "resume", "overwrite", "checkpoint_every_steps", "keep_checkpoints", "workers", "device", "amp", "channels_last",
            "compile", "grad_checkpointing", "checkpoint_stages", "sync_bn", "freeze_bn", "seed", "threads", "progress"]
    if args.workers is None:
        from effnet.data.folders import default_workers

        args.workers = default_workers()
    result = train(TrainConfig(data=data, **{k: getattr(args, k) for k in keys}))
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(f"final top-1 {result.final_top1:.2f}% (best {result.best_top1:.2f}%), {result.images_per_sec:.0f} img/s; "
              f"run folder {result.run_dir}; weights {result.weights_file}")
    return 0
