"""OpenVINO: an ONNX export compiled by OpenVINO's CPU plugin, the runtime many Intel-CPU users reach for.

Compiled once per input shape (static shapes are OpenVINO's fast path; a new batch size or image
size compiles again, in about a second) and always in fp32: OpenVINO would otherwise pick bf16 on CPUs
with AVX512-BF16 or AMX, which is not the exact path this backend promises.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def _require_openvino() -> object:
    try:
        import openvino
    except ImportError as exc:
        raise ImportError("the openvino backend needs OpenVINO: pip install 'effnet[openvino]'") from exc
    return openvino


def openvino_runner(onnx_path: str | Path, threads: int | None = None) -> Callable[[torch.Tensor], np.ndarray]:
    """A function of an fp32 NCHW batch returning OpenVINO's fp32 logits for the ONNX model at ``onnx_path``."""
    ov = _require_openvino()
    core = ov.Core()
    model = core.read_model(str(onnx_path))
    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_NUM_THREADS": threads or torch.get_num_threads()}
    requests: dict[tuple[int, ...], object] = {}

    def run(x: torch.Tensor) -> np.ndarray:
        shape = tuple(x.shape)
        if shape not in requests:
            static = model.clone()
            static.reshape({static.inputs[0].get_any_name(): ov.PartialShape(list(shape))})
            requests[shape] = core.compile_model(static, "CPU", config).create_infer_request()
        request = requests[shape]
        request.infer({0: x.numpy()})
        return request.get_output_tensor(0).data.copy()

    return run
