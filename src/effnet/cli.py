"""The ``effnet`` command line.

Each subcommand lives in its own module under :mod:`effnet.commands` and exposes
``register(subparsers)``; that function adds its parser and sets ``func`` to a handler
taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import effnet.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="effnet", description="EfficientNet models: info, weights, training, export.")
    parser.add_argument("--version", action="version", version=f"effnet {effnet.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(effnet.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"effnet.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as exc:
        # Bad input is reported in one line; a bug still shows its traceback with EFFNET_DEBUG=1.
        import os

        if os.environ.get("EFFNET_DEBUG"):
            raise
        print(f"effnet {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
