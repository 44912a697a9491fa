"""No-regression check for a refactor: eager eval b32 / b1 and a training step of one model, two source trees side by side.

One worker process per tree, started with ``PYTHONPATH=TREE/src`` so each imports its own ``effnet``,
builds the same seeded model and waits for commands. This process then runs ``--rounds`` rounds,
each timing every measurement once in both workers, in alternating order (A B, B A, ...): the two
trees are measured seconds apart, so the drifting load of a shared machine falls on both alike.
Prints the CPU features line, images/s of both trees (median over rounds) and the ratio after/before
(median of the rounds' paired ratios) for:

- eval b32 and eval b1 (8 calls per round): ``model.eval()`` under ``torch.inference_mode()`` (as ``effnet bench``);
- train b32: ``model.train()``, forward, cross-entropy, backward, SGD step (a second model instance,
  random images and labels);
- with ``--onnx``: each tree exports the model (same seed, so same weights) to ONNX once, and this process
  times both files in ONNX Runtime, alternating, at b32 and b1 (what the export's graph costs).

Random weights (no download); 1 thread by default. Tree A, "before", is typically a checkout of the
starting commit::

    git worktree add --detach /tmp/base main
    python benchmarks/refactor_regression.py --before /tmp/base [--after .] [--rounds 10] [--onnx]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from effnet.cpu import features_line

#: Runs in each worker: reads a measurement name per line, answers the seconds it took.
WORKER = r"""
import sys, time
import torch
import torch.nn.functional as F
from effnet import create_model

model_name, size, train_size, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
torch.manual_seed(0)
evaluated = create_model(model_name, num_classes=1000).eval()
torch.manual_seed(0)
trained = create_model(model_name, num_classes=1000).train()
opt = torch.optim.SGD(trained.parameters(), lr=1e-3, momentum=0.9)
xb, x1 = torch.randn(batch, 3, size, size), torch.randn(1, 3, size, size)
xt, yt = torch.randn(batch, 3, train_size, train_size), torch.randint(0, 1000, (batch,))

def eval_batch():
    with torch.inference_mode():
        evaluated(xb)

def eval_b1():
    with torch.inference_mode():
        for _ in range(8):
            evaluated(x1)

def train_step():
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(trained(xt), yt).backward()
    opt.step()

steps = {"eval_batch": eval_batch, "eval_b1": eval_b1, "train": train_step}
print("ready", flush=True)
for line in sys.stdin:
    start = time.perf_counter()
    steps[line.strip()]()
    print(time.perf_counter() - start, flush=True)
