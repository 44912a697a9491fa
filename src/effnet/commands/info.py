"""`effnet info`: the family table, or one model's scaled stage table."""

from __future__ import annotations

import argparse

from effnet.arch.config import get_config
from effnet.arch.scaling import ALPHA, BETA, GAMMA, scaled_config
from effnet.commands._args import finite_float


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="print the model family or one model's stage table")
    p.add_argument("model", nargs="?", help="a model name (b0..b7, b8, l2, lite0..lite4) or a config .json")
    p.add_argument("--stages", action="store_true", help="print the scaled stage table (paper Table 1)")
    p.add_argument("--phi", type=finite_float, help="compound-scale B0 (or MODEL) by this coefficient (0 to 12)")
    p.add_argument("--alpha", type=finite_float, default=ALPHA, help="depth coefficient (default %(default)s)")
    p.add_argument("--beta", type=finite_float, default=BETA, help="width coefficient (default %(default)s)")
    p.add_argument("--gamma", type=finite_float, default=GAMMA, help="resolution coefficient (default %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from effnet.arch.summary import SUMMARY_HEADERS, family_table, format_table, stages_text, summary_row

    if args.model is None and args.phi is None:
        print(family_table())
        return 0
    config = get_config(args.model or "b0")
    if args.phi is not None:
        config = scaled_config(args.phi, args.alpha, args.beta, args.gamma, base=config)
    print(format_table(SUMMARY_HEADERS, [summary_row(config)]))
    if args.stages or args.phi is not None:
        print()
        print(stages_text(config))
    return 0
