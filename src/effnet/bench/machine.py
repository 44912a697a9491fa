"""What a benchmark runs on: the machine in a few fields (CPU, features, threads, versions) and the
measured matmul peaks its rows are compared with (the CPU's features line is :mod:`effnet.cpu`'s)."""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from typing import Any

import torch


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, n: int = 2048, iters: int = 5) -> float:
    """Measured square-matmul GFLOP/s on this CPU: the roofline the model paths are compared to."""
    from effnet.bench.timing import time_callable

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    stats = time_callable(lambda: torch.mm(a, b), warmup=2, iters=iters)
    return 2 * n**3 / (stats.min_ms * 1e-3) / 1e9


#: backends whose rows are compared with the bf16 matmul peak (all others: the fp32 peak)
BF16_BACKENDS = ("bf16", "bf16_checkpoint")


def measure_peaks(backends: Sequence[str], matmul_n: int, machine: dict[str, Any], log: Callable[[str], None]) -> None:
    """The matmul peaks the requested backends are compared with: fp32 always, bf16 only for bf16 backends
    and only where the CPU computes in bf16 (AVX512-BF16 or AMX; elsewhere PyTorch emulates it, slowly)."""
    from effnet.cpu import has_feature

    log(f"measuring the fp32 matmul peak ({matmul_n}^2) on {machine['threads']} threads ...")
    machine["matmul_peak_gflops_fp32"] = matmul_peak_gflops(torch.float32, matmul_n)
    if not any(b in BF16_BACKENDS for b in backends):
        machine["matmul_peak_bf16_skipped"] = "no bf16 backend requested"
    elif not (has_feature("avx512_bf16") or has_feature("amx")):
        machine["matmul_peak_bf16_skipped"] = "this CPU lacks avx512_bf16 and amx (bf16 is emulated)"
    else:
        log("measuring the bf16 matmul peak ...")
        machine["matmul_peak_gflops_bf16"] = matmul_peak_gflops(torch.bfloat16, matmul_n)


def describe_machine() -> dict[str, Any]:
    from effnet.cpu import cpu_model, features_line

    return {
        "cpu": cpu_model(),
        "cpu_features": features_line(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
    }
