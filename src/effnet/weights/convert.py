"""Key-name (and layout) mapping from every supported ecosystem to effnet's state-dict names.

effnet names: ``stem.{conv,bn}``, ``stages.S.B.{expand,dw,project}.{conv,bn}``,
``stages.S.B.se.{reduce,expand}``, ``head.{conv,bn}``, ``classifier``.

Each converter renames keys it understands and keeps keys it does not under their own name, so
they surface as "unexpected" when loading instead of silently vanishing.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

NAMINGS = ("effnet", "torchvision", "timm", "lukemelas", "keras")


def detect_naming(keys: Sequence[str]) -> str:
    """Which ecosystem's names a state dict uses, from its keys."""
    keyset = set(keys)
    if "stem.conv.weight" in keyset or any(k.startswith("stages.") for k in keyset):
        return "effnet"
    if "features.0.0.weight" in keyset:
        return "torchvision"
    if "conv_stem.weight" in keyset or any(k.startswith("blocks.") for k in keyset):
        return "timm"
    if "_conv_stem.weight" in keyset or any(k.startswith("_blocks.") for k in keyset):
        return "lukemelas"
    if "stem_conv" in keyset:
        return "keras"
    sample = ", ".join(sorted(keyset)[:5])
    raise ValueError(
        "cannot tell which EfficientNet implementation wrote these weights (keys like "
        f"{sample}); supported: effnet, torchvision, timm, lukemelas/EfficientNet-PyTorch, Keras"
    )


# ---------------------------------------------------------------- timm
_TIMM_TOP = {"conv_stem": "stem.conv", "bn1": "stem.bn", "conv_head": "head.conv", "bn2": "head.bn",
             "classifier": "classifier"}
# DepthwiseSeparable (expand ratio 1) and InvertedResidual blocks name their parts differently.
_TIMM_DS = {"conv_dw": "dw.conv", "bn1": "dw.bn", "conv_pw": "project.conv", "bn2": "project.bn"}
_TIMM_IR = {"conv_pw": "expand.conv", "bn1": "expand.bn", "conv_dw": "dw.conv", "bn2": "dw.bn",
            "conv_pwl": "project.conv", "bn3": "project.bn"}
_SE = {"se.conv_reduce": "se.reduce", "se.conv_expand": "se.expand", "_se_reduce": "se.reduce",
       "_se_expand": "se.expand", "se.fc1": "se.reduce", "se.fc2": "se.expand"}


def _rename_timm(state: dict[str, Any]) -> dict[str, Any]:
    inverted = {m.group(1) for k in state if (m := re.match(r"blocks\.(\d+\.\d+)\.conv_pwl\.", k))}
    out = {}
    for key, value in state.items():
        m = re.match(r"blocks\.(\d+)\.(\d+)\.(.+)\.(\w+)$", key)
        if m:
            s, b, part, leaf = m.groups()
            table = _TIMM_IR if f"{s}.{b}" in inverted else _TIMM_DS
            new = table.get(part) or _SE.get(part)
            out[f"stages.{s}.{b}.{new}.{leaf}" if new else key] = value
            continue
        top, _, leaf = key.partition(".")
        out[f"{_TIMM_TOP[top]}.{leaf}" if top in _TIMM_TOP else key] = value
    return out


# ---------------------------------------------------------------- torchvision
def _rename_torchvision(state: dict[str, Any]) -> dict[str, Any]:
    last = max(int(m.group(1)) for k in state if (m := re.match(r"features\.(\d+)\.", k)))
    # Blocks with an expansion conv have 4 parts (expand, dw, se, project), the others 3.
    parts: dict[str, int] = {}
    for k in state:
        if m := re.match(r"features\.(\d+\.\d+)\.block\.(\d+)\.", k):
            parts[m.group(1)] = max(parts.get(m.group(1), 0), int(m.group(2)) + 1)
    out = {}
    for key, value in state.items():
        if m := re.match(r"features\.(\d+)\.([01])\.(\w+)$", key):
            idx, sub, leaf = int(m.group(1)), m.group(2), m.group(3)
            where = "stem" if idx == 0 else "head" if idx == last else None
            out[f"{where}.{'conv' if sub == '0' else 'bn'}.{leaf}" if where else key] = value
        elif m := re.match(r"features\.(\d+)\.(\d+)\.block\.(\d+)\.(.+)$", key):
            s, b, j, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
            names = ["expand", "dw", "se", "project"][4 - parts[f"{s}.{b}"]:]
            part = names[j] if j < len(names) else None
            if part == "se":
                rest = rest.replace("fc1", "reduce").replace("fc2", "expand")
            else:
                rest = rest.replace("0.", "conv.", 1) if rest.startswith("0.") else rest.replace("1.", "bn.", 1)
            out[f"stages.{s - 1}.{b}.{part}.{rest}" if part else key] = value
        elif m := re.match(r"classifier\.1\.(\w+)$", key):
            out[f"classifier.{m.group(1)}"] = value
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------- lukemelas
_LUKE_TOP = {"_conv_stem": "stem.conv", "_bn0": "stem.bn", "_conv_head": "head.conv", "_bn1": "head.bn",
             "_fc": "classifier"}
_LUKE_BLOCK = {"_expand_conv": "expand.conv", "_bn0": "expand.bn", "_depthwise_conv": "dw.conv",
               "_bn1": "dw.bn", "_project_conv": "project.conv", "_bn2": "project.bn"}


