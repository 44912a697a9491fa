"""What a person sees: per-epoch CSV and TensorBoard, the end summary table and PNG plots."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from effnet.fileio import atomic_path, save_figure

CSV_NAME = "metrics.csv"
PLOT_NAMES = ("loss.png", "accuracy.png", "lr.png")


class MetricsWriter:
    """Rewrites ``metrics.csv`` from the full history each epoch (so a resumed run stays consistent)
    and appends scalars to TensorBoard when available."""

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
            except ImportError:  # tensorboard not installed: CSV and plots still work
                self.tb = None

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.tb is not None:
            self.tb.add_scalar(tag, value, step)

    def epoch(self, history: list[dict[str, Any]]) -> None:
        write_csv(history, self.run_dir / CSV_NAME)
        if self.tb is not None and history:
            row = history[-1]
            for key, value in row.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                    self.tb.add_scalar(f"epoch/{key}", value, row["step"])
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def write_csv(history: list[dict[str, Any]], path: Path) -> None:
    if not history:
        return
    fields = list(dict.fromkeys(k for row in history for k in row))
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(history)


def summary_table(history: list[dict[str, Any]]) -> str:
    """A plain-text table of the per-epoch metrics."""
    cols = [("epoch", "{:>5}"), ("train_loss", "{:>10.4f}"), ("val_loss", "{:>8.4f}"), ("val_top1", "{:>8.2f}"),
            ("val_top5", "{:>8.2f}"), ("lr", "{:>9.2e}"), ("images_per_sec", "{:>8.1f}")]
    heads = ["epoch", "train loss", "val loss", "top-1 %", "top-5 %", "lr", "img/s"]
    widths = [max(len(h), len(fmt.format(0.0 if k != "epoch" else 0))) for h, (k, fmt) in zip(heads, cols)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths))]
    for row in history:
        cells = []
        for (key, fmt), w in zip(cols, widths):
            value = row.get(key)
            text = "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)
            cells.append(text.strip().rjust(w))
        lines.append("  ".join(cells))
    return "\n".join(lines)


def save_plots(history: list[dict[str, Any]], run_dir: Path) -> list[Path]:
    """loss.png, accuracy.png and lr.png in ``run_dir`` (matplotlib's Agg backend, no display)."""
    if not history:
        return []
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    specs = [
        ("loss.png", "loss", [("train_loss", "train"), ("val_loss", "validation")]),
        ("accuracy.png", "accuracy (%)", [("val_top1", "val top-1"), ("val_top5", "val top-5")]),
        ("lr.png", "learning rate", [("lr", "lr at epoch end")]),
    ]
    paths = []
    for name, ylabel, series in specs:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for key, label in series:
            values = [row.get(key, float("nan")) for row in history]
            ax.plot(epochs, values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
        paths.append(save_figure(fig, Path(run_dir) / name, dpi=100))
    return paths
