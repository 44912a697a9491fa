"""From a source (file, registry tag or in-memory state dict) to effnet tensors, numerics and preprocessing.

The numerics a weight set needs (padding and BatchNorm eps) follow from where it comes from:

==============  =========  =======  ===================================================
source          padding    BN eps   why
==============  =========  =======  ===================================================
torchvision     symmetric  1e-5     B0-B4 use nn.BatchNorm2d defaults ...
torchvision     symmetric  1e-3     ... B5-B7 are built with eps=1e-3
timm            symmetric  1e-5     ``efficientnet_*``: PyTorch-trained
timm_tf         same       1e-3     ``tf_efficientnet_*``: ported from TensorFlow
lukemelas       same       1e-3     EfficientNet-PyTorch ports TF checkpoints (and the Lite packages)
keras           same       1e-3     Keras pads like TF SAME and uses eps 1e-3
==============  =========  =======  ===================================================

A timm file does not say whether it is a ``tf_`` port; effnet looks at the checkpoint's ``arch``
entry, the registry tag, then the file name/path (``tf_efficientnet_...``). Pass
``source_format="timm_tf"`` when none of those tell.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from effnet.weights.convert import detect_naming, keras_to_effnet, to_effnet_names
from effnet.weights.formats import RawWeights, read_file, unwrap_state_dict
from effnet.weights.registry import (
    IMAGENET_STD,
    Preprocessing,
    WeightSet,
    get_weight_set,
    official_crop_pct,
    weight_set_for_file,
)

SOURCE_FORMATS = ("effnet", "torchvision", "timm", "timm_tf", "lukemelas", "keras")
_TF = {"padding": "same", "bn_eps": 1e-3}
_NUMERICS: dict[str, dict[str, Any]] = {
    "torchvision": {"padding": "symmetric", "bn_eps": 1e-5},
    "timm": {"padding": "symmetric", "bn_eps": 1e-5},
    "timm_tf": _TF,
    "lukemelas": _TF,
    "keras": _TF,
}
_TORCHVISION_EPS_1E3 = {"b5", "b6", "b7"}


@dataclass
class SourceWeights:
    """Weights under effnet names, with what is known about their origin."""

    state: dict[str, torch.Tensor]
    source_format: str
    path: Path | None = None
    weight_set: WeightSet | None = None
    preprocessing: Preprocessing | None = None
    config_hints: dict[str, Any] = field(default_factory=dict)
    looks_like: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        weight = self.state.get("classifier.weight")
        return 0 if weight is None else int(weight.shape[0])


_cache: dict[tuple[Any, ...], RawWeights] = {}


def _read_cached(path: Path) -> RawWeights:
    """One-slot cache: create_model reads a file twice (config, then tensors); read it once."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _cache:
        _cache.clear()
        _cache[key] = read_file(path)
    return _cache[key]


def clear_cache() -> None:
    _cache.clear()


def resolve_source(source: Any) -> tuple[RawWeights, WeightSet | None]:
    """A file path, a registry tag, or a state dict (possibly wrapped) -> raw tensors."""
    if isinstance(source, dict):
        hints: dict[str, Any] = {}
        return RawWeights(unwrap_state_dict(source, hints), "dict", None, hints), None
    if not isinstance(source, str | os.PathLike):
        raise TypeError(f"weights must be a file path, a registry tag or a state dict, got {type(source).__name__}")
    path = Path(source).expanduser()
    if path.is_file():
        # A released file under its published name brings its registry entry (preprocessing, numerics).
        return _read_cached(path), weight_set_for_file(path)
    ws = get_weight_set(str(source))
    if ws is not None:
        from effnet.weights.hub import fetch_weight_set

        return _read_cached(fetch_weight_set(ws)), ws
    raise FileNotFoundError(
        f"weights {str(source)!r}: no such file, and not a registry tag (e.g. lite0, torchvision/b0, "
        "keras/b3, timm/tf_efficientnet_b0.ns_jft_in1k; see effnet.weights.list_weights())"
    )


