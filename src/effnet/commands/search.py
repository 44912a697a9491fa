"""`effnet search DATA`: grid-search alpha, beta, gamma (paper step 1), or run the single-vs-compound study.

Also the options every search command shares (DATA and its proxy subset, the training recipe, the engine)."""

from __future__ import annotations

import argparse
from pathlib import Path

from effnet.arch.scaling import ALPHA, BETA, GAMMA
from effnet.choices import AUGMENTS
from effnet.commands._args import positive_float

# --data demo shows the mechanics in a few minutes on a CPU: a half-width, half-depth B0 at 32 px, three
# short epochs per candidate (digits need about two before held-out accuracy leaves chance), a coarse grid,
# training options that suit digits (no flips, mild crops), BatchNorm statistics that keep up, and one
# thread (tiny models are overhead-bound; two OpenMP threads on a busy 2-core machine mostly wait on each other).
DEMO_PRESET = dict(resolution=32, width=0.5, depth=0.5, bn_momentum=0.1, epochs=3, step=0.2, lr=0.002,
                   optimizer="adamw", augment="none", flip=False, crop_scale=(0.7, 1.0), threads=1)


def add_training_options(p: argparse.ArgumentParser, default_resolution: str) -> None:
    """DATA, the proxy task and the training recipe: the options `effnet search` and `effnet nas` share."""
    p.add_argument("data", nargs="?", help="image folder (train/ and val/ or test/, or class folders); or --data demo")
    p.add_argument("--data", dest="data_opt", metavar="DATA", help="same as the positional DATA ('demo': digits)")
    p.add_argument("--out", default=None, help="results folder (default runs/COMMAND)")
    p.add_argument("--model", default=None, help="baseline: a model name or config .json (default b0)")
    p.add_argument("--resolution", type=int, help=f"training resolution (default: {default_resolution})")
    p.add_argument("--base-width", type=float, help="baseline width multiplier (default: the model's; demo 0.5)")
    p.add_argument("--base-depth", type=float, help="baseline depth multiplier (default: the model's; demo 0.5)")
    p.add_argument("--bn-momentum", type=float,
                   help="BatchNorm momentum, PyTorch convention (default: the model's 0.01; demo 0.1, for short runs)")
    p.add_argument("--epochs", type=int, help="training epochs per candidate (default 1; demo 3)")
    p.add_argument("--max-steps", type=int, help="stop each candidate after this many steps (default: none)")
    p.add_argument("--batch-size", type=int, help="batch size (default 32)")
    p.add_argument("--lr", type=float, help="learning rate (default: the engine's rule)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, help="held-out fraction when DATA has no val/ folder")
    p.add_argument("--train-subset", type=int, metavar="N", help="train on N images of DATA/train (class-balanced) "
                   "and score on --val-subset others held out of it: DATA's val/test split stays unseen")
    p.add_argument("--val-subset", type=int, default=1000, metavar="N", help="held-out images with --train-subset "
                   "(default 1000)")
    p.add_argument("--optimizer", help="training optimizer (default: the engine's; demo adamw)")
    p.add_argument("--augment", choices=AUGMENTS, help="augmentation (demo: none)")
    p.add_argument("--no-flip", action="store_true", help="no horizontal flips (always off for the demo digits)")
    p.add_argument("--crop-scale", type=float, metavar="MIN", help="random-resized-crop area range MIN..1 (default: "
                   "the engine's 0.08; demo 0.7)")
    p.add_argument("--threads", type=int, help="torch threads per worker (default: torch's; demo 1)")
    p.add_argument("--loader-workers", type=int, default=0, help="data-loading processes per worker (default 0)")


def add_engine_options(p: argparse.ArgumentParser, default_study: str) -> None:
    """The Optuna engine's options (see effnet.search.shared_study)."""
    p.add_argument("--workers", type=int, default=1, help="local worker processes sharing the study (default 1)")
    p.add_argument("--storage", metavar="URL", help="study storage: a database URL Optuna accepts (postgresql://..., "
                   "mysql://..., sqlite:///FILE) or journal:///PATH on a shared file system (default: OUT/study.db)")
    names = ["--study-name"] if default_study != "nas" else ["--study", "--study-name"]
    p.add_argument(*names, dest="study_name", metavar="NAME", help=f"study to create or join (default {default_study})")
    p.add_argument("--heartbeat", type=int, default=20, metavar="S", help="seconds between a running trial's "
                   "heartbeats; a trial silent for 2x this is retried (default 20)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search",
        help="grid-search compound-scaling coefficients on DATA, or run the single-vs-compound study",
        description="Paper step 1: train the baseline scaled by phi=1 for every (alpha, beta, gamma) >= 1 with "
        "alpha*beta^2*gamma^2 ~= FACTOR and rank them by held-out top-1, on an Optuna study (a grid sampler). "
        "Results are saved as they come; rerunning with the same options resumes.",
    )
    add_training_options(p, default_resolution="the model's; demo 32")
    p.add_argument("--factor", type=float, default=2.0, help="target alpha*beta^2*gamma^2 (default 2)")
    p.add_argument("--tolerance", type=float, default=0.05, help="relative tolerance on the factor (default 0.05)")
    p.add_argument("--step", type=positive_float, help="grid step of each coefficient (default 0.05; demo 0.2)")
    p.add_argument("--max-coefficient", type=float, default=2.0, help="largest alpha/beta/gamma tried (default 2)")
    p.add_argument("--max-candidates", type=int, help="train at most this many, evenly spread over the grid")
    p.add_argument("--family", type=int, metavar="N", help="then emit the family phi = 1..N of the winner")
    p.add_argument("--study", choices=["single-vs-compound"], help="run the paper's scaling study instead")
    p.add_argument("--levels", type=float, nargs="+", default=[1.0, 2.0], help="study: phi levels (default 1 2)")
    p.add_argument("--alpha", type=float, default=ALPHA, help="study: compound depth coefficient")
    p.add_argument("--beta", type=float, default=BETA, help="study: compound width coefficient")
    p.add_argument("--gamma", type=float, default=GAMMA, help="study: compound resolution coefficient")
    add_engine_options(p, default_study="search")
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace, default_out: str) -> tuple[object, Path, bool]:
    """(SearchSettings, results folder, demo?) from the shared options; the demo preset fills what is not given."""
    from effnet.search.grid import SearchSettings
    from effnet.search.proxy import proxy_data

    data = _data(args)
    demo = data == "demo"
    out = Path(args.out or default_out)
    preset = DEMO_PRESET if demo else {}
    options = dict(optimizer=args.optimizer or preset.get("optimizer"), augment=args.augment or preset.get("augment"),
                   threads=args.threads or preset.get("threads"))
    if args.no_flip or demo:
        options["flip"] = False
    if args.crop_scale is not None or demo:
        options["crop_scale"] = (args.crop_scale, 1.0) if args.crop_scale is not None else preset["crop_scale"]
    settings = SearchSettings(
        data=proxy_data(data, out, args.train_subset, args.val_subset, args.seed), model=args.model or "b0",
        resolution=args.resolution or preset.get("resolution"),
        width=args.base_width or preset.get("width"), depth=args.base_depth or preset.get("depth"),
        bn_momentum=args.bn_momentum or preset.get("bn_momentum"),
        epochs=args.epochs or preset.get("epochs", 1), max_steps=args.max_steps, batch_size=args.batch_size or 32,
        lr=args.lr or preset.get("lr"), seed=args.seed, val_fraction=args.val_fraction, workers=args.loader_workers,
        train_options={k: v for k, v in options.items() if v is not None},
    )
    if demo:
        print(f"--data demo preset (any option given overrides it): baseline {settings.model} at {settings.resolution}px,"
              f" width {settings.width:g}, depth {settings.depth:g}; {settings.epochs} epochs per candidate")
    return settings, out, demo