def lukemelas_stage_lengths(state: dict[str, Any]) -> list[int]:
    """Split the flat ``_blocks.N`` list into stages: a stage starts where the output width changes.

    True for every released EfficientNet (each stage has a new channel count).
    """
    outs: dict[int, int] = {}
    for k, v in state.items():
        if m := re.match(r"_blocks\.(\d+)\._project_conv\.weight$", k):
            outs[int(m.group(1))] = v.shape[0]
    lengths: list[int] = []
    previous = None
    for i in sorted(outs):
        if outs[i] != previous:
            lengths.append(0)
        lengths[-1] += 1
        previous = outs[i]
    return lengths


def _flat_to_stage(lengths: Sequence[int]) -> list[tuple[int, int]]:
    return [(s, b) for s, n in enumerate(lengths) for b in range(n)]


def _rename_lukemelas(state: dict[str, Any], stage_lengths: Sequence[int] | None) -> dict[str, Any]:
    lengths = list(stage_lengths) if stage_lengths else lukemelas_stage_lengths(state)
    where = _flat_to_stage(lengths)
    out = {}
    for key, value in state.items():
        m = re.match(r"_blocks\.(\d+)\.(\w+)\.(\w+)$", key)
        if m and int(m.group(1)) < len(where):
            s, b = where[int(m.group(1))]
            part = _LUKE_BLOCK.get(m.group(2)) or _SE.get(m.group(2))
            out[f"stages.{s}.{b}.{part}.{m.group(3)}" if part else key] = value
            continue
        top, _, leaf = key.partition(".")
        out[f"{_LUKE_TOP[top]}.{leaf}" if top in _LUKE_TOP and not key.startswith("_blocks") else key] = value
    return out


# ---------------------------------------------------------------- keras
_BN_LEAVES = ("weight", "bias", "running_mean", "running_var")


def _conv(kernel: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def _depthwise(kernel: np.ndarray) -> torch.Tensor:
    kh, kw, channels, mult = kernel.shape
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(2, 3, 0, 1).reshape(channels * mult, 1, kh, kw)))


def _keras_layer(target: str, kind: str, arrays: list[np.ndarray], out: dict[str, Any]) -> None:
    if kind == "bn":
        for leaf, array in zip(_BN_LEAVES, arrays):
            out[f"{target}.{leaf}"] = torch.from_numpy(np.asarray(array, dtype=np.float32))
        return
    if kind == "dense":
        out[f"{target}.weight"] = torch.from_numpy(np.ascontiguousarray(arrays[0].T))
    else:
        out[f"{target}.weight"] = (_depthwise if kind == "dw" else _conv)(arrays[0])
    if len(arrays) > 1:
        out[f"{target}.bias"] = torch.from_numpy(np.asarray(arrays[1]))


_KERAS_PARTS = {"expand_conv": ("expand.conv", "conv"), "expand_bn": ("expand.bn", "bn"),
                "dwconv": ("dw.conv", "dw"), "bn": ("dw.bn", "bn"), "se_reduce": ("se.reduce", "conv"),
                "se_expand": ("se.expand", "conv"), "project_conv": ("project.conv", "conv"),
                "project_bn": ("project.bn", "bn")}
_KERAS_TOP = {"stem_conv": ("stem.conv", "conv"), "stem_bn": ("stem.bn", "bn"), "top_conv": ("head.conv", "conv"),
              "top_bn": ("head.bn", "bn"), "predictions": ("classifier", "dense")}


def keras_to_effnet(layers: dict[str, list[np.ndarray]]) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """Keras layer weights -> effnet tensors, plus the Normalization layer's (mean, variance) if any.

    Keras kernels are (kh, kw, in, out), depthwise (kh, kw, in, multiplier), dense (in, out).
    Layer names ``block{stage}{letter}_{part}`` give stage and block directly.
    """
    out: dict[str, Any] = {}
    normalization = None
    for name, arrays in layers.items():
        if name in _KERAS_TOP:
            target, kind = _KERAS_TOP[name]
            _keras_layer(target, kind, arrays, out)
        elif m := re.match(r"block(\d+)([a-z]+)_(\w+)$", name):
            stage, letters, part = int(m.group(1)) - 1, m.group(2), m.group(3)
            block = 0
            for ch in letters:  # a..z, then aa, ab ... for very deep stages
                block = block * 26 + string.ascii_lowercase.index(ch) + 1
            if part in _KERAS_PARTS:
                target, kind = _KERAS_PARTS[part]
                _keras_layer(f"stages.{stage}.{block - 1}.{target}", kind, arrays, out)
            else:
                out[name] = torch.from_numpy(np.asarray(arrays[0]))
        elif name.startswith("normalization"):
            normalization = {"mean": np.asarray(arrays[0]).reshape(-1), "variance": np.asarray(arrays[1]).reshape(-1)}
        else:
            out[name] = torch.from_numpy(np.asarray(arrays[0]))
    return out, normalization


def to_effnet_names(
    state: dict[str, Any], naming: str, stage_lengths: Sequence[int] | None = None
) -> dict[str, Any]:
    """Rename a torch-side state dict (torchvision/timm/lukemelas/effnet) to effnet names."""
    renamers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "effnet": dict,
        "timm": _rename_timm,
        "torchvision": _rename_torchvision,
        "lukemelas": lambda sd: _rename_lukemelas(sd, stage_lengths),
    }
    if naming not in renamers:
        raise ValueError(f"no torch-side renamer for {naming!r}; valid: {sorted(renamers)}")
    return renamers[naming](state)
