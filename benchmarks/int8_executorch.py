"""ExecuTorch int8 against fp32 (XNNPACK): recipe variants' quality, speed ratios and where the time goes.

    OMP_NUM_THREADS=1 python benchmarks/int8_executorch.py DATA [--model lite0] [--variants recipe,minmax]
        [--folds 5] [--rounds 5] [--profile]

DATA is split as `effnet bench --accuracy` splits it: every fifth image (100 of 500) calibrates, in the folder's
sorted order, and the other 400 are scored. ``--folds K`` repeats that on K splits: fold k calibrates on
images k, k+5, k+10, ... and scores the other 400 (fold 0 is bench's split; K=5 scores every image 4 times),
and the mean over folds is what to compare: on one split, 1 image is 0.25 points of agreement. Each
variant is quantized (PT2E, effnet's XNNPACK recipe with one thing changed), lowered to a dynamic-batch
program and run in ExecuTorch's runtime; top-1 and agreement are with the fp32 model's on the same 400 images. Speed: the fp32 and the ``--speed`` variants' programs, batch 1
(static batch-1 programs and the dynamic ones) and batch 32, timed in interleaved rounds in this one
process; the ratios are what to quote. ``--profile`` adds XNNPACK's own per-operator times (ETDump, read
by ExecuTorch's Inspector) summed per operator kind: which kernels an int8 call spends its time in.
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

#: name -> (observer, fp32 modules, calibration order reversed, sequential bias correction); "recipe" is what effnet ships
VARIANTS = {
    "recipe": ("histogram", ("stem", "classifier"), False, False),
    "recipe with calibration reversed": ("histogram", ("stem", "classifier"), True, False),
    "minmax": ("minmax", ("stem", "classifier"), False, False),
    "moving_average": ("moving_average", ("stem", "classifier"), False, False),
    "recipe + head conv fp32": ("histogram", ("stem", "classifier", "head"), False, False),
    "recipe + last stage and head fp32": ("histogram", ("stem", "classifier", "stages.6", "head"), False, False),
    "all layers int8": ("histogram", (), False, False),
    "recipe + sequential bias correction": ("histogram", ("stem", "classifier"), False, True),
}


def fold_indices(n: int, calibration: int, folds: int) -> list[list[int]]:
    """The calibration images' indices of each fold among ``n`` sorted images: fold 0 is `effnet bench
    --accuracy`'s (``calibration`` evenly spaced from image 0), fold k the same shifted by k."""
    step = n / calibration
    if not 1 <= folds <= int(step):
        raise ValueError(f"--folds must be 1 to {int(step)} ({calibration} calibration images of {n}), got {folds}")
    return [[int(i * step) + k for i in range(calibration)] for k in range(folds)]


def write_program(model: torch.nn.Module, example: torch.Tensor, path: Path, max_batch: int) -> Path:
    from effnet.deploy.executorch import lower_to_xnnpack

    path.write_bytes(lower_to_xnnpack(model, example, max_batch=max_batch))
    return path


def per_op_profile(path: Path, x: torch.Tensor, calls: int = 3) -> dict[str, tuple[int, float]]:
    """XNNPACK's per-operator times (median over ``calls``) of the program at ``path`` on ``x``, summed
    per operator kind: {kind: (operators, ms)}."""
    from effnet.deploy.executorch import xnnpack_op_events

    program = path.read_bytes()  # the module reads this buffer without copying it: keep it alive
    kinds: dict[str, list] = collections.defaultdict(lambda: [0, 0.0])
    for event in xnnpack_op_events(program, x, path.with_suffix(".etdp"), calls):
        if event.perf_data is None or event.name == "OPERATOR_CALL":
            continue
        kind = re.sub(r" #\d+$", "", event.name)
        kinds[kind][0] += 1
        kinds[kind][1] += event.perf_data.p50
    return {k: (n, ms) for k, (n, ms) in kinds.items()}


def print_profiles(programs: dict[str, Path], x: torch.Tensor) -> None:
    profiles = {name: per_op_profile(path, x) for name, path in programs.items()}
    names = list(profiles)
    print(f"\nXNNPACK per-operator times, batch {len(x)} (ms, median of 3 calls; DELEGATE_CALL encloses the rest)")
    print("| operator kind | " + " | ".join(f"{n}: ops | {n}: ms" for n in names) + " |")
    print("|---|" + "---:|---:|" * len(names))
    kinds = sorted({k for p in profiles.values() for k in p}, key=lambda k: -max(p.get(k, (0, 0))[1] for p in profiles.values()))
    for kind in kinds:
        cells = []
        for n in names:
            ops, ms = profiles[n].get(kind, (0, 0.0))
            cells += [str(ops) if ops else "", f"{ms:.2f}" if ops else ""]
        print(f"| {kind} | " + " | ".join(cells) + " |")


def table_cells(s: object) -> str:
    flipped = round((100 - s.agreement) * s.images / 100)
    return f"{s.top1:.2f} | {s.top5:.2f} | {s.agreement:.2f}% | {flipped} of {s.images}"


def print_fold_means(rows: dict[str, list]) -> None:
    """Each program's mean over the folds, and its top-1 against fp32's mean on the same images."""
    fp32_top1 = statistics.mean(s.top1 for s in rows["fp32"])
    print(f"\nMean over {len(rows['fp32'])} folds (fp32 top-1 {fp32_top1:.2f}):\n")
    print("| ExecuTorch program (XNNPACK) | top-1 % | top-1 - fp32 | top-5 % | agreement | agreement range | flipped per 400 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, scores in rows.items():
        top1, agree = statistics.mean(s.top1 for s in scores), [s.agreement for s in scores]
        flips = statistics.mean((100 - s.agreement) * 4 for s in scores)  # per 400 scored images
        print(f"| {name} | {top1:.2f} | {top1 - fp32_top1:+.2f} | {statistics.mean(s.top5 for s in scores):.2f} | "
              f"{statistics.mean(agree):.2f}% | {min(agree):.2f}-{max(agree):.2f} | {flips:.2f} |", flush=True)


def interleaved_ms(runs: dict[str, tuple], rounds: int) -> dict[str, float]:
    """Median ms per call of each (function, input), timed in interleaved rounds of a few calls each."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run, x in runs.values():
        run(x)  # warm-up
    for _ in range(rounds):
        for name, (run, x) in runs.items():
            calls = max(1, 8 // len(x))
            start = time.perf_counter()
            for _ in range(calls):
                run(x)
            times[name].append((time.perf_counter() - start) * 1e3 / calls)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="folder of ImageNet WordNet-id folders")
    parser.add_argument("--model", default="lite0")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names from: " + ", ".join(VARIANTS))
    parser.add_argument("--folds", type=int, default=1, help="calibration splits scored (fold k: images k, k+5, ...)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--speed", default="recipe", help="comma-separated variants timed against fp32")
    parser.add_argument("--profile", action="store_true", help="XNNPACK per-operator times of fp32 and int8")
    args = parser.parse_args(argv)
    from effnet import create_model
    from effnet.bench.accuracy import load_labelled, logits_of, score
    from effnet.cpu import features_line
    from effnet.data.transforms import eval_transform
    from effnet.deploy.executorch import executorch_runner, quantize_pt2e

    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from: {', '.join(VARIANTS)}")
    print(features_line())
    model = create_model(args.model, weights=args.model).eval()
    data = load_labelled(args.data, eval_transform(args.model), calibration=0)
    if data.skipped:
        sys.exit(f"{len(data.skipped)} unreadable images would shift the folds: {data.skipped[0]}")
    try:
        folds = fold_indices(len(data.images), 100, args.folds)
    except ValueError as exc:
        parser.error(str(exc))
    fp32_logits = logits_of(model, data.images, args.batch)
    out = Path(tempfile.mkdtemp(prefix="effnet-int8-et-"))
    example = data.images[:1]
    fp32 = write_program(model, example, out / "fp32.pte", args.batch)
    fp32_et = logits_of(executorch_runner(fp32), data.images, args.batch)
    print(f"{args.model}: {len(folds)} fold(s), each 100 calibration images and {len(data.images) - 100} scored\n")
    print("| ExecuTorch program (XNNPACK) | fold | top-1 % | top-5 % | top-1 agreement with fp32 | flipped |")
    print("|---|---:|---:|---:|---:|---:|")
    rows: dict[str, list] = collections.defaultdict(list)
    int8 = {}
    for k, calib_idx in enumerate(folds):
        held = torch.ones(len(data.images), dtype=torch.bool)
        held[calib_idx] = False
        labels, reference = data.labels[held], fp32_logits[held]
        calibration = data.images[calib_idx]
        rows["fp32"].append(score(fp32_et[held], labels, reference))
        print(f"| fp32 | {k} | {table_cells(rows['fp32'][-1])} |", flush=True)
        for name in names:
            observer, fp32_modules, reverse, correct = VARIANTS[name]
            calib = calibration.flip(0) if reverse else calibration
            quantized = quantize_pt2e(model, calib, observer=observer, fp32_modules=fp32_modules,
                                      bias_correction=correct)
            path = write_program(quantized, example, out / f"int8_{k}_{len(int8)}.pte", args.batch)
            if k == 0:
                int8[name] = (quantized, path)  # fold 0's programs are the ones timed
            rows[name].append(score(logits_of(executorch_runner(path), data.images[held], args.batch), labels, reference))
            print(f"| int8, {name} | {k} | {table_cells(rows[name][-1])} |", flush=True)
    if len(folds) > 1:
        print_fold_means(rows)
    timed = [n for n in args.speed.split(",") if n in int8]
    if not timed:
        return 0
    fp32_b1 = write_program(model, example, out / "fp32_b1.pte", 1)
    x1, xb = data.images[:1].contiguous(), data.images[:args.batch].contiguous()
    runs = {"fp32 b1 (batch-1 program)": (executorch_runner(fp32_b1), x1),
            "fp32 b1 (dynamic program)": (executorch_runner(fp32), x1),
            f"fp32 b{args.batch}": (executorch_runner(fp32), xb)}
    int8_b1 = {}
    for name in timed:
        quantized, dynamic = int8[name]
        int8_b1[name] = write_program(quantized, example, out / f"int8_b1_{len(int8_b1)}.pte", 1)
        runs |= {f"{name} b1 (batch-1 program)": (executorch_runner(int8_b1[name]), x1),
                 f"{name} b1 (dynamic program)": (executorch_runner(dynamic), x1),
                 f"{name} b{args.batch}": (executorch_runner(dynamic), xb)}
    ms = interleaved_ms(runs, args.rounds)
    print(f"\nSpeed ({args.rounds} interleaved rounds, median ms per call):\n")
    print("| int8 variant | batch | program | fp32 ms | int8 ms | int8 speed vs fp32 |")
    print("|---|---:|---|---:|---:|---:|")
    for name in timed:
        for batch, kind in ((1, " (batch-1 program)"), (1, " (dynamic program)"), (args.batch, "")):
            f, q = ms[f"fp32 b{batch}{kind}"], ms[f"{name} b{batch}{kind}"]
            print(f"| {name} | {batch} | {kind.strip(' ()') or 'dynamic program'} | {f:.1f} | {q:.1f} | {f / q:.2f}x |")
    f, d = ms["fp32 b1 (batch-1 program)"], ms["fp32 b1 (dynamic program)"]
    print(f"dynamic-shape cost at batch 1 (fp32): batch-1 program {f:.1f} ms, dynamic program {d:.1f} ms ({d / f:.2f}x)")
    from executorch.extension.pybindings.portable_lib import _threadpool_get_thread_count

    print(f"XNNPACK threads (ExecuTorch's one threadpool, both programs): {_threadpool_get_thread_count()}")
    if args.profile:
        print_profiles({"fp32": fp32_b1} | {f"int8 {n}": p for n, p in int8_b1.items()}, x1)
        try:
            print_profiles({"fp32": fp32} | {f"int8 {n}": int8[n][1] for n in timed}, xb)
        except RuntimeError as exc:  # seen: the ETDump-enabled loader refuses a batch-32 call of a dynamic program
            print(f"\nno batch-{len(xb)} profile: {str(exc).splitlines()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
