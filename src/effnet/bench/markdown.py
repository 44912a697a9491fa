"""A benchmark's results as GitHub markdown: every row with the effnet/reference ratios, effnet against the
fastest peer path, and the accuracy of every path. Measuring is :mod:`effnet.bench.harness`'s."""

from __future__ import annotations

from operator import attrgetter

from effnet.bench.harness import BenchResult

_speed = attrgetter("images_per_s")


def accuracy_table(result: BenchResult) -> str:
    """Top-1/top-5 and agreement with fp32 of the rows that were scored, as GitHub markdown ('' if none)."""
    info = result.machine.get("accuracy_data")
    rows = [r for r in result.rows if r.accuracy is not None]
    if not info or not rows:
        return ""
    lines = [f"Accuracy of {result.config.model} + {info['weights']} on {info['images']} images of {info['folder']} "
             f"({info['calibration_images']} others calibrate int8); {result.machine.get('cpu_features', '')}:", "",
             "| backend | top-1 % | top-5 % | top-1 agreement with fp32 % | images/s |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        a = r.accuracy
        lines.append(f"| {r.backend} | {a.top1:.1f} | {a.top5:.1f} | {a.agreement:.1f} | {r.images_per_s:.1f} |")
    return "\n".join(lines)


#: lossy paths: never effnet's "exact" path, never a peer's fp32 path
LOSSY = ("bf16", "onnxruntime_int8", "executorch_int8")


def peer_table(result: BenchResult) -> str:
    """effnet's fastest exact (fp32) path and fastest int8 path against the fastest fp32 path of any
    reference, at the large batch and at batch 1, as GitHub markdown ('' without references)."""
    mine = [r for r in result.rows if r.impl == "effnet"]
    peers = [r for r in result.rows if r.impl != "effnet" and r.backend not in LOSSY]
    if not mine or not peers:
        return ""
    exact = [r for r in mine if r.backend not in LOSSY]
    int8 = [r for r in mine if r.backend.endswith("_int8")]
    lines = [f"effnet against the fastest peer path ({result.machine.get('cpu_features', '')}):", "",
             f"| effnet path | fastest peer path | batch {result.config.batch} images/s | ratio | "
             "fastest peer at batch 1 | b=1 p50 ms | ratio |", "|---|---|---:|---:|---|---:|---:|"]
    best_peer = max(peers, key=_speed)
    lat_peers = [r for r in peers if r.latency]
    best_peer1 = min(lat_peers, key=lambda r: r.latency.p50_ms) if lat_peers else None
    for label, rows in (("fastest exact", exact), ("fastest int8", int8)):
        if not rows:
            continue
        a = max(rows, key=_speed)
        cells = [f"{label}: {a.backend}", f"{best_peer.impl}/{best_peer.backend}",
                 f"{a.images_per_s:.1f} vs {best_peer.images_per_s:.1f}", f"{a.images_per_s / best_peer.images_per_s:.2f}x"]
        lat_rows = [r for r in rows if r.latency]
        if best_peer1 and lat_rows:
            a1 = min(lat_rows, key=lambda r: r.latency.p50_ms)
            cells += [f"{best_peer1.impl}/{best_peer1.backend} (effnet: {a1.backend})",
                      f"{a1.latency.p50_ms:.1f} vs {best_peer1.latency.p50_ms:.1f}",
                      f"{best_peer1.latency.p50_ms / a1.latency.p50_ms:.2f}x"]
        else:
            cells += ["-", "-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(result: BenchResult) -> str:
    """The rows and the effnet/reference ratios as GitHub markdown."""
    cfg = result.config
    machine = result.machine
    bf16 = (f"{machine['matmul_peak_gflops_bf16']:.0f} bf16" if "matmul_peak_gflops_bf16" in machine
            else f"bf16 not measured: {machine.get('matmul_peak_bf16_skipped', 'skipped')}")
    lines = [
        machine.get("cpu_features", ""),
        f"Model {cfg.model}, mode {cfg.mode}, batch {cfg.batch}, {machine['threads']} threads; "
        f"matmul peak {machine['matmul_peak_gflops_fp32']:.0f} GFLOP/s fp32, {bf16}.",
        "",
        "| implementation | backend | images/s | batch ms p50 | b=1 p50 ms | b=1 p90 ms | peak mem MB | % of matmul peak |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result.rows:
        p50 = f"{r.latency.p50_ms:.1f}" if r.latency else "-"
        p90 = f"{r.latency.p90_ms:.1f}" if r.latency else "-"
        frac = f"{100 * r.peak_fraction:.1f}" if r.peak_fraction == r.peak_fraction else "-"  # NaN: peak skipped
        lines.append(f"| {r.impl} | {r.backend} | {r.images_per_s:.1f} | {r.batch_ms.p50_ms:.0f} | {p50} | {p90} | "
                     f"{r.peak_mem_mb:.0f} | {frac} |")
    ratios = result.ratios()
    if ratios:
        lines += ["", "| effnet | reference | kind | throughput ratio | b=1 latency ratio | memory ratio |",
                  "|---|---|---|---:|---:|---:|"]
        for d in ratios:
            lat = f"{d['latency_p50']:.2f}x" if "latency_p50" in d else "-"
            lines.append(f"| {d['effnet']} | {d['reference']} | {d['kind']} | {d['throughput']:.2f}x | {lat} | "
                         f"{d['memory']:.2f}x |")
    for key, why in result.skipped.items():
        lines.append(f"\nskipped {key}: {why}")
    return "\n".join(lines)
