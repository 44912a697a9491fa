"""`effnet nas DATA`: search a baseline network in MnasNet's space (the paper's section 4), on Optuna."""

from __future__ import annotations

import argparse
from pathlib import Path

from effnet.commands.search import add_engine_options, add_training_options, settings_from_args

# --data demo: three one-epoch trials at 32 px on the digits: the mechanics in a few minutes on a CPU.
DEMO_TRIALS = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "nas",
        help="search a baseline architecture in MnasNet's space (kernel, expansion, SE, skip, width, layers)",
        description="Each trial trains one architecture briefly on DATA (optionally a subset, at a low resolution) "
        "and scores it ACC x (MACs/T)^w. The best is saved as a model config JSON that create_model, effnet "
        "train/info/scale/search accept. Rerunning the same command resumes; --storage/--study join a shared study.",
    )
    add_training_options(p, default_resolution="the base's; demo 32")
    p.add_argument("--trials", type=int, help="architectures to train (default 16; demo 3); more extends a study")
    p.add_argument("--space", metavar="FILE.json", help="search space overrides (keys: base, expand, kernel, se_ratio, "
                   "skip, width, layers)")
    p.add_argument("--target-macs", type=float, metavar="T", help="objective's MACs target (default: the base's at "
                   "the search resolution)")
    p.add_argument("--w", type=float, default=-0.07, help="objective exponent, <= 0 (default -0.07, the paper's)")
    p.add_argument("--save", metavar="CFG.json", help="where the best architecture goes (default OUT/best.json)")
    add_engine_options(p, default_study="nas")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from effnet.search.nas import run_nas
    from effnet.search.space import load_space
    from effnet.search.tables import nas_table

    space = load_space(args.space)
    if args.model is not None and args.model != space.base:
        raise ValueError(f"--model {args.model} and the space file's base {space.base} disagree: give one")
    args.model = space.base
    settings, out, demo = settings_from_args(args, "runs/nas")
    trials = args.trials if args.trials is not None else (DEMO_TRIALS if demo else 16)
    save = Path(args.save) if args.save else out / "best.json"
    if save.suffix != ".json":
        raise ValueError(f"--save needs a .json path (get_config recognises configs by it), got {save}")
    result = run_nas(settings, space, out, trials, w=args.w, target=args.target_macs, workers=args.workers,
                     storage=args.storage, study_name=args.study_name or "nas", heartbeat_s=args.heartbeat)
    print()
    print(nas_table(result.ranked))
    result.best_config.save(save)
    best = result.ranked[0]
    print(f"\nbest: trial {best['trial']}, objective {best['value']:.3f} (top-1 {best['top1']:.2f}%, "
          f"{best['macs'] / 1e6:.2f} MMACs vs T = {result.target / 1e6:.2f})")
    print(f"saved {save} (use: effnet train --model {save}; effnet scale --model {save}; effnet search --model {save})")
    print(f"plot: {result.plot_path}" + "".join(f"\n      {p}" for p in result.extra_plots))
    return 0
