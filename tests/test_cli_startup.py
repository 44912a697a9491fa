"""The command line answers at once: building the parser imports no torch (issue 18, point 5).

Each check runs in a fresh interpreter and reads ``sys.modules`` after the parser is built and
``--help`` printed, so an import anywhere under a command's ``register`` shows up here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import effnet
from effnet.cli import build_parser

HEAVY = ("torch", "sklearn", "torchvision", "numpy", "PIL", "onnxruntime", "optuna", "timm")

# Print the help of the named command (or the top level), then which heavy modules got imported.
PROBE = """
import contextlib, io, json, sys
from effnet.cli import main
args = sys.argv[2:]
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        main([*args, "--help"])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "help": out.getvalue(), "heavy": sorted(m for m in sys.argv[1].split(",") if m in sys.modules)}))
"""


def _commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)


def _probe(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, ",".join(HEAVY), *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.mark.parametrize("command", [None, *_commands()])
def test_help_imports_no_torch(command):
    result = _probe(*([command] if command else []))
    assert result["code"] == 0
    assert "usage: effnet" in result["help"]
    assert result["heavy"] == [], f"effnet {command or ''} --help imported {result['heavy']}"


def test_import_effnet_is_lazy_and_public_names_resolve():
    code = ("import sys, effnet; lazy = 'torch' not in sys.modules; "
            "import effnet as e; names = [n for n in e.__all__ if getattr(e, n, None) is None]; "
            "print(lazy, names, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "[]", "True"], out.stderr[-2000:]


def test_info_imports_no_torch():
    """`effnet info` counts parameters and MACs from the block table (effnet.arch.cost), without torch."""
    code = ("import contextlib, io, sys; from effnet.cli import main; out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out): main(['info']); main(['info', 'b3', '--stages'])\n"
            "print('torch' in sys.modules, '12,233,232' in out.getvalue())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "True"], out.stderr[-2000:]


def test_version():
    out = subprocess.run([sys.executable, "-m", "effnet", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    assert out.stdout.strip() == f"effnet {effnet.__version__}"


def test_unknown_public_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        effnet.not_a_name  # noqa: B018 - the attribute access is the test
