"""Self-describing exported files: the metadata an ONNX model or ExecuTorch program carries, and running one.

``effnet export`` stores beside the graph what classifying with it needs: the class names, the input
size, mean/std, crop and interpolation, the model's name and config, and the effnet version. ONNX
keeps it in the model's ``metadata_props`` (readable in Netron, ``onnx.load(f).metadata_props`` or
onnxruntime's ``get_modelmeta().custom_metadata_map``); an ExecuTorch program in a constant method
``effnet_metadata`` that returns the same keys as one JSON string
(``program.load_method("effnet_metadata").execute([])``), so the ``.pte`` file alone is enough on a
phone too. :func:`effnet.deploy.model_spec.artifact_spec` turns a file back into a ``ModelSpec``, which is how
``effnet predict`` and ``effnet eval`` take ``.onnx`` / ``.pte`` files as weights.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

ARTIFACT_SUFFIXES = (".onnx", ".pte")


def is_artifact(weights: str | Path | None) -> bool:
    """Whether ``weights`` names an exported file (by its suffix), which :func:`effnet.deploy.model_spec.artifact_spec` reads."""
    return weights is not None and Path(str(weights)).suffix.lower() in ARTIFACT_SUFFIXES


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
    from effnet.deploy.executorch import METADATA_METHOD, _require_executorch

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
