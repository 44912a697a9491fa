"""Run the benchmark suite behind docs/benchmarks.md (``make bench``); each run in its own process.

OMP_WAIT_POLICY=PASSIVE is set for the child processes: on a shared, oversubscribed machine
OpenMP's spinning worker threads make PyTorch eager up to 80x slower (measured: B0 batch-1 4.8 s
vs 57 ms with two threads under a load average of 8), which would measure the scheduler, not the
model. Pass --omp-active to keep the OpenMP default on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMON = ["--rounds", "2", "--iters", "2", "--latency-iters", "10"]
RUNS = {
    "infer": ["--mode", "infer", "--batch", "32", "--backend", "eager,channels_last,bf16,onnxruntime,onnxruntime_int8",
              "--compare", "torchvision,timm", *COMMON],
    "fast": ["--mode", "infer", "--batch", "32", "--backend", "channels_last,compile,onnxruntime",
             "--compare", "torchvision", *COMMON],
    "train": ["--mode", "train", "--batch", "32", "--backend", "eager,channels_last,checkpoint,checkpoint_early,checkpoint_selective,bf16_checkpoint",
              "--compare", "torchvision", "--rounds", "4", "--iters", "1"],
}
#: Stand-alone scripts in this folder, run with the same environment.
SCRIPTS = {
    "budget": ["train_memory.py", "--budget-mb", "2048", "--runs",
               "torchvision:eager,torchvision:channels_last,effnet:channels_last,effnet:checkpoint,effnet:checkpoint_early,"
               "effnet:checkpoint_selective"],
    "agreement": ["agreement.py"],
    "profile": ["profile_b1.py"],
    "ort_profile": ["profile_ort.py"],
    "growth": ["cost_growth.py", "--iters", "5"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=[*RUNS, *SCRIPTS], action="append", help="run only these parts")
    parser.add_argument("--omp-active", action="store_true", help="leave OMP_WAIT_POLICY unset")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON/markdown results")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if not args.omp_active:
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args.out.mkdir(parents=True, exist_ok=True)
    parts = args.only or [*RUNS, *SCRIPTS]
    for part in parts:
        if part in SCRIPTS:
            script, *rest = SCRIPTS[part]
            cmd = [sys.executable, str(HERE / script), *rest]
            if part == "growth":
                cmd += ["--out", str(args.out)]
        else:
            cmd = [sys.executable, "-m", "effnet", "bench", "--model", "b0", *RUNS[part], "--markdown"]
        print("$", " ".join(cmd), flush=True)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        sys.stderr.write(done.stderr[-2000:])
        print(done.stdout, flush=True)
        (args.out / f"{part}.md").write_text(done.stdout)
        if done.returncode:
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