def run(args: argparse.Namespace) -> int:
    from effnet.search.grid import Coefficients, EngineOptions

    settings, out, demo = settings_from_args(args, "runs/study" if args.study else "runs/search")
    options = EngineOptions(storage=args.storage, study_name=args.study_name, workers=args.workers,
                            heartbeat_s=args.heartbeat)
    if args.study:
        from effnet.search.study import run_study
        from effnet.search.tables import study_table

        records, plot = run_study(settings, out, args.levels, Coefficients(args.alpha, args.beta, args.gamma),
                                  options=options)
        print()
        print(study_table(records))
        print(f"\nplot: {plot}")
        return 0
    return _search(args, settings, out, options, step=args.step or (DEMO_PRESET["step"] if demo else 0.05))


def _search(args: argparse.Namespace, settings: object, out: Path, options: object, step: float) -> int:
    from effnet.search.grid import coefficient_grid, family, run_search, save_family, spread
    from effnet.search.tables import scaled_family_table, search_table

    grid = coefficient_grid(args.factor, args.tolerance, step, args.max_coefficient)
    candidates = spread(grid, args.max_candidates)
    result = run_search(settings, out, candidates, options=options)
    print()
    print(search_table(result.ranked))
    best = result.best
    print(f"\nbest: alpha {best.alpha:g}, beta {best.beta:g}, gamma {best.gamma:g} "
          f"(alpha*beta^2*gamma^2 = {best.product:.3f})")
    print(f"plot: {result.plot_path}\nstudy: {result.storage}")
    if args.family:
        rows = family(best, settings.base_config(), range(1, args.family + 1))
        paths = save_family(rows, out / "family")
        print(f"\nfamily phi = 1..{args.family} from the best coefficients (configs in {paths[0].parent}):")
        print(scaled_family_table(rows))
    return 0


def _data(args: argparse.Namespace) -> str:
    if args.data and args.data_opt and args.data != args.data_opt:
        raise ValueError(f"DATA given twice ({args.data!r} and --data {args.data_opt!r}): give it once")
    data = args.data or args.data_opt
    if not data:
        raise ValueError("no data: give an image folder as DATA, or --data demo for the built-in digits")
    return data
