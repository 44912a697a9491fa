"""Serving throughput and latency against the model's offline figures, measured side by side (issue 17, part 4).

    python benchmarks/serve.py [--requests 96] [--threads 1] [--backends eager,onnxruntime] [--photo FILE]

For each backend and for `--max-batch-size 1` and the default 8, starts `effnet serve` (a subprocess on
loopback), sends a fixed number of requests (one JPEG each) at concurrency 1, 4, 16 and 64 from
persistent keep-alive connections, and prints throughput and p50/p99 latency beside the offline
figures of the same model and backend from the same run: model-only batch-8 throughput and batch-1
latency, timed with effnet.bench.timing as `effnet bench` times them (in a process of its own). Then an
overload run at twice capacity: p99 latency of the 503 answers and the server's RSS over 10,000
requests. Writes the table into docs/serving.md (between the bench markers) and docs/serving.png.
Every loop is bounded: a fixed number of requests, each with a timeout.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONCURRENCY = (1, 4, 16, 64)
ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONUNBUFFERED": "1"}
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def cpu_line() -> str:
    from effnet.cpu import features_line

    return f"{features_line()}; {os.cpu_count()} cores; load average at start: {os.getloadavg()[0]:.1f}"


def photo_bytes(path: str | None) -> bytes:
    if path:
        return Path(path).read_bytes()
    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.chelsea()).save(buf, "JPEG", quality=90)
    return buf.getvalue()


OFFLINE = """
import json, sys, torch
from effnet.bench.timing import time_callable
from effnet.deploy.pipeline import load_classifier
c = load_classifier("lite0", "lite0", sys.argv[1])
x8, x1 = torch.randn(8, 3, c.image_size, c.image_size), torch.randn(1, 3, c.image_size, c.image_size)
b8 = time_callable(lambda: c.logits(x8), warmup=2, iters=int(sys.argv[2]))
b1 = time_callable(lambda: c.logits(x1), warmup=2, iters=3 * int(sys.argv[2]))
print(json.dumps({"images_per_s": 8000 / b8.p50_ms, "latency_s": b1.p50_ms / 1000}))
"""


def offline(backend: str, threads: int, iters: int = 10) -> tuple[float, float]:
    """Model-only figures of the same classifier the server runs, timed as `effnet bench` times them
    (effnet.bench.timing, same threads, own process): (images/s at batch 8, batch-1 p50 latency in s)."""
    out = subprocess.run([sys.executable, "-c", OFFLINE, backend, str(iters)], capture_output=True, text=True,
                         env={**ENV, "OMP_NUM_THREADS": str(threads)}, timeout=1800, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["images_per_s"], result["latency_s"]


class Server:
    def __init__(self, backend: str, max_batch: int, threads: int, *extra: str) -> None:
        self.log = open(DOCS.parent / f".serve-bench-{os.getpid()}.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "effnet", "serve", "--weights", "lite0", "--port", "0",
                                      "--backend", backend, "--max-batch-size", str(max_batch), "--threads",
                                      str(threads), *extra], stdout=subprocess.DEVNULL, stderr=self.log,
                                     env={**ENV, "OMP_NUM_THREADS": str(threads)})
        end = time.monotonic() + 600
        while time.monotonic() < end:
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", Path(self.log.name).read_text())
            if found:
                self.port = int(found.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"effnet serve did not start: {Path(self.log.name).read_text()}")

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s*(\d+)", status).group(1)) / 1024

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(120)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def load(port: int, body: bytes, requests: int, concurrency: int) -> dict:
    """``requests`` POSTs from ``concurrency`` keep-alive connections: statuses, latencies (s), wall time."""
    lock, counter, results = threading.Lock(), [0], []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if counter[0] >= requests:
                    break
                counter[0] += 1
            t0 = time.perf_counter()
            conn.request("POST", "/predict?top=1", body, {"Content-Type": "image/jpeg"})
            resp = conn.getresponse()
            resp.read()
            elapsed = time.perf_counter() - t0
            with lock:
                results.append((resp.status, elapsed))
            if resp.getheader("connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(1800)
    wall = time.perf_counter() - t0
    ok = sorted(s for code, s in results if code == 200)
    rejected = sorted(s for code, s in results if code == 503)
    return {"ok": len(ok), "rejected": len(rejected), "other": len(results) - len(ok) - len(rejected),
            "wall": wall, "throughput": len(ok) / wall, "p50": pct(ok, 50), "p99": pct(ok, 99),
            "reject_p99": pct(rejected, 99)}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=96, help="requests per concurrency level (default 96)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, server and offline alike (default 1)")
    ap.add_argument("--backends", default="eager,onnxruntime")
    ap.add_argument("--overload-requests", type=int, default=10_000)
    ap.add_argument("--photo", default=None, help="a JPEG to send (default: scikit-image's cat)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = ap.parse_args()
    body = photo_bytes(args.photo)
    print(cpu_line(), flush=True)
    rows, ratios, curves = [], [], {}
    for backend in args.backends.split(","):
        offline_ips, offline_lat = offline(backend, args.threads)
        print(f"{backend}: offline batch-8 {offline_ips:.1f} images/s, batch-1 latency {offline_lat * 1000:.1f} ms",
              flush=True)
        by_batch = {}
        for max_batch in (1, 8):
            server = Server(backend, max_batch, args.threads, "--deadline-ms", "600000", "--max-queue", "256")
            try:
                load(server.port, body, 8, 2)  # warm the connection path
                for c in CONCURRENCY:
                    r = load(server.port, body, max(args.requests, c), c)
                    by_batch[(max_batch, c)] = r
                    rows.append((backend, max_batch, c, r, offline_ips))
                    print(f"  max-batch {max_batch} c={c:>2}: {r['throughput']:6.1f} images/s  p50 {r['p50'] * 1000:7.1f}"
                          f" ms  p99 {r['p99'] * 1000:7.1f} ms  ({r['ok']} ok, {r['rejected']} 503, {r['other']} other)",
                          flush=True)
            finally:
                server.stop()
        curves[backend] = by_batch
        c16, c16_b1, c1 = by_batch[(8, 16)], by_batch[(1, 16)], by_batch[(8, 1)]
        ratios += [
            (backend, "server at c=16 / offline batch-8 throughput", c16["throughput"] / offline_ips, ">= 0.7"),
            (backend, "batching (max 8) / --max-batch-size 1 at c=16", c16["throughput"] / c16_b1["throughput"],
             ">= 1.15"),
            (backend, "p50 at c=1 / offline batch-1 latency", c1["p50"] / offline_lat, "<= 1.5"),
        ]
    overload = overload_run(body, args)
    for backend, what, value, target in ratios:
        print(f"RATIO {backend}: {what} = {value:.2f} (target {target})")
    print(f"OVERLOAD: {overload}")
    if not args.no_write:
        write_docs(rows, ratios, overload, curves)


def overload_run(body: bytes, args: argparse.Namespace) -> dict:
    """Twice capacity (queue 16 + batch 8 = 24 in flight; 48 clients): rejections' p99 and RSS over the run."""
    server = Server("eager", 8, args.threads, "--max-queue", "16")
    try:
        load(server.port, body, 8, 2)
        first = load(server.port, body, 1000, 48)
        rss_after_1k = server.rss_mb()
        rest = load(server.port, body, max(0, args.overload_requests - 1000), 48)
        rss_end = server.rss_mb()
    finally:
        server.stop()
    total = args.overload_requests
    return {"requests": total, "ok": first["ok"] + rest["ok"], "rejected": first["rejected"] + rest["rejected"],
            "other": first["other"] + rest["other"], "reject_p99_ms": round(rest["reject_p99"] * 1000, 2),
            "rss_after_1000_mb": round(rss_after_1k, 1), "rss_end_mb": round(rss_end, 1)}


