"""`effnet scale`: compound-scale a baseline by phi, or to a MACs / parameter / latency budget."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from effnet.arch.config import ModelConfig, get_config
from effnet.arch.scaling import ALPHA, BETA, GAMMA, flops_factor, scaled_config
from effnet.choices import BUDGET_UNITS, DEFAULT_PHI_MAX, DEFAULT_PRECISION, LATENCY_BACKENDS
from effnet.commands._args import finite_float, positive_float, positive_int

if TYPE_CHECKING:
    from effnet.search.budget import BudgetResult


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "scale",
        help="scale a baseline by phi, or find the largest phi that fits a MACs/params/latency budget",
        description="Compound scaling: depth alpha^phi, width beta^phi, resolution gamma^phi. Give --phi, or one "
        "budget (--target-macs, --target-params, --target-latency-ms) to find the largest phi that fits it.",
    )
    p.add_argument("--model", default="b0", help="baseline to scale: a model name or config .json (default b0)")
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument("--phi", type=finite_float, help="compound coefficient (any real from 0 to 12)")
    goal.add_argument("--target-macs", type=positive_float, metavar="N", help="multiply-add budget, e.g. 2e9")
    goal.add_argument("--target-params", type=positive_float, metavar="N", help="parameter budget, e.g. 10e6")
    goal.add_argument("--target-latency-ms", type=positive_float, metavar="MS", help="latency budget measured on this machine")
    p.add_argument("--alpha", type=finite_float, default=ALPHA, help="depth coefficient (default %(default)s)")
    p.add_argument("--beta", type=finite_float, default=BETA, help="width coefficient (default %(default)s)")
    p.add_argument("--gamma", type=finite_float, default=GAMMA, help="resolution coefficient (default %(default)s)")
    p.add_argument("--precision", type=positive_float, default=DEFAULT_PRECISION,
                   help="phi is searched on multiples of this step (default %(default)g)")
    p.add_argument("--phi-max", type=positive_float, default=DEFAULT_PHI_MAX, help="largest phi considered (default %(default)g)")
    p.add_argument("--batch", type=positive_int, default=1, help="batch size for --target-latency-ms (default 1)")
    p.add_argument("--backend", choices=LATENCY_BACKENDS, default="eager", help="how latency is measured (default eager)")
    p.add_argument("--threads", type=positive_int, help="torch threads while measuring latency (default: torch's)")
    p.add_argument("--save", metavar="CFG.json", help="write the configuration (accepted by create_model, train)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from effnet.arch.flops import model_cost
    from effnet.arch.summary import stages_text
    from effnet.search.budget import fit_budget

    base = get_config(args.model)
    coeffs = dict(alpha=args.alpha, beta=args.beta, gamma=args.gamma)
    if args.phi is not None:
        config = scaled_config(args.phi, base=base, **coeffs)
        params, macs = model_cost(config)
        print(f"phi {args.phi:g} on {base.name} (alpha {args.alpha:g}, beta {args.beta:g}, gamma {args.gamma:g}; "
              f"FLOPs x{flops_factor(**coeffs):.3f} per unit of phi)")
    else:
        metric, target = _budget(args)
        result = fit_budget(target, metric, base=base, precision=args.precision, phi_max=args.phi_max,
                            batch=args.batch, backend=args.backend, threads=args.threads, **coeffs)
        config, params, macs = result.config, result.params, result.macs
        print(budget_text(result, base.name))
        if metric == "latency_ms":
            threads = args.threads or torch.get_num_threads()
            print(f"  latency: median of a batch-{args.batch} forward pass, {args.backend}, {threads} thread(s), CPU")
    print(f"params {params:,} (1000 classes), MACs {macs:,} ({macs / 1e9:.3f} G) at {config.resolution}x"
          f"{config.resolution}")
    print()
    print(stages_text(config))
    if args.save:
        save_config(config, args.save)
        print(f"\nsaved {args.save} (use: effnet train --model {args.save}, create_model({args.save!r}))")
    return 0


def _budget(args: argparse.Namespace) -> tuple[str, float]:
    if args.target_macs is not None:
        return "macs", args.target_macs
    if args.target_params is not None:
        return "params", args.target_params
    return "latency_ms", args.target_latency_ms


def budget_text(result: BudgetResult, base_name: str) -> str:
    unit = BUDGET_UNITS[result.metric]
    lines = [
        f"largest phi fitting {result.target:g} {unit} on {base_name}: phi = {result.phi:g} "
        f"(searched on multiples of {result.precision:g}; {result.evaluations} models measured)",
        f"  phi {result.phi:g}: {result.value:,.6g} {unit} <= {result.target:g}",
    ]
    if result.capped:
        lines.append(f"  every phi up to --phi-max {result.phi:g} fits: the budget does not bind")
    else:
        lines.append(f"  next step phi {result.next_phi:g}: {result.next_value:,.6g} {unit} > {result.target:g}")
    return "\n".join(lines)


def save_config(config: ModelConfig, path: str) -> None:
    """Write the configuration (atomically, see ModelConfig.save) to a .json path."""
    target = Path(path)
    if target.suffix != ".json":
        raise ValueError(f"--save needs a .json path (get_config recognises configs by it), got {path}")
    config.save(target)
