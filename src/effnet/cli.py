"""The ``effnet`` command line.

Each subcommand lives in its own module under :mod:`effnet.commands` and exposes
``register(subparsers)``; that function adds its parser and sets ``func`` to a handler
taking the parsed arguments and returning an exit code. Modules whose name starts with ``_``
are helpers (e.g. the shared argparse validators), not commands.

Whatever goes wrong reaches the user as ONE line on stderr (``effnet CMD: error: ...``), never a
traceback: bad arguments (exit 2), bad input or an unwritable place (exit 2; an ``OSError`` names
the path and the reason), Ctrl-C (exit 130). ``EFFNET_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import warnings
from typing import NoReturn

import effnet.commands

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that points at ``--help`` (not the whole usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="effnet", description="EfficientNet models: info, weights, training, export.")
    parser.add_argument("--version", action="version", version=f"effnet {effnet.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = [m for m in pkgutil.iter_modules(effnet.commands.__path__) if not m.name.startswith("_")]
    for info in sorted(modules, key=lambda m: m.name):
        module = importlib.import_module(f"effnet.commands.{info.name}")
        module.register(sub)
    return parser


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _os_error_text(exc: OSError) -> str:
    """``PATH: reason`` (lower case, as the C library says it: "no space left on device")."""
    reason = exc.strerror or str(exc)
    if isinstance(exc, FileExistsError) and os.path.exists(exc.filename) and not os.path.isdir(exc.filename):
        reason = "is a file, where a folder is needed"  # mkdir of an output folder whose name a file has
    if reason[1:2].islower():  # "No space left..." -> "no space left...", but keep "EFFNET_HOME ..."
        reason = reason[:1].lower() + reason[1:]
    if exc.filename is None:
        return reason
    path = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
    return f"{path}: {reason}"


def _format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    line: str | None = None) -> str:
    return f"effnet: warning: {_one_line(str(message))}\n"


def _error_text(exc: BaseException) -> str | None:
    """The one line for an error a user can cause, or None for a bug (which keeps its traceback)."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return _os_error_text(exc)
    if isinstance(exc, ValueError | OSError | KeyError | RuntimeError):
        return _one_line(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
    if type(exc).__name__ == "SafetensorError":  # a truncated or corrupt .safetensors file
        return f"not a readable safetensors file: {_one_line(exc)}"
    return None


def _quiet_broken_pipe() -> None:
    """`effnet info | head`: the reader left; stop without a traceback (and without a second error at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    formatwarning, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # a command may say more (train: the checkpoint and how to resume)
        print(f"effnet {args.command}: {_one_line(exc) if str(exc) else 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_broken_pipe()
        return 1
    except Exception as exc:
        text = _error_text(exc)
        if text is None or os.environ.get("EFFNET_DEBUG"):
            raise
        print(f"effnet {args.command}: error: {text}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        warnings.formatwarning = formatwarning  # main() called from Python leaves warnings as it found them


if __name__ == "__main__":
    sys.exit(main())
