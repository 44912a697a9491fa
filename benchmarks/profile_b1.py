"""Where batch-1 eager time goes: torch.profiler's top operators, effnet vs torchvision (B0, fp32).

Both models get BatchNorm statistics calibrated on random data (as in ``effnet bench``), run
under inference_mode, warm up, then ``--iters`` calls are profiled. Prints, per implementation,
the wall time per call, the operator count per call, and the top operators by self CPU time
as a markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from effnet.bench.candidates import build_bench_model, calibrate_bn


def profile_one(impl: str, iters: int, top: int) -> str:
    torch.manual_seed(0)
    model = calibrate_bn(build_bench_model(impl, "b0", 1000), 224)
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        for _ in range(5):
            model(x)
        start = time.perf_counter()
        for _ in range(iters):
            model(x)
        wall_ms = (time.perf_counter() - start) / iters * 1e3
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(iters):
                model(x)
    events = prof.key_averages()
    total_self = sum(e.self_cpu_time_total for e in events) / iters / 1e3
    calls = sum(e.count for e in events) / iters
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    lines = [f"**{impl}**: {wall_ms:.1f} ms per call unprofiled; {calls:.0f} operator calls per forward, "
             f"{total_self:.1f} ms self CPU per forward (profiled)", "",
             "| operator | calls / forward | self CPU ms / forward | share |", "|---|---:|---:|---:|"]
    for e in rows:
        ms = e.self_cpu_time_total / iters / 1e3
        lines.append(f"| {e.key} | {e.count / iters:.0f} | {ms:.2f} | {100 * ms / total_self:.0f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impls", default="effnet,torchvision")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    for impl in args.impls.split(","):
        print(profile_one(impl, args.iters, args.top) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
