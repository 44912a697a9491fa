"""One model, several ways to run it: the ``--backend`` of ``effnet predict`` and ``effnet eval``.

Which is fastest depends on the model, the batch and the CPU; docs/deploy.md has the measured
answer for this project's machines and docs/benchmarks.md the figures. Every backend returns a
module that takes float32 NCHW images and returns float32 logits, like the model it came from.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from effnet.choices import BACKENDS  # backend -> what it runs (fp32 unless named otherwise)


class RuntimeModel(nn.Module):
    """An exported copy of ``model`` run by another runtime, callable like ``model``.

    ``model`` stays attached (its parameters tell callers the device: CPU) but is not run.
    """

    def __init__(self, model: nn.Module, run: Callable[[torch.Tensor], Any]) -> None:
        super().__init__()
        self.model = model
        self.run = run

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.run(x.float().contiguous())
        return (y if isinstance(y, torch.Tensor) else torch.from_numpy(y)).float()


def with_backend(model: nn.Module, backend: str, image_size: int | None = None) -> nn.Module:
    """``model`` (eval mode) made to run on ``backend``; exports go to a temporary folder and are checked."""
    from effnet.deploy.inference import backend_bf16_check, optimize_for_inference

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    model = model.eval()
    from effnet.deploy.artifacts import ArtifactModel

    if isinstance(model, ArtifactModel):  # an .onnx / .pte file runs in its own runtime already
        runtime = "executorch" if model.path.suffix.lower() == ".pte" else "onnxruntime"
        if backend not in ("eager", runtime):
            raise ValueError(f"--backend {backend} applies to PyTorch weights; {model.path} runs in {runtime}: "
                             "drop --backend")
        return model
    if backend == "eager":
        return model
    if backend in ("channels_last", "bf16", "compile"):
        if backend == "bf16":
            backend_bf16_check()
        return optimize_for_inference(model, dtype=torch.bfloat16 if backend == "bf16" else None,
                                      compile=backend == "compile")
    folder = Path(tempfile.mkdtemp(prefix="effnet-backend-"))
    if backend == "onnxruntime":
        from effnet.deploy.export import export_onnx, onnx_session

        export_onnx(model, folder / "model.onnx", dynamic_batch=True, input_size=image_size)
        session = onnx_session(folder / "model.onnx")
        name = session.get_inputs()[0].name
        return RuntimeModel(model, lambda x: session.run(None, {name: x.numpy()})[0])
    if backend == "openvino":
        from effnet.deploy.export import export_onnx
        from effnet.deploy.openvino import openvino_runner

        export_onnx(model, folder / "model.onnx", dynamic_batch=True, input_size=image_size)
        return RuntimeModel(model, openvino_runner(folder / "model.onnx"))
    from effnet.deploy.executorch import executorch_runner, export_executorch

    print("exporting to ExecuTorch (XNNPACK); this takes a minute ...", file=sys.stderr)
    export_executorch(model, folder / "model.pte", input_size=image_size)
    return RuntimeModel(model, executorch_runner(folder / "model.pte"))
