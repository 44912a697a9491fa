"""Side-by-side benchmarks: effnet against torchvision / timm (and ONNX Runtime) in one process.

Every candidate (implementation x backend) is built first, then measured in interleaved rounds
(round 1: A, B, C ...; round 2: A, B, C ...) so that slow drift of the machine (other jobs, thermal)
hits all candidates alike; the samples of all rounds are pooled. Memory is the growth of the peak resident
set (VmHWM) over the warm-up calls, started from a trimmed heap (see :mod:`effnet.bench.peak_memory`), by
default in a fresh process per candidate: it includes everything the step allocates (PyTorch
tensors, oneDNN scratch, ONNX Runtime's arena).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from effnet.bench.accuracy import LabelledImages, PathAccuracy
from effnet.bench.candidates import REFERENCES, Candidate, build_candidates
from effnet.bench.machine import describe_machine, measure_peaks
from effnet.bench.peak_memory import PeakRSS
from effnet.bench.timing import TimingStats
from effnet.choices import BENCH_BACKENDS

__all__ = ["BENCH_BACKENDS", "REFERENCES", "BenchConfig", "BenchResult", "run_bench"]


@dataclass
class BenchConfig:
    model: str = "b0"
    batch: int = 32
    mode: str = "infer"  # or "train"
    backends: tuple[str, ...] = ("eager",)
    compare: tuple[str, ...] = ("torchvision",)
    resolution: int | None = None
    rounds: int = 3
    iters: int = 3  # timed calls per round at the large batch
    latency_iters: int = 10  # timed batch-1 calls per round
    warmup: int = 2
    threads: int | None = None
    num_classes: int = 1000
    latency: bool = True
    matmul_n: int = 1024  # size of the square matmul that measures the peak (seconds, even in emulated bf16)
    isolate_memory: bool = True  # measure each candidate's peak memory in a fresh process
    accuracy: str | None = None  # folder of ImageNet WordNet-id folders: score every path on it
    weights: str | None = None  # effnet's weights (registry tag or file); default with accuracy: the model's own tag
    calibration: int = 100  # images of the accuracy folder set aside to calibrate the int8 paths

    def validate(self) -> None:
        if self.mode not in ("infer", "train"):
            raise ValueError(f"--mode must be infer or train, got {self.mode!r}")
        bad = [b for b in self.backends if b not in BENCH_BACKENDS[self.mode]]
        if bad:
            raise ValueError(f"unknown backend(s) {bad} for mode {self.mode}; choose from {', '.join(BENCH_BACKENDS[self.mode])}")
        bad = [r for r in self.compare if r not in REFERENCES]
        if bad:
            raise ValueError(f"unknown reference(s) {bad}; choose from {', '.join(REFERENCES)}")
        if self.batch < 1 or self.rounds < 1 or self.iters < 1:
            raise ValueError("batch, rounds and iters must all be >= 1")
        if self.accuracy and self.mode != "infer":
            raise ValueError("--accuracy scores inference paths; use it with --mode infer")


@dataclass
class Row:
    impl: str
    backend: str
    images_per_s: float
    batch_ms: TimingStats
    latency: TimingStats | None
    peak_mem_mb: float
    gflops_per_image: float
    peak_fraction: float
    accuracy: PathAccuracy | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["batch_ms"] = self.batch_ms.to_dict()
        d["latency"] = self.latency.to_dict() if self.latency else None
        return d


@dataclass
class BenchResult:
    config: BenchConfig
    machine: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def row(self, impl: str, backend: str) -> Row | None:
        return next((r for r in self.rows if r.impl == impl and r.backend == backend), None)

    def ratios(self) -> list[dict[str, Any]]:
        """effnet / reference for each backend they share, each effnet backend against the reference's
        plain eager step (the baseline issue 5's targets are stated against), and best vs best."""
        out = []
        for ref in self.config.compare:
            for backend in self.config.backends:
                a, b = self.row("effnet", backend), self.row(ref, backend)
                if a and b:
                    out.append(_ratio(a, b))
            for backend in self.config.backends:
                a, b = self.row("effnet", backend), self.row(ref, "eager")
                if a and b and backend != "eager":
                    out.append(_ratio(a, b, kind="vs reference eager"))
            mine = [r for r in self.rows if r.impl == "effnet"]
            theirs = [r for r in self.rows if r.impl == ref]
            if mine and theirs:
                out.append(_ratio(max(mine, key=_speed), max(theirs, key=_speed), kind="best vs best"))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "machine": self.machine,
            "rows": [r.to_dict() for r in self.rows],
            "ratios": self.ratios(),
            "skipped": self.skipped,
        }


def _speed(row: Row) -> float:
    return row.images_per_s


def _ratio(a: Row, b: Row, kind: str = "same backend") -> dict[str, Any]:
    d = {
        "effnet": f"{a.impl}/{a.backend}",
        "reference": f"{b.impl}/{b.backend}",
        "kind": kind,
        "throughput": a.images_per_s / b.images_per_s,
        "memory": a.peak_mem_mb / b.peak_mem_mb if b.peak_mem_mb > 0 else float("nan"),
    }
    if a.latency and b.latency:
        d["latency_p50"] = b.latency.p50_ms / a.latency.p50_ms  # > 1 means effnet is faster
    return d


def _warm_up(cand: Candidate, cfg: BenchConfig) -> float:
    """Warm-up calls, from a trimmed heap: their RSS high-water growth is the candidate's peak memory."""
    with PeakRSS() as peak:
        for _ in range(max(cfg.warmup, 1)):
            cand.step()
    if cfg.latency and cand.step1 is not None:
        cand.step1()
    return peak.growth_mb


