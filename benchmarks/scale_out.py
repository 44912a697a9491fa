"""What scaling out costs (docs/benchmarks.md, "Scaling out"): training and search beyond one process.

1. Training images/s with the same global batch: one process (all threads) vs two ranks on one node
   (`torchrun --nproc-per-node 2`) vs two "nodes" (two `torchrun --nnodes 2` commands on loopback, c10d
   rendezvous). Rounds alternate the three (A B C A B C ...) and each ratio is the median over rounds, so a
   busy machine slows all three alike.
2. Search trials/hour of the Optuna engine for 1, 2 and 4 workers on SQLite and on PostgreSQL (a throwaway
   cluster, as in the tests), with trials that cost nothing (a stand-in scorer): what is measured is the
   engine's own overhead per trial (claim, heartbeat, tell, the storage round trips), the part a real trial
   of minutes never notices and a trial of seconds does.
3. On paper: the gradient all-reduce volume per step for B0..B7 (fp32 gradients, ring all-reduce) and the
   time it takes on a 25 Gbit/s network.

Usage: python benchmarks/scale_out.py [--rounds 2] [--steps 12] [--skip-train] [--skip-search]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the throwaway PostgreSQL cluster of the tests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_args(out, steps, threads):
    return ["train", "--data", "demo", "--model", "b0", "--image-size", "64", "--batch-size", "32", "--epochs", "1",
            "--max-steps", str(steps), "--freeze-bn", "--device", "cpu", "--workers", "0", "--no-progress",
            "--threads", str(threads), "--out", str(out), "--overwrite"]


def images_per_s(out):
    from effnet.training import checkpoint

    state, _ = checkpoint.load_latest(Path(out) / "checkpoints")
    return state["history"][-1]["images_per_sec"]


def run_training(kind, root, steps, cores):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    out = Path(tempfile.mkdtemp(dir=root, prefix=kind))
    torchrun = [sys.executable, "-m", "torch.distributed.run"]
    if kind == "1 process":
        cmds = [[sys.executable, "-m", "effnet", *train_args(out, steps, cores)]]
    elif kind == "2 ranks, 1 node":
        cmds = [[*torchrun, "--standalone", "--nproc-per-node", "2", "-m", "effnet",
                 *train_args(out, steps, max(1, cores // 2))]]
    else:
        port = free_port()
        node = [*torchrun, "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint",
                f"127.0.0.1:{port}", "--rdzv-id", "bench", "-m", "effnet", *train_args(out, steps, max(1, cores // 2))]
        cmds = [node, node]
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env) for c in cmds]
    for p in procs:
        _, err = p.communicate(timeout=1800)
        if p.returncode:
            raise SystemExit(f"{kind} failed: {err[-2000:]}")
    return images_per_s(out)


def bench_training(rounds, steps):
    cores = os.cpu_count() or 2
    kinds = ["1 process", "2 ranks, 1 node", "2 nodes (loopback)"]
    got = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as root:
        for r in range(rounds):
            for k in kinds:
                got[k].append(run_training(k, root, steps, cores))
                print(f"  round {r + 1}: {k}: {got[k][-1]:.1f} images/s", flush=True)
    base = statistics.median(got[kinds[0]])
    print(f"\nTraining B0 at 64 px, global batch 32, {steps} steps, {cores} cores, median of {rounds} rounds")
    print("| setup | images/s | vs 1 process |\n|---|---|---|")
    for k in kinds:
        ratios = [v / b for v, b in zip(got[k], got[kinds[0]])]
        print(f"| {k} | {statistics.median(got[k]):.1f} | {statistics.median(ratios):.2f}x |")
    return base


def fake_top1(config, run_dir, settings):
    return 40.0 + sum(s.channels * s.layers for s in config.stages) / 100.0


def trials_per_hour(storage, workers, trials, root):
    from effnet.search.grid import SearchSettings
    from effnet.search.nas import run_nas
    from effnet.search.space import SearchSpace

    settings = SearchSettings(data="demo", resolution=32, width=0.25, depth=0.25, max_steps=1)
    name = f"bench-{workers}-{time.monotonic_ns()}"
    start = time.perf_counter()
    run_nas(settings, SearchSpace(), Path(tempfile.mkdtemp(dir=root)), trials, workers=workers, storage=storage,
            study_name=name, heartbeat_s=5, train_fn=fake_top1, log=lambda s: None, plot=False)
    return trials / (time.perf_counter() - start) * 3600


def bench_search(trials, worker_counts):
    from _postgres import Cluster, find_bin_dir

    bin_dir = find_bin_dir()
    cluster = Cluster(bin_dir) if bin_dir else None
    rows = []
    try:
        with tempfile.TemporaryDirectory() as root:
            for workers in worker_counts:
                sqlite = f"sqlite:///{root}/study-{workers}.db"
                row = [workers, trials_per_hour(sqlite, workers, trials, root)]
                if cluster:
                    row.append(trials_per_hour(cluster.create_db(f"bench{workers}"), workers, trials, root))
                rows.append(row)
                print(f"  {workers} worker(s): " + ", ".join(f"{v:.0f}" for v in row[1:]) + " trials/h", flush=True)
    finally:
        if cluster:
            cluster.close()
    print(f"\nSearch engine, {trials} instant trials per study (process start-up included)")
    print("| workers | SQLite trials/h | PostgreSQL trials/h | PostgreSQL / SQLite |\n|---|---|---|---|")
    for row in rows:
        pg = f"{row[2]:.0f} | {row[2] / row[1]:.2f}x" if len(row) > 2 else "- | -"
        print(f"| {row[0]} | {row[1]:.0f} | {pg} |")


def comm_table(gbit=25.0, per_node_batch=32):
    """Ring all-reduce: each node sends and receives 2 (N-1)/N of the gradient bytes per step."""
    import effnet
    from effnet.arch.flops import count_params, meta_model

    bandwidth = gbit * 1e9 / 8  # bytes/s
    print(f"\nGradient all-reduce per step (fp32), ring, {gbit:g} Gbit/s, per-node batch {per_node_batch}")
    print("| model | params | gradients MB | sent per node, 2 nodes | sent per node, many nodes | "
          "time at 2 nodes | time at many | images/s per node the network can feed |")
    print("|---|---|---|---|---|---|---|---|")
    for name in [f"b{i}" for i in range(8)]:
        params = count_params(meta_model(effnet.get_config(name), num_classes=1000))
        mb = params * 4 / 1e6
        two, many = mb, 2 * mb  # 2 (N-1)/N: 1 at N = 2, -> 2 as N grows
        t_two, t_many = two * 1e6 / bandwidth, many * 1e6 / bandwidth
        print(f"| {name.upper()} | {params / 1e6:.2f} M | {mb:.1f} | {two:.1f} MB | {many:.1f} MB | "
              f"{t_two * 1e3:.0f} ms | {t_many * 1e3:.0f} ms | {per_node_batch / t_many:.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    args = parser.parse_args()
    import torch

    from effnet.bench.machine import describe_machine

    print("machine:", describe_machine(), "| CPU features:", torch.backends.cpu.get_cpu_capability(), flush=True)
    if not args.skip_train:
        bench_training(args.rounds, args.steps)
    if not args.skip_search:
        bench_search(args.trials, args.workers)
    comm_table()


if __name__ == "__main__":
    main()
