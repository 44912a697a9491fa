"""Reading weight files: the container is recognised from the first bytes, never from the name.

Containers: PyTorch zip or legacy pickle (``torch.load(weights_only=True)`` only), safetensors,
and HDF5 (Keras, read with h5py). What comes back is a :class:`RawWeights`: tensors under the
file's own names plus whatever hints the file carries (timm's ``arch``, safetensors metadata,
Keras' input normalisation).
"""

from __future__ import annotations

import json
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"


class UnsafeWeightsError(ValueError):
    """A pickle that needs more than tensors to load (it could run code); it was not loaded."""


@dataclass
class RawWeights:
    """Tensors as named in the file, plus hints about where they come from."""

    tensors: dict[str, Any]
    container: str  # torch | safetensors | keras_h5 | keras3_h5 | dict
    path: Path | None = None
    hints: dict[str, Any] = field(default_factory=dict)


def sniff_container(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(HDF5_MAGIC):
        return "hdf5"
    if head.startswith(ZIP_MAGIC):
        return "torch"
    if head[:1] == b"\x80":  # pickle protocol 2+ opcode: legacy torch.save
        return "torch"
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and 0 < header_len < path.stat().st_size:
            return "safetensors"
    raise ValueError(
        f"{path} is not a weight file effnet can read (expected a PyTorch .pth/.pt, .safetensors or "
        f"Keras .h5 file; the first bytes are {head[:8]!r})"
    )


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeWeightsError(
            f"refused to load {path}: it contains pickled Python objects beyond tensors, and unpickling "
            f"those can run arbitrary code. effnet only loads tensors (torch.load weights_only=True). "
            f"If the file is yours, re-save just its state_dict or a safetensors file. Details: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    except RuntimeError as exc:
        raise ValueError(f"{path} is not a readable PyTorch file: {exc}") from None


_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")
_PREFIXES = ("module.", "_orig_mod.", "model.")


def unwrap_state_dict(obj: Any, hints: dict[str, Any]) -> dict[str, Any]:
    """The tensor dict inside a checkpoint: ``{"model": ...}``, ``{"state_dict": ...}`` or the dict itself.

    DataParallel/compile prefixes (``module.``, ``_orig_mod.``) are stripped.
    """
    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("arch", "config", "model_name"):
            if key in obj and isinstance(obj[key], str | dict):
                hints[key] = obj[key]
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                return unwrap_state_dict(obj[key], hints)
        raise ValueError(
            f"found a checkpoint dict with keys {sorted(obj)[:10]} but no tensors; expected a state_dict or "
            f"a dict with one under {' / '.join(_WRAPPER_KEYS)}"
        )
    if not isinstance(obj, dict):
        raise ValueError(f"expected a state_dict (a dict of tensors), found {type(obj).__name__}")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    for prefix in _PREFIXES:
        if tensors and all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix):]: v for k, v in tensors.items()}
    return tensors


def _read_safetensors(path: Path, hints: dict[str, Any]) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except Exception as exc:  # SafetensorError: not importable under a stable name across versions
        if type(exc).__name__ != "SafetensorError":
            raise
        raise ValueError(f"{path} is a damaged safetensors file ({exc}): it is truncated or corrupt; "
                         "download or convert it again") from None
    if "effnet_config" in meta:
        hints["config"] = json.loads(meta["effnet_config"])
    if "effnet_preprocessing" in meta:
        hints["preprocessing"] = json.loads(meta["effnet_preprocessing"])
    if "arch" in meta:
        hints["arch"] = meta["arch"]
    return tensors


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _decode(name: Any) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


def _read_keras_legacy(h5: Any) -> dict[str, list[Any]]:
    """Legacy Keras HDF5 (tf.keras ``model.save``/``save_weights`` .h5): layer_names + weight_names attrs."""
    root = h5["model_weights"] if "model_weights" in h5 else h5
    layers: dict[str, list[Any]] = {}
    for layer in map(_decode, root.attrs["layer_names"]):
        group = root[layer]
        names = [_decode(n) for n in group.attrs.get("weight_names", [])]
        if names:
            layers[layer] = [group[n][()] for n in names]
    return layers


def _read_keras3(h5: Any) -> dict[str, list[Any]]:
    """Keras 3 ``.weights.h5``: ``layers/<object name>/vars/0..n``, the layer name in ``vars.attrs['name']``."""
    layers: dict[str, list[Any]] = {}
    for obj_name, group in h5["layers"].items():
        if "vars" not in group or not len(group["vars"]):
            continue
        variables = group["vars"]
        layer = _decode(variables.attrs.get("name", obj_name))
        layers[layer] = [variables[str(i)][()] for i in range(len(variables))]
    return layers


def _read_hdf5(path: Path) -> tuple[dict[str, list[Any]], str]:
    try:
        import h5py
    except ImportError:
        raise ValueError(f"{path} is an HDF5 (Keras) file; reading it needs h5py: pip install h5py") from None
    try:
        with h5py.File(path, "r") as h5:
            if "layer_names" in h5.attrs or ("model_weights" in h5 and "layer_names" in h5["model_weights"].attrs):
                return _read_keras_legacy(h5), "keras_h5"
            if "layers" in h5:
                return _read_keras3(h5), "keras3_h5"
    except OSError as exc:  # h5py reports a truncated or damaged file as OSError
        raise ValueError(f"{path} is a damaged HDF5 (Keras) file ({_first_line(exc)}): it is truncated or corrupt; "
                         "download it again") from None
    raise ValueError(f"{path} is an HDF5 file but not a Keras model or weights file (no layer_names, no layers/)")


def read_file(path: str | Path) -> RawWeights:
    """Read any supported weight file into :class:`RawWeights` (Keras layers map to lists of arrays)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file {path} does not exist")
    kind = sniff_container(path)
    hints: dict[str, Any] = {"filename": path.name, "path": str(path)}
    if kind == "hdf5":
        layers, container = _read_hdf5(path)
        return RawWeights(layers, container, path, hints)
    if kind == "safetensors":
        return RawWeights(_read_safetensors(path, hints), "safetensors", path, hints)
    return RawWeights(unwrap_state_dict(_torch_load(path), hints), "torch", path, hints)
