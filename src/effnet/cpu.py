"""The CPU features that decide which kernels a run gets, in one line for every benchmark and int8 check.

Below every sub-package (no torch): the benchmarks, the int8 export and the scripts all print it.

int8 and bf16 results depend on them: ONNX Runtime's U8S8 int8 kernels without VNNI multiply in 16-bit
pairs that can saturate (effnet's int8 export avoids that with 7-bit weights), and bf16 matmuls are
emulated where the CPU has neither AVX512-BF16 nor AMX. Read from /proc/cpuinfo (Linux); elsewhere
the features are reported as unknown rather than guessed.
"""

from __future__ import annotations

import functools
import platform

#: /proc/cpuinfo flag -> the name used in reports (amx: any of AMX's tile/int8/bf16 flags)
FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx")


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]] | None:
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return None
    model, flags = platform.machine(), set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == platform.machine():
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model, frozenset(flags)


def cpu_model() -> str:
    """e.g. ``AMD EPYC 7B13`` (/proc/cpuinfo's model name), else what the platform module knows."""
    info = _cpuinfo()
    return info[0] if info is not None else platform.processor() or platform.machine()


def cpu_features() -> dict[str, bool] | None:
    """{feature: present} for :data:`FEATURES`, or None where /proc/cpuinfo cannot be read."""
    info = _cpuinfo()
    if info is None:
        return None
    flags = info[1]
    return {f: (any(x.startswith("amx") for x in flags) if f == "amx" else f in flags) for f in FEATURES}


def has_feature(name: str) -> bool:
    """True when the CPU has ``name`` (one of :data:`FEATURES`); False when it lacks it or nothing is known."""
    return bool((cpu_features() or {}).get(name))


def features_line() -> str:
    """e.g. ``CPU: AMD EPYC; features: avx2; lacks: avx512f, avx512_vnni, avx512_bf16, amx``."""
    info, features = _cpuinfo(), cpu_features()
    if info is None or features is None:
        return f"CPU: {platform.processor() or platform.machine()}; features: unknown (no /proc/cpuinfo)"
    have = [f for f, ok in features.items() if ok]
    lacks = [f for f, ok in features.items() if not ok]
    return (f"CPU: {info[0]}; features: {', '.join(have) or 'none of ' + '/'.join(FEATURES)}"
            + (f"; lacks: {', '.join(lacks)}" if lacks else ""))
