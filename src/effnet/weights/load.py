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

A timm file does not say whether it is a ``tf_`` port; effnet looks at the registry tag, the
checkpoint's own ``arch`` entry, then the file's *own* name (``tf_efficientnet_b0...`` vs
``efficientnet_b0...``; never the folders above it). When none of those tell, it assumes a
PyTorch-trained file and warns once, naming ``source_format="timm_tf"``.

A ``source_format`` must agree with the key names (``timm_tf`` is timm's naming); one that
contradicts them is refused rather than giving wrong numerics. Weights with NaN or infinite values
and saved configurations that no network can use (e.g. ``bn_eps=-1``) are refused too.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from effnet.choices import SOURCE_FORMATS
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
from effnet.weights.verify import name_carries_hash, verify_file

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


def resolve_source(source: Any) -> tuple[RawWeights, WeightSet | None]:
    """A file path, a registry tag, or a state dict (possibly wrapped) -> raw tensors."""
    if isinstance(source, dict):
        hints: dict[str, Any] = {}
        return RawWeights(unwrap_state_dict(source, hints), "dict", None, hints), None
    if not isinstance(source, str | os.PathLike):
        raise TypeError(f"weights must be a file path, a registry tag or a state dict, got {type(source).__name__}")
    path = Path(source).expanduser()
    if path.is_file():
        # A released file under its published name brings its registry entry (preprocessing, numerics);
        # a name that carries the published hash is checked against it before the file is read.
        ws = weight_set_for_file(path)
        if name_carries_hash(ws, path):
            verify_file(path, ws, f"use the tag {ws.tag!r} (the verified original), or give your own file another name")
        return read_file(path), ws
    ws = get_weight_set(str(source))
    if ws is not None:
        from effnet.weights.hub import fetch_weight_set

        return read_file(fetch_weight_set(ws)), ws
    raise FileNotFoundError(
        f"weights {str(source)!r}: no such file, and not a registry tag (e.g. lite0, torchvision/b0, "
        "keras/b3, timm/tf_efficientnet_b0.ns_jft_in1k; see effnet.weights.list_weights())"
    )


# The naming each source format's files use (a tf_ port is timm-named; effnet names carry any numerics).
_NAMING_OF_FORMAT = {"effnet": "effnet", "torchvision": "torchvision", "timm": "timm", "timm_tf": "timm",
                     "lukemelas": "lukemelas", "keras": "keras"}
_warned_undecided: set[str] = set()


def _is_tf_port(raw: RawWeights, ws: WeightSet | None) -> bool | None:
    """True/False when the registry entry, the checkpoint's ``arch`` or the file's own name tells; else None."""
    if ws is not None:
        return ws.source_format == "timm_tf"
    for key in ("arch", "model_name"):
        arch = raw.hints.get(key)
        if isinstance(arch, str) and arch:
            return arch.lower().split("/")[-1].startswith("tf_")
    name = str(raw.hints.get("filename", "")).lower()
    if "efficientnet" in name:
        return "tf_efficientnet" in name
    return None


def _warn_undecided(raw: RawWeights, key: str) -> None:
    if key in _warned_undecided:
        return
    _warned_undecided.add(key)
    what = f"the timm weights {raw.path}" if raw.path else "these timm weights"
    warnings.warn(
        f"cannot tell whether {what} are a TensorFlow port (tf_efficientnet_*: TF 'same' padding, BN eps 1e-3) "
        "or PyTorch-trained (efficientnet_*): neither the checkpoint nor the file name says; assuming "
        "PyTorch-trained. For a tf_ port pass source_format=\"timm_tf\" (CLI: --source-format timm_tf)",
        stacklevel=4,
    )


def _check_format_matches(source_format: str, naming: str, keys: list[str], where: str) -> None:
    """A declared source format must be one whose files use these key names (effnet names suit any)."""
    if naming == "effnet" or _NAMING_OF_FORMAT[source_format] == naming:
        return
    fits = [f for f, n in _NAMING_OF_FORMAT.items() if n == naming]
    raise ValueError(
        f"source format {source_format!r} contradicts {where}: their tensor names are {naming}'s "
        f"(e.g. {keys[0]}); leave source_format / --source-format out, or use {' or '.join(fits)}"
    )


def _check_finite(state: dict[str, torch.Tensor], where: str) -> None:
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            bad = int((~torch.isfinite(value)).sum())
            raise ValueError(
                f"refused {where}: tensor {key} has {bad} NaN/infinite value(s) of {value.numel()}; the file is "
                "corrupt or comes from a diverged training run"
            )


def _saved_config_hints(saved: dict[str, Any], where: str) -> dict[str, Any]:
    """The numerics in an effnet file's saved config, refused when no network can use them."""
    from effnet.arch.config import ModelConfig

    hints = {k: saved[k] for k in ("padding", "bn_eps", "activation") if k in saved}
    try:
        ModelConfig(name="saved", **hints)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"refused {where}: its saved model configuration is invalid ({exc})") from None
    return hints


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
    """Read ``source`` and return its tensors under effnet names plus numerics and preprocessing.

    ``stage_lengths`` (blocks per stage) places flat-numbered blocks (lukemelas files); without it
    they are read from the file. Read once, the result goes to :func:`effnet.weights.load_weights`.
    """
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
    where = f"the weights in {raw.path}" if raw.path else "these weights"
    if source_format is not None:
        _check_format_matches(source_format, naming, list(raw.tensors), where)
    _check_finite(state, where)
    fmt = source_format or naming
    if fmt == "timm" and source_format is None:
        tf_port = _is_tf_port(raw, ws)
        if tf_port is None:
            _warn_undecided(raw, str(raw.path) if raw.path else f"dict-{id(source)}")
        fmt = "timm_tf" if tf_port else "timm"
    from effnet.weights.sizes import guess_models

    looks_like = guess_models(state)
    hints = dict(_NUMERICS.get(fmt, {}))
    if fmt == "torchvision" and looks_like and looks_like[0] in _TORCHVISION_EPS_1E3:
        hints["bn_eps"] = 1e-3
    if fmt == "effnet" and isinstance(raw.hints.get("config"), dict):
        hints = _saved_config_hints(raw.hints["config"], where)
    prep = ws.preprocessing if ws is not None else None
    if prep is None and isinstance(raw.hints.get("preprocessing"), dict):
        p = raw.hints["preprocessing"]
        prep = Preprocessing(p["resolution"], p["crop_pct"], p["interpolation"], tuple(p["mean"]), tuple(p["std"]),
                             p.get("crop_mode", "center"), p.get("test_resolution"), p.get("test_crop_pct"))
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
