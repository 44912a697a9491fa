"""The dependency direction between effnet's sub-packages (docs/architecture.md draws it).

Layers, lowest first; a module may import modules of its own layer or lower, never higher:

0. ``effnet._version``, ``effnet.fileio``, ``effnet.choices`` (constants only: the names the command line offers),
   ``effnet.cpu`` (the CPU's features line)
1. ``effnet.arch``: the paper's architecture, the network and what counts or tabulates it
2. ``effnet.weights``: reads, converts and registers weights; knows state-dict names and shapes from the
   config, never the network
3. ``effnet.data``: preprocessing (resolves a weight tag to its preprocessing through ``weights``)
4. ``effnet.factory`` (``create_model``: weights read once, config, network, state) and ``effnet.backbone``
5. ``effnet.training``, ``effnet.search``, ``effnet.deploy``, ``effnet.bench``: what one does with a model
6. ``effnet.integrations``, ``effnet.commands``, ``effnet.cli`` and the package root

Imports inside functions count too, the module graph has no cycle, and no two sub-packages import each other
(even through different modules: a two-way pair is one idea with two homes).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
KNOWN_CYCLES: set[tuple[str, str]] = set()
SUBPACKAGES = ["_version", "fileio", "choices", "cpu", "arch", "weights", "data", "factory", "backbone", "training", "search", "deploy", "bench", "commands"]


def layer(module: str) -> int:
    parts = module.split(".")
    pkg = parts[1] if len(parts) > 1 else ""
    if pkg in ("fileio", "choices", "_version", "cpu"):
        return 0
    return {"arch": 1, "weights": 2, "data": 3, "factory": 4, "backbone": 4, "training": 5, "search": 5, "deploy": 5, "bench": 5}.get(pkg, 6)


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(SRC).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _imports(path: Path, name: str) -> set[str]:
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("effnet")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("effnet"):
                # ``from effnet.arch import fastpath`` imports the module effnet.arch.fastpath
                found |= {f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in node.names}
    return found


def _is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p, _module_name(p)) for p in sorted((SRC / "effnet").rglob("*.py"))}


def test_every_import_points_down_the_layers():
    wrong = sorted(f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})"
                   for src, dsts in _graph().items() for dst in dsts if layer(dst) > layer(src))
    assert not wrong, "\n".join(wrong)


def test_module_graph_has_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if (node, nxt) in KNOWN_CYCLES:
                continue
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt in graph and nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_two_subpackages_import_each_other():
    edges = {(_package(src), _package(dst)): f"{src} -> {dst}" for src, dsts in _graph().items() for dst in dsts
             if _package(src) != _package(dst)}
    pairs = sorted(f"{edges[a, b]} and {edges[b, a]}" for a, b in edges if a < b and (b, a) in edges)
    assert not pairs, "two-way pairs between sub-packages:\n" + "\n".join(pairs)


def test_the_named_cycles_are_gone():
    graph = _graph()
    weights = {m: d for m, d in graph.items() if m.startswith("effnet.weights")}
    assert not {d for deps in weights.values() for d in deps if d.startswith(("effnet.arch.model", "effnet.arch.layers",
                                                                              "effnet.data"))}
    data = {d for m, deps in graph.items() if m.startswith("effnet.data") for d in deps}
    assert not {d for d in data if d.startswith(("effnet.arch.model", "effnet.training", "effnet.deploy"))}


def test_each_subpackage_imports_alone_in_a_fresh_interpreter():
    """Each sub-package imports first in its own process: an import-order-dependent cycle fails here."""
    procs = {pkg: subprocess.Popen([sys.executable, "-c", f"import effnet.{pkg}"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for pkg in SUBPACKAGES}
    for pkg, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"import effnet.{pkg} failed:\n{err[-2000:]}"
