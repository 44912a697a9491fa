"""Where ONNX Runtime's time goes on B0 (batch 32, fp32): its own profiler, per operator type.

Exports effnet's and torchvision's B0 (BN statistics calibrated as in ``effnet bench``), runs each
``--iters`` times with ORT's profiling on, and prints the kernel time per operator type of the
optimised graph (after ORT's fusions and its NCHWc layout rewrite) as a markdown table.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from effnet.bench.candidates import build_bench_model, calibrate_bn, onnx_file


def profile_one(impl: str, batch: int, iters: int) -> str:
    import onnxruntime as ort

    torch.manual_seed(0)
    model = calibrate_bn(build_bench_model(impl, "b0", 1000), 224)
    path = onnx_file(impl, model)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = torch.get_num_threads()
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="effnet-ortprof-")) / "ort")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    name = session.get_inputs()[0].name
    session.run(None, {name: x})
    for _ in range(iters):
        session.run(None, {name: x})
    events = json.loads(Path(session.end_profiling()).read_text())
    total_us: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            total_us[e["args"]["op_name"]] += e["dur"]
            calls[e["args"]["op_name"]] += 1
    runs = iters + 1
    grand = sum(total_us.values())
    lines = [f"**{impl}**: {grand / runs / 1e3:.0f} ms of kernel time per batch of {batch}", "",
             "| operator | nodes | ms / batch | share |", "|---|---:|---:|---:|"]
    for op, us in total_us.most_common(8):
        lines.append(f"| {op} | {calls[op] // runs} | {us / runs / 1e3:.1f} | {100 * us / grand:.0f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iters", type=int, default=3)
    args = parser.parse_args(argv)
    for impl in ("effnet", "torchvision"):
        print(profile_one(impl, args.batch, args.iters), "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
