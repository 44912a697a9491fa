"""effnet bench mechanics on a small input with tiny iteration counts (no timing assertions)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from effnet.bench.harness import BenchConfig, run_bench
from effnet.bench.markdown import markdown_table, peer_table
from effnet.bench.peak_memory import PeakRSS
from effnet.cli import main


def test_peak_rss_sees_a_large_allocation():
    with PeakRSS() as peak:
        block = torch.ones(32 * 1024 * 1024 // 4)  # 32 MiB, touched
        del block
    assert peak.growth_mb >= 28


def test_infer_bench_rows_ratios_and_table(monkeypatch):
    import effnet.bench.harness

    # The fresh-process memory measurement itself is tested below; here each candidate gets a distinct
    # stand-in figure, so the test checks that every row carries its own candidate's measurement.
    fresh_process_mb = {("effnet", "eager"): 11.0, ("effnet", "channels_last"): 12.0,
                        ("torchvision", "eager"): 21.0, ("torchvision", "channels_last"): 22.0}
    measured = []

    def fake_isolated_peak_mb(cfg, impl, backend):
        measured.append((impl, backend))
        return fresh_process_mb[impl, backend]

    monkeypatch.setattr(effnet.bench.harness, "isolated_peak_mb", fake_isolated_peak_mb)
    cfg = BenchConfig(model="b0", batch=2, backends=("eager", "channels_last"), compare=("torchvision",),
                      resolution=32, rounds=2, iters=1, latency_iters=1, warmup=1, matmul_n=256)
    result = run_bench(cfg, log=lambda msg: None)
    assert [(r.impl, r.backend) for r in result.rows] == [
        ("effnet", "eager"), ("effnet", "channels_last"), ("torchvision", "eager"), ("torchvision", "channels_last")]
    assert measured == list(fresh_process_mb)
    peak = result.machine["matmul_peak_gflops_fp32"]
    for row in result.rows:
        assert row.batch_ms.iters == 2 and row.latency.iters == 2  # pooled over the rounds
        assert row.peak_mem_mb == fresh_process_mb[row.impl, row.backend]
        assert row.images_per_s == pytest.approx(2 / (row.batch_ms.p50_ms / 1e3))
        assert row.peak_fraction == pytest.approx(row.images_per_s * row.gflops_per_image / peak)
    ratios = result.ratios()
    assert {d["kind"] for d in ratios} == {"same backend", "vs reference eager", "best vs best"}
    eager = next(d for d in ratios if d["effnet"] == "effnet/eager" and d["kind"] == "same backend")
    assert eager["throughput"] == pytest.approx(result.rows[0].images_per_s / result.rows[2].images_per_s)
    nhwc = next(d for d in ratios if d["kind"] == "vs reference eager")
    assert (nhwc["effnet"], nhwc["reference"]) == ("effnet/channels_last", "torchvision/eager")
    assert nhwc["memory"] == pytest.approx(result.rows[1].peak_mem_mb / result.rows[2].peak_mem_mb)
    table = markdown_table(result)
    assert "| effnet | eager |" in table and "throughput ratio" in table
    # Only the peaks the backends need: no bf16 backend, no (slow where emulated) bf16 matmul.
    assert "matmul_peak_gflops_bf16" not in result.machine
    assert "bf16 not measured: no bf16 backend requested" in table
    assert table.splitlines()[0] == result.machine["cpu_features"] and "CPU: " in table.splitlines()[0]
    peers = peer_table(result)
    best_peer = max(result.rows[2:], key=lambda r: r.images_per_s)
    best_mine = max(result.rows[:2], key=lambda r: r.images_per_s)
    assert f"| fastest exact: {best_mine.backend} | torchvision/{best_peer.backend} |" in peers
    assert f"{best_mine.images_per_s / best_peer.images_per_s:.2f}x" in peers and "fastest int8" not in peers
    json.dumps(result.to_dict())


def test_bf16_peak_is_skipped_where_the_cpu_lacks_bf16(monkeypatch):
    import effnet.cpu
    from effnet.bench.machine import measure_peaks

    cfg = BenchConfig(backends=("eager", "bf16"), matmul_n=64)
    monkeypatch.setattr(effnet.cpu, "has_feature", lambda name: False)
    machine = {"threads": 1}
    measure_peaks(cfg.backends, cfg.matmul_n, machine, log=lambda msg: None)
    assert machine["matmul_peak_gflops_fp32"] > 0 and "matmul_peak_gflops_bf16" not in machine
    assert "lacks avx512_bf16 and amx" in machine["matmul_peak_bf16_skipped"]
    monkeypatch.setattr(effnet.cpu, "has_feature", lambda name: name == "amx")
    machine = {"threads": 1}
    measure_peaks(cfg.backends, cfg.matmul_n, machine, log=lambda msg: None)
    assert machine["matmul_peak_gflops_bf16"] > 0


def test_cpu_features_line_follows_proc_cpuinfo():
    from effnet.cpu import FEATURES, cpu_features, features_line

    features = cpu_features()
    if features is None:
        pytest.skip("no /proc/cpuinfo")
    flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    assert features["avx2"] == ("avx2" in flags) and features["avx512_vnni"] == ("avx512_vnni" in flags)
    line = features_line()
    assert line.startswith("CPU: ") and all(f in line for f in FEATURES)


def test_train_bench_cli_json(capsys):
    backends = "eager,checkpoint,plain_autograd"
    rc = main(["bench", "--model", "b0", "--batch", "2", "--mode", "train", "--backend", backends,
               "--compare", "timm", "--resolution", "32", "--rounds", "1", "--iters", "1", "--warmup", "1", "--json",
               "--memory-in-process"])
    assert rc == 0
    out = capsys.readouterr().out
    data = json.loads(out[: out.rindex("}") + 1])
    rows = [(r["impl"], r["backend"]) for r in data["rows"]]
    # timm has per-stage checkpointing; plain_autograd switches off effnet's own ops, so it is effnet only.
    assert rows == [("effnet", "eager"), ("effnet", "checkpoint"), ("effnet", "plain_autograd"),
                    ("timm", "eager"), ("timm", "checkpoint")]
    assert "effnet only" in data["skipped"]["timm/plain_autograd"]
    assert data["rows"][0]["latency"] is None


def test_isolated_memory_grows_with_the_batch():
    """The fresh-process measurement sees a training step's activations: 8x the batch, much more memory."""
    from effnet.bench.harness import isolated_peak_mb

    cfg = BenchConfig(model="b0", mode="train", backends=("eager",), compare=(), resolution=64, warmup=1,
                      latency=False, threads=1)
    small = isolated_peak_mb(dataclasses.replace(cfg, batch=2), "effnet", "eager")
    large = isolated_peak_mb(dataclasses.replace(cfg, batch=16), "effnet", "eager")
    assert 0 < small and large > small + 50, (small, large)  # B0 at 64 px keeps about 10 MB per image


def test_bad_backend_is_a_clear_error(capsys):
    assert main(["bench", "--backend", "tensorrt"]) == 2
    assert "tensorrt" in capsys.readouterr().err
