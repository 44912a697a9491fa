"""What a finished run leaves: ``model.safetensors`` (self-describing, for predict/eval/export),
``model_config.json``, ``classes.json``, the plots, the summary table and the list of skipped files.
The per-epoch CSV/TensorBoard writer and the plots themselves are :mod:`effnet.training.report`'s."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from effnet.arch.config import ModelConfig
from effnet.fileio import atomic_path, atomic_write_text
from effnet.training import report
from effnet.training.distributed import DistInfo


def export_weights(run_dir: Path, model: nn.Module, classes: list[str], image_size: int, model_config: ModelConfig,
                   preprocessing: Any) -> Path:  # noqa: ANN401 - a Preprocessing
    """``model.safetensors`` (the evaluated weights), ``model_config.json`` and ``classes.json``."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path = run_dir / "model.safetensors"
    # Self-contained: effnet predict/eval take classes, config and preprocessing from the file.
    metadata = {"format": "effnet", "classes": json.dumps(classes), "image_size": str(image_size),
                "effnet_config": json.dumps(model_config.to_dict()),
                "effnet_preprocessing": json.dumps(dataclasses.asdict(preprocessing))}
    with atomic_path(path, suffix=".safetensors") as tmp:
        tmp.write_bytes(save(state, metadata=metadata))  # Python writes: a full disk is an OSError
    model_config.save(run_dir / "model_config.json")
    atomic_write_text(run_dir / "classes.json", json.dumps(classes, indent=1) + "\n")
    return path


def export_or_explain(run_dir: Path, last_checkpoint: Path | None, resume_hint: str, **weights: Any) -> Path:  # noqa: ANN401
    """:func:`export_weights`; a full or read-only disk at the very end is one line: the checkpoints hold the run."""
    try:
        return export_weights(run_dir, **weights)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        kept = f"the checkpoint {last_checkpoint} holds the trained run" if last_checkpoint else \
            "no checkpoint was written"
        raise RuntimeError(f"could not write the weights to {run_dir} ({reason}); {kept}; free space, "
                           f"then {resume_hint} (it only writes the weights)") from None


def gather_skipped(skipped: list[str], info: DistInfo) -> list[str]:
    """Every rank's unreadable files, each once, in order of first report."""
    if info.enabled:
        gathered: list[Any] = [None] * info.world_size
        torch.distributed.all_gather_object(gathered, skipped)
        skipped = [s for part in gathered for s in part]
    return list(dict.fromkeys(skipped))


def print_summary(history: list[dict[str, Any]], skipped: list[str]) -> None:
    print(report.summary_table(history))
    if skipped:
        print(f"skipped {len(skipped)} unreadable file(s):")
        for s in skipped:
            print(f"  {s}")
