"""End-to-end `effnet predict` on a folder of real JPEGs beside `effnet bench`'s model-only batch-32 figure
of the same model and backend, measured in the same run (issue 17, part 1).

    python benchmarks/pipeline.py DATA [--images 200] [--backends eager,onnxruntime] [--before SRC]

DATA is a folder of images (searched recursively), e.g. ``../shared/data/imagenet-sample``; the first
``--images`` files (sorted) are linked into a temporary folder and classified by `effnet predict --json`
in a subprocess. Two figures per run: *steady* counts the images answered after the first batch's
answers, over the time since them (model loading, export and the first batch excluded), *whole* is
images over the command's wall time. `--before SRC` also runs the `effnet predict` of another checkout's
``src`` folder (e.g. ``git archive main src | tar -x -C /tmp/before``) on the same images, interleaved,
so the before/after ratios come from one run on one machine. Prints the CPU and its load: on a shared
machine only the ratios mean something.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
BURST_S = 0.05  # lines this close to the first one belong to the first batch's answers


def cpu_line() -> str:
    from effnet.cpu import features_line

    return f"{features_line()}; {os.cpu_count()} cores; load average at start: {os.getloadavg()[0]:.1f}"


def link_images(data: Path, count: int, folder: Path) -> int:
    files = sorted(f for f in data.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)[:count]
    if not files:
        raise SystemExit(f"{data}: no images (looked for {', '.join(IMAGE_SUFFIXES)})")
    for i, f in enumerate(files):
        (folder / f"{i:06d}{f.suffix.lower()}").symlink_to(f.resolve())
    return len(files)


def model_only(model: str, backend: str, batch: int, env: dict[str, str]) -> float:
    """`effnet bench`'s images/s at batch ``batch`` (model only: random input, no decoding)."""
    out = subprocess.run([sys.executable, "-m", "effnet", "bench", "--model", model, "--weights", model, "--batch",
                          str(batch), "--backend", backend, "--compare", "none", "--no-latency", "--rounds", "2",
                          "--iters", "3", "--memory-in-process", "--json"],
                         capture_output=True, text=True, env=env, timeout=3600, check=True).stdout
    return json.loads(out)["rows"][0]["images_per_s"]


def predict(folder: Path, model: str, backend: str, src: Path, extra: list[str], env: dict[str, str]) -> dict:
    """Run `effnet predict --json` from ``src``; images/s steady (after the first batch) and whole-command."""
    env = {**env, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-m", "effnet", "predict", str(folder), "--weights", model, "--backend", backend,
           "--json", *extra]
    start = time.monotonic()
    times = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        for line in proc.stdout:
            if line.startswith("{"):
                times.append(time.monotonic())
        err = proc.stderr.read()
    whole = time.monotonic() - start
    if proc.returncode != 0 or not times:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-2000:]}")
    first = sum(1 for t in times if t <= times[0] + BURST_S)
    steady = (len(times) - first) / (times[-1] - times[0]) if len(times) > first else float("nan")
    return {"images": len(times), "steady": steady, "whole": len(times) / whole, "seconds": whole}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="a folder of images, e.g. ../shared/data/imagenet-sample")
    p.add_argument("--images", type=int, default=200, help="how many images to classify (default 200)")
    p.add_argument("--model", default="lite0", help="registry tag: model and weights (default lite0)")
    p.add_argument("--backends", default="eager,onnxruntime")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--before", type=Path, default=None, help="another checkout's src/ folder to compare with")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for every command (default: unset)")
    args = p.parse_args()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("OMP_NUM_THREADS", None)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    here = Path(__file__).resolve().parents[1] / "src"
    print(cpu_line())
    rows = []
    with tempfile.TemporaryDirectory(prefix="effnet-pipeline-") as tmp:
        n = link_images(args.data, args.images, Path(tmp))
        print(f"{n} images from {args.data}, {args.model}, batch {args.batch_size}")
        for backend in args.backends.split(","):
            bench = model_only(args.model, backend, args.batch_size, env)
            runs = {}
            if args.before:
                runs["before"] = predict(Path(tmp), args.model, backend, args.before, [], env)
            runs["after"] = predict(Path(tmp), args.model, backend, here, ["--batch-size", str(args.batch_size)],
                                    env)
            for name, r in runs.items():
                rows.append((backend, name, bench, r))
                print(f"  {backend} {name}: {r}, bench {bench:.1f} img/s", file=sys.stderr)
    print("\n| backend | effnet predict | model only (effnet bench, batch "
          f"{args.batch_size}) img/s | predict steady img/s | ratio | whole command img/s (s) | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for backend, name, bench, r in rows:
        print(f"| {backend} | {name} | {bench:.1f} | {r['steady']:.1f} | {r['steady'] / bench:.2f}x | "
              f"{r['whole']:.1f} ({r['seconds']:.0f} s) | {r['whole'] / bench:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
