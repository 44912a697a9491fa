"""``effnet bench``: effnet against torchvision / timm, measured side by side in one run."""

from __future__ import annotations

import argparse
import json
import math
import sys

from effnet.choices import BENCH_BACKENDS
from effnet.commands._args import nonnegative_int, positive_int


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _finite(value: object) -> object:
    """``value`` with NaN/inf numbers as null: JSON has no NaN, and a reader must not choke on one."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="throughput, latency and memory of effnet vs torchvision/timm",
        description="Builds every implementation x backend, warms each up, then times them in interleaved "
        "rounds and prints images/s, batch-1 latency p50/p90, peak memory (RSS high-water growth), the "
        "fraction of the measured matmul peak, and effnet/reference ratios.",
    )
    p.add_argument("--model", default="b0")
    p.add_argument("--batch", type=positive_int, default=32)
    p.add_argument("--mode", choices=("infer", "train"), default="infer")
    p.add_argument("--backend", type=_csv, default=("eager",),
                   help="comma list; " + "; ".join(f"{mode}: {','.join(names)}" for mode, names in BENCH_BACKENDS.items()))
    p.add_argument("--compare", type=_csv, default=("torchvision",), help="comma list of torchvision,timm (or 'none')")
    p.add_argument("--resolution", type=positive_int, default=None)
    p.add_argument("--rounds", type=positive_int, default=3, help="interleaved measuring rounds (default 3)")
    p.add_argument("--iters", type=positive_int, default=3, help="timed batches per round (default 3)")
    p.add_argument("--latency-iters", type=positive_int, default=10, help="timed batch-1 calls per round (default 10)")
    p.add_argument("--warmup", type=nonnegative_int, default=2)
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--no-latency", action="store_true", help="skip the batch-1 latency measurement")
    p.add_argument("--memory-in-process", action="store_true",
                   help="measure peak memory in the benchmark's own process (faster; depends on candidate order)")
    p.add_argument("--accuracy", default=None, metavar="DATA",
                   help="also score every effnet path (top-1/top-5, top-1 agreement with fp32) on DATA: folders of "
                        "ImageNet WordNet ids (n01440764/*.JPEG); needs real weights (--weights, default the model's tag)")
    p.add_argument("--weights", default=None, help="effnet's weights, registry tag or file (default: random)")
    p.add_argument("--calibration", type=nonnegative_int, default=100,
                   help="with --accuracy: images of DATA that calibrate int8 instead of being scored (default 100)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--markdown", action="store_true", help="print a markdown table (the default output)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from effnet.bench.harness import BenchConfig, run_bench
    from effnet.bench.markdown import accuracy_table, markdown_table, peer_table

    compare = () if args.compare == ("none",) else args.compare
    cfg = BenchConfig(
        model=args.model, batch=args.batch, mode=args.mode, backends=args.backend, compare=compare,
        resolution=args.resolution, rounds=args.rounds, iters=args.iters, latency_iters=args.latency_iters,
        warmup=args.warmup, threads=args.threads, latency=not args.no_latency and args.mode == "infer",
        isolate_memory=not args.memory_in_process, accuracy=args.accuracy, weights=args.weights,
        calibration=args.calibration,
    )
    quiet = args.json
    result = run_bench(cfg, log=(lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr)))
    if args.json:
        print(json.dumps(_finite(result.to_dict()), indent=2, allow_nan=False))
    if args.markdown or not args.json:
        print(markdown_table(result))
        if peer_table(result):
            print("\n" + peer_table(result))
        if cfg.accuracy:
            print("\n" + accuracy_table(result))
    return 0