def _is_tf_port(raw: RawWeights, ws: WeightSet | None) -> bool:
    if ws is not None:
        return ws.source_format == "timm_tf"
    arch = str(raw.hints.get("arch", ""))
    if arch:
        return arch.startswith("tf_")
    return "tf_efficientnet" in str(raw.hints.get("path", "")).lower()


def _keras_preprocessing(norm: dict[str, np.ndarray] | None, resolution: int) -> Preprocessing | None:
    """Keras models normalise inside: Rescaling(1/255) -> Normalization(mean, variance).

    effnet models take normalised input, so those statistics become the preprocessing. The
    official Keras ImageNet files store the *std* in the variance slot (TF issue 49930; Keras then
    adds a Rescaling(1/sqrt(std)) when loading them as 'imagenet'); for those the std is the stored
    value, otherwise it is sqrt(variance).
    """
    if norm is None:
        return None
    mean, variance = norm["mean"], norm["variance"]
    if mean.size == 1:
        mean, variance = np.repeat(mean, 3), np.repeat(variance, 3)
    official = np.allclose(variance, IMAGENET_STD, atol=1e-4)
    std = variance if official else np.sqrt(np.maximum(variance, 0.0))
    std = np.maximum(std, 1e-7)  # keras: max(sqrt(var), epsilon)
    return Preprocessing(resolution, official_crop_pct(resolution), "bicubic",
                         tuple(float(x) for x in mean), tuple(float(x) for x in std))


def read_weights(
    source: Any, *, source_format: str | None = None, stage_lengths: list[int] | None = None
) -> SourceWeights:
    """Read ``source`` and return its tensors under effnet names plus numerics and preprocessing."""
    if source_format is not None and source_format not in SOURCE_FORMATS:
        raise ValueError(f"unknown source_format {source_format!r}; valid: {', '.join(SOURCE_FORMATS)}")
    raw, ws = resolve_source(source)
    norm = None
    if raw.container.startswith("keras"):
        naming = "keras"
        state, norm = keras_to_effnet(raw.tensors)
    else:
        naming = detect_naming(list(raw.tensors))
        state = to_effnet_names(raw.tensors, naming, stage_lengths)
    fmt = source_format or naming
    if fmt == "timm" and source_format is None and _is_tf_port(raw, ws):
        fmt = "timm_tf"
    from effnet.weights.sizes import guess_models

    looks_like = guess_models(state)
    hints = dict(_NUMERICS.get(fmt, {}))
    if fmt == "torchvision" and looks_like and looks_like[0] in _TORCHVISION_EPS_1E3:
        hints["bn_eps"] = 1e-3
    if fmt == "effnet" and isinstance(raw.hints.get("config"), dict):
        saved = raw.hints["config"]
        hints = {k: saved[k] for k in ("padding", "bn_eps", "activation") if k in saved}
    prep = ws.preprocessing if ws is not None else None
    if prep is None and isinstance(raw.hints.get("preprocessing"), dict):
        p = raw.hints["preprocessing"]
        prep = Preprocessing(p["resolution"], p["crop_pct"], p["interpolation"], tuple(p["mean"]), tuple(p["std"]))
    if naming == "keras":
        from effnet.arch.config import NAMED_CONFIGS

        res = NAMED_CONFIGS[looks_like[0]].resolution if looks_like else 224
        prep = _keras_preprocessing(norm, prep.resolution if prep else res) or prep
    return SourceWeights(state, fmt, raw.path, ws, prep, hints, looks_like)


def adapt_stem(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """An RGB stem for ``in_chans`` inputs: summed for 1 channel, else tiled and rescaled."""
    if in_chans == weight.shape[1]:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = math.ceil(in_chans / weight.shape[1])
    return weight.repeat(1, reps, 1, 1)[:, :in_chans] * (weight.shape[1] / in_chans)