def write_docs(rows: list, ratios: list, overload: dict, curves: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from effnet.fileio import atomic_write_text, save_figure

    lines = [START, "", f"Measured by `python benchmarks/serve.py` on {time.strftime('%Y-%m-%d')}. {cpu_line()}.", "",
             "| backend | --max-batch-size | concurrency | images/s | p50 ms | p99 ms | 503 | offline batch-8 images/s |",
             "|---|---|---|---|---|---|---|---|"]
    for backend, mb, c, r, off in rows:
        lines.append(f"| {backend} | {mb} | {c} | {r['throughput']:.1f} | {r['p50'] * 1000:.1f} | "
                     f"{r['p99'] * 1000:.1f} | {r['rejected']} | {off:.1f} |")
    lines += ["", "| backend | ratio | measured | target |", "|---|---|---|---|"]
    for backend, what, value, target in ratios:
        op, bound = target.split()
        met = value >= float(bound) if op == ">=" else value <= float(bound)
        lines.append(f"| {backend} | {what} | {value:.2f} | {target} ({'met' if met else 'not met'}) |")
    lines += ["", f"Overload at twice capacity (`--max-queue 16`, batch 8, 48 clients, {overload['requests']:,} "
              f"requests): {overload['ok']:,} answered 200, {overload['rejected']:,} answered 503, "
              f"{overload['other']} other; 503 p99 {overload['reject_p99_ms']} ms (target < 10 ms); server RSS "
              f"{overload['rss_after_1000_mb']} MB after 1,000 requests, {overload['rss_end_mb']} MB at the end.", "",
              "![throughput and latency against concurrency](serving.png)", "", END]
    doc = DOCS / "serving.md"
    text = doc.read_text() if doc.exists() else f"# Serving\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    atomic_write_text(doc, head + "\n".join(lines) + tail)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for backend, by_batch in curves.items():
        for mb, style in ((1, "--"), (8, "-")):
            xs = list(CONCURRENCY)
            ax1.plot(xs, [by_batch[(mb, c)]["throughput"] for c in xs], style, marker="o", label=f"{backend}, max batch {mb}")
            ax2.plot(xs, [by_batch[(mb, c)]["p50"] * 1000 for c in xs], style, marker="o", label=f"{backend} {mb} p50")
            ax2.plot(xs, [by_batch[(mb, c)]["p99"] * 1000 for c in xs], style, marker="x", alpha=0.5,
                     label=f"{backend} {mb} p99")
    for ax, title in ((ax1, "throughput (images/s)"), (ax2, "latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(CONCURRENCY), [str(c) for c in CONCURRENCY])
        ax.set_xlabel("concurrent clients")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    ax2.set_yscale("log")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=6, ncol=2)
    fig.suptitle("effnet serve, Lite0 on loopback")
    fig.tight_layout()
    save_figure(fig, DOCS / "serving.png")


if __name__ == "__main__":
    main()