def isolated_peak_mb(cfg: BenchConfig, impl: str, backend: str) -> float:
    """Peak memory of one candidate's warm-up, measured in a fresh Python process.

    Measured in the benchmark's own process, a candidate's RSS growth depends on what earlier
    candidates left in the C heap (freed but fragmented memory is reused without growing RSS),
    which moved the same training step by hundreds of MB between runs. A fresh process has no history.
    """
    config = {**asdict(cfg), "threads": cfg.threads or torch.get_num_threads()}
    code = "import sys; from effnet.bench.harness import _child_peak; _child_peak(sys.argv[1], sys.argv[2], sys.argv[3])"
    done = subprocess.run([sys.executable, "-c", code, json.dumps(config), impl, backend],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement of {impl}/{backend} failed: {done.stderr.strip()[-500:]}")
    return float(done.stdout.split()[-1])


def _child_peak(config_json: str, impl: str, backend: str) -> None:
    fields = json.loads(config_json)
    cfg = BenchConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    torch.set_num_threads(cfg.threads)
    cands, skipped = build_candidates(cfg, lambda msg: None, only=(impl, backend))
    if not cands:
        raise SystemExit(f"{impl}/{backend} could not be built: {skipped}")
    print(_warm_up(cands[0], cfg))


def _measure_round(cand: Candidate, cfg: BenchConfig, samples: dict[str, list[float]]) -> None:
    from effnet.bench.timing import time_callable

    stats = time_callable(cand.step, warmup=0, iters=cfg.iters)
    samples.setdefault(cand.key, []).extend(stats.samples_ms)
    if cfg.latency and cand.step1 is not None:
        lat = time_callable(cand.step1, warmup=1, iters=cfg.latency_iters)
        samples.setdefault(cand.key + "@1", []).extend(lat.samples_ms)


def run_bench(cfg: BenchConfig, log: Callable[[str], None] = print) -> BenchResult:
    """Build every candidate, warm each up, then measure them in interleaved rounds."""
    cfg.validate()
    data = _accuracy_data(cfg, log) if cfg.accuracy else None  # bad data fails before any measuring
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    result = BenchResult(cfg, describe_machine())
    log(result.machine["cpu_features"])
    measure_peaks(cfg.backends, cfg.matmul_n, result.machine, log)
    calibration = data.calibration if data is not None and len(data.calibration) else None  # None: bundled photos
    cands, result.skipped = build_candidates(cfg, log, calibration=calibration)
    scores = _score_paths(cfg, cands, data, log) if data is not None else {}
    if data is not None:
        result.machine["accuracy_data"] = {"folder": cfg.accuracy, "weights": cfg.weights, "images": len(data.labels),
                                           "calibration_images": len(data.calibration), "skipped": list(data.skipped)}
    mem: dict[str, float] = {}
    for cand in cands:
        log(f"warming up {cand.key} ...")
        mem[cand.key] = _warm_up(cand, cfg)
        if cfg.isolate_memory:
            log(f"measuring the peak memory of {cand.key} in a fresh process ...")
            mem[cand.key] = isolated_peak_mb(cfg, cand.impl, cand.backend)
    samples: dict[str, list[float]] = {}
    for r in range(cfg.rounds):
        for cand in cands:
            log(f"round {r + 1}/{cfg.rounds}: {cand.key}")
            _measure_round(cand, cfg, samples)
    for cand in cands:
        batch_stats = TimingStats.from_samples([ms / 1e3 for ms in samples[cand.key]])
        lat_key = cand.key + "@1"
        latency = TimingStats.from_samples([ms / 1e3 for ms in samples[lat_key]]) if lat_key in samples else None
        ips = cfg.batch / (batch_stats.p50_ms / 1e3)
        peak = result.machine.get("matmul_peak_gflops_bf16" if cand.bf16 else "matmul_peak_gflops_fp32")
        result.rows.append(Row(
            impl=cand.impl, backend=cand.backend, images_per_s=ips, batch_ms=batch_stats, latency=latency,
            peak_mem_mb=mem[cand.key], gflops_per_image=cand.gflops_per_image,
            peak_fraction=ips * cand.gflops_per_image / peak if peak else float("nan"), accuracy=scores.get(cand.key),
        ))
    return result


def _accuracy_data(cfg: BenchConfig, log: Callable[[str], None]) -> LabelledImages:
    """The labelled images of ``cfg.accuracy``, preprocessed for ``cfg.weights`` (set to the model's own tag
    when it names real weights)."""
    from effnet.bench.accuracy import load_labelled
    from effnet.data.transforms import eval_transform
    from effnet.weights import get_weight_set

    if not cfg.weights:
        if get_weight_set(cfg.model) is None:
            raise ValueError(f"--accuracy needs real weights for {cfg.model}: pass --weights TAG_OR_FILE")
        cfg.weights = cfg.model
    return load_labelled(cfg.accuracy, eval_transform(cfg.weights, resolution=cfg.resolution), cfg.calibration)


def _score_paths(
    cfg: BenchConfig, cands: list[Candidate], data: LabelledImages, log: Callable[[str], None]
) -> dict[str, PathAccuracy]:
    """Top-1/top-5 of every effnet path on ``data`` and its agreement with the plain fp32 model."""
    from effnet.bench.accuracy import logits_of, score
    from effnet.factory import create_model

    log(f"scoring fp32 {cfg.model} + {cfg.weights} on {len(data.labels)} images ...")
    fp32 = logits_of(create_model(cfg.model, weights=cfg.weights).eval(), data.images, cfg.batch)
    scores = {}
    for cand in cands:
        if cand.impl == "effnet" and cand.run is not None:
            log(f"scoring {cand.key} ...")
            scores[cand.key] = score(logits_of(cand.run, data.images, cfg.batch), data.labels, fp32)
    return scores