"""

#: Runs in the subprocess: the tree's own ONNX export of the same seeded model.
EXPORT = r"""
import sys, torch
from effnet import create_model
from effnet.deploy.export import export_onnx
torch.manual_seed(0)
export_onnx(create_model(sys.argv[1], num_classes=1000).eval(), sys.argv[2], input_size=int(sys.argv[3]), check=False)
"""


class Worker:
    """One tree's worker process; :meth:`time` runs one measurement in it."""

    def __init__(self, tree: Path, args: argparse.Namespace) -> None:
        env = dict(os.environ, PYTHONPATH=str(tree / "src"), OMP_NUM_THREADS=str(args.threads))
        self.tree = tree
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, args.model, str(args.size), str(args.train_size), str(args.batch),
             str(args.threads)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._answer()

    def _answer(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"the worker for {self.tree} exited (code {self.proc.wait()}); its error is above")
        return line.strip()

    def time(self, step: str) -> float:
        self.proc.stdin.write(step + "\n")
        self.proc.stdin.flush()
        return float(self._answer())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def onnx_rows(trees: dict[str, Path], args: argparse.Namespace, folder: Path) -> list[tuple[str, float, float, float]]:
    """Both trees' ONNX exports timed in ONNX Runtime in this process, in alternated rounds."""
    import numpy as np

    from effnet.deploy.export import onnx_session

    sessions = {}
    for side, tree in trees.items():
        path = folder / f"{side}.onnx"
        env = dict(os.environ, PYTHONPATH=str(tree / "src"), OMP_NUM_THREADS=str(args.threads))
        done = subprocess.run([sys.executable, "-c", EXPORT, args.model, str(path), str(args.size)],
                              env=env, capture_output=True, text=True, timeout=args.timeout)
        if done.returncode != 0:
            sys.exit(f"exporting {tree} to ONNX failed: {done.stderr.strip()[-800:]}")
        sessions[side] = onnx_session(path, threads=args.threads)
    rng = np.random.default_rng(0)
    shapes = {f"onnxruntime_b{args.batch}": (args.batch, 1), "onnxruntime_b1": (1, 8)}  # (batch, calls per round)
    inputs = {label: rng.standard_normal((b, 3, args.size, args.size), dtype=np.float32) for label, (b, _) in shapes.items()}

    def timed(side: str, label: str) -> float:
        start = time.perf_counter()
        for _ in range(shapes[label][1]):
            sessions[side].run(None, {"images": inputs[label]})
        return time.perf_counter() - start

    times: dict[str, dict[str, list[float]]] = {side: {label: [] for label in shapes} for side in trees}
    for side in trees:
        for label in shapes:
            timed(side, label)  # warm-up
    for i in range(args.rounds):
        for side in (("before", "after") if i % 2 == 0 else ("after", "before")):
            for label in shapes:
                times[side][label].append(timed(side, label))
    rows = []
    for label, (b, calls) in shapes.items():
        before, after = (statistics.median(times[side][label]) for side in ("before", "after"))
        paired = statistics.median(x / y for x, y in zip(times["before"][label], times["after"][label], strict=True))
        rows.append((label, b * calls / before, b * calls / after, paired))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, required=True, help="source tree A (a checkout of the starting commit)")
    p.add_argument("--after", type=Path, default=Path(__file__).resolve().parents[1], help="source tree B (default: this one)")
    p.add_argument("--model", default="b0")
    p.add_argument("--size", type=int, default=224, help="eval image size")
    p.add_argument("--train-size", type=int, default=224, help="training image size")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rounds", type=int, default=10, help="alternated rounds (each times every measurement once per tree)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--timeout", type=float, default=1800, help="hang guard per run, seconds")
    p.add_argument("--onnx", action="store_true", help="also time each tree's ONNX export in ONNX Runtime")
    args = p.parse_args()
    for tree in (args.before, args.after):
        if not (tree / "src" / "effnet").is_dir():
            sys.exit(f"{tree} has no src/effnet: give the root of an effnet checkout")
    steps = {"eval_batch": (f"eval_b{args.batch}", args.batch), "eval_b1": ("eval_b1", 8),
             "train": (f"train_b{args.batch}_{args.train_size}px", args.batch)}
    workers = {side: Worker(getattr(args, side), args) for side in ("before", "after")}
    times: dict[str, dict[str, list[float]]] = {side: {step: [] for step in steps} for side in workers}
    try:
        for side in workers:  # warm-up: first calls, fold caches, allocator
            for step in steps:
                workers[side].time(step)
        for i in range(args.rounds):
            for side in (("before", "after") if i % 2 == 0 else ("after", "before")):
                for step in steps:
                    times[side][step].append(workers[side].time(step))
            print(f"round {i + 1}/{args.rounds}: " + ", ".join(
                f"{steps[s][0]} {times['before'][s][-1] / times['after'][s][-1]:.3f}x" for s in steps),
                file=sys.stderr, flush=True)
    finally:
        for w in workers.values():
            w.close()
    rows = []
    for step, (label, images) in steps.items():
        before, after = (statistics.median(times[side][step]) for side in ("before", "after"))
        paired = statistics.median(b / a for b, a in zip(times["before"][step], times["after"][step], strict=True))
        rows.append((label, images / before, images / after, paired))
    if args.onnx:
        with tempfile.TemporaryDirectory(prefix="effnet-regression-") as tmp:
            rows += onnx_rows({"before": args.before, "after": args.after}, args, Path(tmp))
    print(features_line())
    print(f"{args.model}, {args.size} px eval, {args.threads} thread(s), {args.rounds} alternated rounds; "
          f"images/s = median over rounds, ratio = median of the rounds' paired ratios")
    print("| measurement | before (img/s) | after (img/s) | after/before |")
    print("|---|---:|---:|---:|")
    for label, before, after, ratio in rows:
        print(f"| {label} | {before:.1f} | {after:.1f} | {ratio:.3f}x |")


if __name__ == "__main__":
    main()
