"""Pretrained weights from every ecosystem: read, convert to effnet names, check, load.

- :func:`load_weights` puts a file / registry tag / state dict into a model, refusing (with the
  missing, unexpected and mis-shaped keys named) anything that does not fit.
- :func:`prepare_config_for_weights` sets the numerics a source needs (TF SAME padding, BN eps).
- :func:`convert_file` writes any supported source as safetensors with effnet names.
- :func:`list_weights` / :func:`get_weight_set`: the registry of released weights.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from effnet.arch.config import ModelConfig, get_config
from effnet.fileio import atomic_path
from effnet.weights.formats import UnsafeWeightsError
from effnet.weights.load import SourceWeights, adapt_stem, read_weights
from effnet.weights.registry import Preprocessing, WeightSet, get_weight_set, list_weights
from effnet.weights.sizes import expected_shapes, guess_models, mismatch, mismatch_message

__all__ = [
    "Preprocessing",
    "SourceWeights",
    "UnsafeWeightsError",
    "WeightSet",
    "WeightsMismatchError",
    "convert_file",
    "convert_state_dict",
    "get_weight_set",
    "guess_models",
    "list_weights",
    "load_weights",
    "prepare_config_for_weights",
    "read_weights",
]


class WeightsMismatchError(ValueError):
    """The weights do not fit the model (wrong size, wrong variant or not an EfficientNet)."""


def _stage_lengths(model: nn.Module) -> list[int] | None:
    stages = getattr(model, "stages", None)
    return [len(s) for s in stages] if stages is not None else None


def prepare_config_for_weights(config: ModelConfig | str, source: Any, source_format: str | None = None) -> ModelConfig:
    """``config`` with the padding and BatchNorm eps that ``source``'s weights (or a read ``SourceWeights``)
    were trained with."""
    config = get_config(config)
    sw = source if isinstance(source, SourceWeights) else read_weights(source, source_format=source_format)
    return config.replace(**sw.config_hints) if sw.config_hints else config


def _fit_head_and_stem(model: nn.Module, state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> None:
    """Adapt to the model's in_chans; keep the model's own classifier when the class count differs."""
    stem = state.get("stem.conv.weight")
    want = target.get("stem.conv.weight")
    if stem is not None and want is not None and stem.dim() == 4 and stem.shape[1] != want.shape[1]:
        state["stem.conv.weight"] = adapt_stem(stem, want.shape[1])
    if "classifier.weight" not in state and "classifier.weight" in target and "head.conv.weight" in state:
        warnings.warn(
            "the weights have no classifier (a backbone / 'notop' file): the model's classifier keeps its fresh "
            "initialisation",
            stacklevel=3,
        )
        state["classifier.weight"], state["classifier.bias"] = target["classifier.weight"], target["classifier.bias"]
    elif "classifier.weight" in state and "classifier.weight" not in target:
        state.pop("classifier.weight")
        state.pop("classifier.bias", None)
    elif "classifier.weight" in state and state["classifier.weight"].shape[0] != target["classifier.weight"].shape[0]:
        warnings.warn(
            f"the weights have a {state['classifier.weight'].shape[0]}-class classifier, the model "
            f"{target['classifier.weight'].shape[0]} classes: the classifier keeps its fresh initialisation",
            stacklevel=3,
        )
        state["classifier.weight"], state["classifier.bias"] = target["classifier.weight"], target["classifier.bias"]
    # TF/Keras files have no BN batch counters; they carry no information, start them at 0.
    for key in target:
        if key.endswith("num_batches_tracked") and key not in state and key.replace("num_batches_tracked", "weight") in state:
            state[key] = torch.zeros((), dtype=torch.long)


def _warn_numerics(model: nn.Module, sw: SourceWeights) -> None:
    config = getattr(model, "config", None)
    if config is None:
        return
    off = {k: v for k, v in sw.config_hints.items() if getattr(config, k, v) != v}
    if off:
        now = {k: getattr(config, k) for k in off}
        warnings.warn(
            f"{sw.source_format} weights expect {off} but the model has {now}; outputs will differ from the "
            "original. Build it with effnet.create_model(name, weights=...) which sets these.",
            stacklevel=3,
        )


def load_weights(
    model: nn.Module, source: Any, strict: bool = True, source_format: str | None = None
) -> SourceWeights:
    """Load ``source`` (file path, registry tag, state dict, or weights already read by
    :func:`read_weights`) into an effnet ``model``.

    With ``strict`` any missing, unexpected or mis-shaped tensor refuses the load (nothing is
    changed); a different class count only keeps the model's classifier (with a warning).
    Returns the :class:`SourceWeights` (format, preprocessing, ...).
    """
    if isinstance(source, SourceWeights):
        sw = source
    else:
        sw = read_weights(source, source_format=source_format, stage_lengths=_stage_lengths(model))
    target = model.state_dict()
    state = dict(sw.state)
    _fit_head_and_stem(model, state, target)
    shapes = {k: tuple(v.shape) for k, v in target.items()}
    missing, unexpected, shaped = mismatch(shapes, state)
    if missing or unexpected or shaped:
        what = f"{sw.source_format} weights" + (f" from {sw.path}" if sw.path else "")
        message = mismatch_message(what, model.config, missing, unexpected, shaped, sw.looks_like, state)
        if strict:
            raise WeightsMismatchError(message)
        warnings.warn(message, stacklevel=2)
        bad = set(unexpected) | {s.split(":")[0] for s in shaped}
        state = {k: v for k, v in state.items() if k not in bad}
    model.load_state_dict(state, strict=False)
    _warn_numerics(model, sw)
    return sw


class _ModelLayout:
    """What :func:`load_weights` reads of a model, from its config alone: state-dict names and shapes.

    The tensors are on the meta device (no memory); loading replaces them. Weights never build the
    network itself: :mod:`effnet.factory` builds it and loads through them.
    """

    def __init__(self, config: ModelConfig, in_chans: int, num_classes: int) -> None:
        from effnet.arch.scaling import block_specs, head_channels

        self.config = config
        self.stages = block_specs(config)  # one list of blocks per stage, as model.stages
        shapes = dict(expected_shapes(config))
        shapes["stem.conv.weight"] = (shapes["stem.conv.weight"][0], in_chans, 3, 3)
        if num_classes:
            shapes.update({"classifier.weight": (num_classes, head_channels(config)), "classifier.bias": (num_classes,)})
        self.state = {k: torch.empty(shape, device="meta") for k, shape in shapes.items()}
        for key in [k for k in shapes if k.endswith(".running_var")]:
            self.state[key.replace("running_var", "num_batches_tracked")] = torch.empty((), dtype=torch.long, device="meta")

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.state)

    def load_state_dict(self, state: dict[str, torch.Tensor], strict: bool = False) -> None:
        self.state.update(state)


def convert_state_dict(source: Any, model: str | ModelConfig, source_format: str | None = None) -> tuple[dict[str, torch.Tensor], ModelConfig, SourceWeights]:
    """Read ``source`` and return (effnet state dict checked against ``model``, the config it needs, info)."""
    config = get_config(model)
    from effnet.arch.scaling import block_specs

    sw = read_weights(source, source_format=source_format, stage_lengths=[len(s) for s in block_specs(config)])
    config = prepare_config_for_weights(config, sw)
    stem = sw.state.get("stem.conv.weight")
    in_chans = int(stem.shape[1]) if stem is not None else 3
    layout = _ModelLayout(config, in_chans, sw.num_classes)
    load_weights(layout, sw, strict=True)
    return layout.state_dict(), config, sw


def convert_file(src: Any, dst: str | Path, model: str | ModelConfig, source_format: str | None = None) -> Path:
    """Write ``src`` as a safetensors file with effnet names (atomically); the config and preprocessing go in its metadata."""
    from safetensors.torch import save_file

    state, config, sw = convert_state_dict(src, model, source_format)
    meta = {"format": "pt", "effnet_config": json.dumps(config.to_dict()), "effnet_source_format": sw.source_format}
    from effnet.weights.preprocessing import preprocessing_for

    prep = sw.preprocessing or preprocessing_for(config)
    meta["effnet_preprocessing"] = json.dumps(prep.__dict__)
    dst = Path(dst)
    with atomic_path(dst) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, tmp, metadata=meta)
    return dst
