"""No-regression check for a refactor: eager eval b32 / b1 and a training step of one model, two source trees side by side.

Each measurement runs in a fresh subprocess with ``PYTHONPATH=TREE/src``, so the two trees import
their own ``effnet``; the trees alternate (A B B A A B ...) and each figure is the median over
``--repeats`` runs, so drift in the load of a shared machine falls on both sides alike. Prints
images/s of both trees and the ratio after/before for:

- eval b32 and eval b1: ``model.eval()`` under ``torch.inference_mode()`` (what ``effnet bench`` times);
- train b32: ``model.train()``, forward, cross-entropy, backward, SGD step (random images and labels).

Random weights (no download). Tree A, "before", is typically a checkout of the starting commit::

    git worktree add /tmp/base main
    python benchmarks/refactor_regression.py --before /tmp/base [--after .] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from effnet.bench.cpu import features_line

#: Runs in the subprocess; prints one JSON line {metric: images/s}.
WORKER = r"""
import json, sys, time
import torch
import torch.nn.functional as F
from effnet import create_model

model_name, size, train_size, batch, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(int(sys.argv[6]))
torch.manual_seed(0)
model = create_model(model_name, num_classes=1000)

def rate(step, images, iters, warmup=2):
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return images * iters / (time.perf_counter() - start)

out = {}
model.eval()
with torch.inference_mode():
    xb, x1 = torch.randn(batch, 3, size, size), torch.randn(1, 3, size, size)
    out["eval_b%d" % batch] = rate(lambda: model(xb), batch, iters)
    out["eval_b1"] = rate(lambda: model(x1), 1, iters * 8, warmup=5)
model.train()
opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
xt, yt = torch.randn(batch, 3, train_size, train_size), torch.randint(0, 1000, (batch,))

def train_step():
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(xt), yt).backward()
    opt.step()

out["train_b%d_%dpx" % (batch, train_size)] = rate(train_step, batch, max(1, iters // 2), warmup=1)
print(json.dumps(out))
"""


def measure(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), OMP_NUM_THREADS=str(args.threads))
    done = subprocess.run(
        [sys.executable, "-c", WORKER, args.model, str(args.size), str(args.train_size), str(args.batch),
         str(args.iters), str(args.threads)],
        env=env, capture_output=True, text=True, timeout=args.timeout,
    )
    if done.returncode != 0:
        sys.exit(f"measuring {tree} failed: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, required=True, help="source tree A (a checkout of the starting commit)")
    p.add_argument("--after", type=Path, default=Path(__file__).resolve().parents[1], help="source tree B (default: this one)")
    p.add_argument("--model", default="b0")
    p.add_argument("--size", type=int, default=224, help="eval image size")
    p.add_argument("--train-size", type=int, default=224, help="training image size")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--iters", type=int, default=4, help="timed eval b32 calls (b1: 8x as many; train: half)")
    p.add_argument("--repeats", type=int, default=5, help="runs per tree, alternated")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--timeout", type=float, default=1800, help="hang guard per run, seconds")
    args = p.parse_args()
    for tree in (args.before, args.after):
        if not (tree / "src" / "effnet").is_dir():
            sys.exit(f"{tree} has no src/effnet: give the root of an effnet checkout")
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for i in range(args.repeats):
        order = ("before", "after") if i % 2 == 0 else ("after", "before")
        for side in order:
            runs[side].append(measure(getattr(args, side), args))
            print(f"run {i + 1}/{args.repeats} {side}: " + ", ".join(f"{k} {v:.1f}" for k, v in runs[side][-1].items()),
                  file=sys.stderr, flush=True)
    print(features_line())
    print(f"{args.model}, {args.threads} thread(s), median of {args.repeats} alternated runs per tree, images/s")
    print("| measurement | before | after | after/before |")
    print("|---|---:|---:|---:|")
    for key in runs["before"][0]:
        before = statistics.median(r[key] for r in runs["before"])
        after = statistics.median(r[key] for r in runs["after"])
        print(f"| {key} | {before:.1f} | {after:.1f} | {after / before:.3f}x |")


if __name__ == "__main__":
    main()
