"""Self-describing exported files: the metadata an ONNX model or ExecuTorch program carries, and running one.

``effnet export`` stores beside the graph what classifying with it needs: the class names, the input
size, mean/std, crop and interpolation, the model's name and config, and the effnet version. ONNX
keeps it in the model's ``metadata_props`` (readable in Netron, ``onnx.load(f).metadata_props`` or
onnxruntime's ``get_modelmeta().custom_metadata_map``); an ExecuTorch program in a constant method
``effnet_metadata`` that returns the same keys as one JSON string
(``program.load_method("effnet_metadata").execute([])``), so the ``.pte`` file alone is enough on a
phone too. :func:`artifact_spec` turns a file back into a :class:`ModelSpec`, which is how
``effnet predict`` and ``effnet eval`` take ``.onnx`` / ``.pte`` files as weights.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from effnet.arch.config import ModelConfig, get_config
from effnet.deploy.model_spec import ModelSpec
from effnet.weights.registry import Preprocessing

ARTIFACT_SUFFIXES = (".onnx", ".pte")
METADATA_METHOD = "effnet_metadata"  # the ExecuTorch program's constant method holding the metadata


def is_artifact(weights: str | Path | None) -> bool:
    """Whether ``weights`` names an exported file (by its suffix), which :func:`artifact_spec` reads."""
    return weights is not None and Path(str(weights)).suffix.lower() in ARTIFACT_SUFFIXES


def export_metadata(spec: ModelSpec, input_size: int) -> dict[str, str]:
    """The metadata of an export of ``spec`` at ``input_size`` px: string keys and values (ONNX's kind).

    Lists and numbers are JSON. ``classes`` is ``null`` where the names are unknown;
    ``classes_source`` says whether they came with the weights (a run's own) or are ImageNet's.
    """
    from effnet import __version__

    prep = spec.preprocessing
    return {
        "effnet_version": __version__,
        "model": spec.config.name,
        "effnet_config": json.dumps(spec.config.to_dict()),
        "num_classes": str(spec.num_classes),
        "classes": json.dumps(spec.class_names),
        "classes_source": "weights" if spec.names_from_run else "imagenet" if spec.class_names else "none",
        "input_size": json.dumps([input_size, input_size]),
        "mean": json.dumps(list(prep.mean)),
        "std": json.dumps(list(prep.std)),
        "crop_pct": json.dumps(prep.crop_pct),
        "crop_mode": prep.crop_mode,
        "interpolation": prep.interpolation,
    }


def read_metadata(path: str | Path) -> dict[str, str]:
    """The effnet metadata of an ``.onnx`` or ``.pte`` file; a file without it is refused in one line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() == ".onnx":
        import onnx

        try:
            meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        except Exception as exc:  # protobuf's DecodeError and friends: a damaged or foreign file
            raise ValueError(f"{path} is not a readable ONNX model ({type(exc).__name__}); export it again with "
                             "effnet export") from exc
    else:
        meta = _pte_metadata(path)
    if "effnet_version" not in meta or "effnet_config" not in meta:
        raise ValueError(f"{path} was not exported by effnet (it carries no class names or preprocessing); "
                         "export the weights with effnet export, or pass the PyTorch weights instead")
    return meta


def _pte_metadata(path: Path) -> dict[str, str]:
    from effnet.deploy.executorch import _require_executorch

    _require_executorch()
    from executorch.runtime import Runtime

    try:
        program = Runtime.get().load_program(path)
    except Exception as exc:  # the runtime reports a damaged program as a bare RuntimeError code
        raise ValueError(f"{path} is not a readable ExecuTorch program ({exc}); export it again with "
                         "effnet export --format executorch") from exc
    if METADATA_METHOD not in program.method_names:
        return {}
    return json.loads(program.load_method(METADATA_METHOD).execute([])[0])


@dataclass
class ArtifactSpec(ModelSpec):
    """A :class:`ModelSpec` whose model is an exported file, run by ONNX Runtime or ExecuTorch."""

    def build(self) -> nn.Module:
        return ArtifactModel(self.weights)


def artifact_spec(path: str | Path, model: str | ModelConfig | Path | None = None) -> ArtifactSpec:
    """What classifying with an exported file needs, read from its metadata; ``model`` must agree with it."""
    meta = read_metadata(path)
    config = ModelConfig.from_dict(json.loads(meta["effnet_config"]))
    if model is not None and get_config(model).name != config.name:
        raise ValueError(f"--model {model} contradicts {path}, an export of {config.name}; drop --model "
                         "(an exported file is one fixed model)")
    size = json.loads(meta["input_size"])[0]
    prep = Preprocessing(resolution=size, crop_pct=json.loads(meta["crop_pct"]), interpolation=meta["interpolation"],
                         mean=tuple(json.loads(meta["mean"])), std=tuple(json.loads(meta["std"])),
                         crop_mode=meta["crop_mode"])
    names = json.loads(meta["classes"])
    return ArtifactSpec(str(path), config, int(meta["num_classes"]), names, meta["classes_source"] == "weights", prep)


def artifact_runner(path: str | Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function of an NCHW float batch (CPU) running the exported file: ONNX Runtime or ExecuTorch's runtime."""
    if Path(path).suffix.lower() == ".pte":
        from effnet.deploy.executorch import executorch_runner

        return executorch_runner(path)
    from effnet.deploy.export import onnx_session

    session = onnx_session(path)
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])


class ArtifactModel(nn.Module):
    """An exported file, callable like the PyTorch model it came from (float NCHW in, float logits out)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.run = artifact_runner(path)
        # Callers ask a model's parameters for its device; the file runs on the CPU, and has no other parameter.
        self.device_anchor = nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x.detach().cpu().float().contiguous()).float().to(x.device)

    def extra_repr(self) -> str:
        return str(self.path)


def load_artifact(path: str | Path) -> tuple[ArtifactModel, ArtifactSpec]:
    """The runnable exported file and its spec (class names, preprocessing): ``spec.build()`` is the model."""
    spec = artifact_spec(path)
    return spec.build(), spec

