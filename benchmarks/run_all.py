"""Run the benchmark suite behind docs/benchmarks.md (``make bench``); each run in its own process.

OMP_WAIT_POLICY=PASSIVE is set for the child processes: on a shared, oversubscribed machine
OpenMP's spinning worker threads make PyTorch eager up to 80x slower (measured: B0 batch-1 4.8 s
vs 57 ms with two threads under a load average of 8), which would measure the scheduler, not the
model. Pass --omp-active to keep the OpenMP default on a quiet machine.

With ``--data DATA`` (folders of ImageNet WordNet ids, e.g. a copy of ImageNet-val or the project's
500-image sample) it also scores every inference path of the real Lite0/1/2 weights on DATA
(`effnet bench --accuracy`, results/accuracy_MODEL.json), runs the agreement benchmark on it and
plots top-1 against images/s (docs/accuracy_vs_speed.png). Without it those parts are skipped.
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
    "fast": ["--mode", "infer", "--batch", "32", "--backend", "channels_last,compile,onnxruntime,executorch",
             "--compare", "torchvision", *COMMON],
    "train": ["--mode", "train", "--batch", "32", "--backend", "eager,channels_last,checkpoint,checkpoint_early,checkpoint_selective,bf16_checkpoint",
              "--compare", "torchvision", "--rounds", "4", "--iters", "1"],
}
#: Stand-alone scripts in this folder, run with the same environment.
SCRIPTS = {
    "budget": ["train_memory.py", "--budget-mb", "2048", "--runs",
               "torchvision:eager,torchvision:channels_last,effnet:channels_last,effnet:checkpoint,effnet:checkpoint_early,"
               "effnet:checkpoint_selective"],
    "profile": ["profile_b1.py"],
    "ort_profile": ["profile_ort.py"],
    "growth": ["cost_growth.py", "--iters", "5"],
}


#: Scored on --data: every inference path of the models with real offline weights.
ACCURACY_MODELS = ("lite0", "lite1", "lite2")
ACCURACY = ["--mode", "infer", "--batch", "32", "--compare", "none", "--calibration", "100", "--rounds", "2",
            "--iters", "1", "--latency-iters", "5", "--backend",
            "eager,channels_last,bf16,compile,onnxruntime,onnxruntime_int8,executorch,executorch_int8"]
DATA_PARTS = ("accuracy", "agreement", "plot")


def _data_commands(part: str, data: Path, out: Path) -> list[tuple[list[str], Path]]:
    """(command, where its stdout goes) for the parts that need --data."""
    if part == "accuracy":
        return [([sys.executable, "-m", "effnet", "bench", "--model", m, "--accuracy", str(data), *ACCURACY, "--json"],
                 out / f"accuracy_{m}.json") for m in ACCURACY_MODELS]
    if part == "agreement":
        return [([sys.executable, str(HERE / "agreement.py"), str(data)], out / "agreement.md")]
    return [([sys.executable, str(HERE / "plot_accuracy.py"), *(str(out / f"accuracy_{m}.json") for m in ACCURACY_MODELS)],
             out / "plot.md")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=[*RUNS, *SCRIPTS, *DATA_PARTS], action="append", help="run only these parts")
    parser.add_argument("--data", type=Path, default=None,
                        help="labelled ImageNet images (WordNet-id folders) for the accuracy, agreement and plot parts")
    parser.add_argument("--omp-active", action="store_true", help="leave OMP_WAIT_POLICY unset")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON/markdown results")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if not args.omp_active:
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args.out.mkdir(parents=True, exist_ok=True)
    parts = args.only or [*RUNS, *SCRIPTS, *(DATA_PARTS if args.data else ())]
    if args.data is None and any(p in DATA_PARTS for p in parts):
        parser.error("the accuracy, agreement and plot parts need --data DATA (ImageNet WordNet-id folders)")
    for part in parts:
        if part in DATA_PARTS:
            for cmd, dest in _data_commands(part, args.data, args.out):
                print("$", " ".join(cmd), flush=True)
                done = subprocess.run(cmd, env=env, capture_output=True, text=True)
                sys.stderr.write(done.stderr[-2000:])
                dest.write_text(done.stdout)
                if done.returncode:
                    return done.returncode
            continue
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
