"""ExecuTorch programs (``.pte``) with the XNNPACK delegate, fp32 or int8, checked in ExecuTorch's runtime.

The model is captured with ``torch.export`` at a fixed input shape (mobile runtimes run one shape;
batch 1 by default), lowered to XNNPACK (the CPU backend ExecuTorch ships for Android, iOS and Linux)
and serialized. int8 uses PyTorch's PT2E flow with the XNNPACK quantizer (symmetric, per-channel
weights, per-tensor activations), calibrated on real preprocessed images. Like the ONNX export, the
file is written to a temporary name, run in ExecuTorch's own Python runtime and compared with
PyTorch, and renamed into place only when the check passes: a failed check writes nothing.
Needs the ``edge`` extra (``pip install 'effnet[edge]'``: executorch).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from effnet.deploy.export import (
    ExportCheckError,
    ExportResult,
    _atomic_write,
    _compare,
    _default_input_shape,
    _finish_check,
)
from effnet.deploy.quantize import Int8Result, padded_batches

#: the program's constant method that returns the export metadata as JSON (read by effnet.deploy.artifacts)
METADATA_METHOD = "effnet_metadata"


def _require_executorch() -> None:
    try:
        import executorch.exir  # noqa: F401
    except ImportError as exc:
        raise ImportError("ExecuTorch export needs executorch: pip install 'effnet[edge]'") from exc


def quantize_pt2e(model: nn.Module, example: torch.Tensor, calibration: torch.Tensor, batch: int) -> nn.Module:
    """``model`` quantized to int8 by PT2E with the XNNPACK quantizer, observers fed ``calibration``."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(model, (example,)).module(), quantizer)
    with torch.no_grad():
        for chunk in padded_batches(calibration, batch):
            prepared(chunk)
    return convert_pt2e(prepared)


def lower_to_xnnpack(model: nn.Module, example: torch.Tensor, metadata: dict[str, str] | None = None) -> bytes:
    """The serialized ExecuTorch program of ``model`` with everything XNNPACK supports delegated to it.

    ``metadata`` becomes the constant method ``effnet_metadata`` returning it as one JSON string
    (:mod:`effnet.deploy.artifacts`): inside the program, so nothing can separate the two.
    """
    import json

    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # torch.export sees the blocks' plain forward: squeeze-excitation as pool + 1x1 convs, the form
        # XNNPACK delegates whole (the eager eval form's matmuls on a 2-D mean are not delegated)
        program = torch.export.export(model, (example,))
        constants = {METADATA_METHOD: json.dumps(metadata)} if metadata else None
        return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                           constant_methods=constants).to_executorch().buffer


def executorch_runner(path: str | Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function of an NCHW float batch running the program at ``path`` in ExecuTorch's runtime.

    The program has a fixed batch size; any batch is run in chunks of it (the last padded).
    """
    _require_executorch()
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(Path(path)).load_method("forward")
    batch = method.metadata.input_tensor_meta(0).sizes()[0]

    def run(x: torch.Tensor) -> torch.Tensor:
        outs = [method.execute([chunk.contiguous().float()])[0] for chunk in padded_batches(x, batch)]
        return torch.cat(outs)[:len(x)]

    return run


def export_executorch(
    model: nn.Module,
    path: str | Path,
    *,
    int8_images: torch.Tensor | None = None,
    batch: int = 1,
    input_size: int | tuple[int, int] | None = None,
    check: bool = True,
    atol: float | None = None,
    metadata: dict[str, str] | None = None,
) -> ExportResult:
    """Write ``model`` (eval mode) as an ExecuTorch program with the XNNPACK delegate; check it.

    ``int8_images`` (preprocessed real images, N x 3 x H x W) makes an int8 program calibrated on
    them. The check runs the written program in ExecuTorch's runtime on random inputs and compares
    it with PyTorch: fp32 with the exported model (``atol`` 1e-4), int8 with the PT2E-quantized
    PyTorch model it was lowered from (XNNPACK's int8 kernels round differently from PyTorch's
    reference ops, and the differences add up over the layers: ``atol`` defaults to 20% of the
    largest logit: it catches a broken lowering, whose errors are of the order of the logits themselves). Raises :class:`ExportCheckError`
    beyond ``atol``, and nothing is written. ``metadata`` (class names, preprocessing ...) is stored in the program.
    """
    _require_executorch()
    path = Path(path)
    model = model.eval()
    _, c, h, w = _default_input_shape(model, input_size)
    shape = (batch, c, h, w)
    example = torch.randn(*shape)
    reference = model
    if int8_images is not None:
        if int8_images.dim() != 4 or tuple(int8_images.shape[1:]) != (c, h, w):
            raise ValueError(f"int8 calibration images must be N x {c} x {h} x {w}, got {tuple(int8_images.shape)}")
        reference = quantize_pt2e(model, example, int8_images, batch)
    result = ExportResult(path, "executorch int8" if int8_images is not None else "executorch", shape, False, False,
                          atol=atol if atol is not None else 1e-4)

    def write(tmp: Path) -> None:
        tmp.write_bytes(lower_to_xnnpack(reference, example, metadata))

    def verify(tmp: Path) -> None:
        if check:
            try:
                compared = _compare(reference, executorch_runner(tmp), [shape])
            except RuntimeError as exc:  # the runtime refused the program (XNNPACK reports only a code)
                raise ExportCheckError(f"ExecuTorch's runtime could not run the {result.format} program ({exc}); "
                                       f"nothing was written to {path}") from exc
            if atol is None and int8_images is not None:
                result.atol = 0.2 * compared[1]
            _finish_check(result, compared)

    _atomic_write(path, ".pte", write, verify)
    return result


def export_executorch_int8(
    model: nn.Module, path: str | Path, images: torch.Tensor, *, batch: int = 1, fp32_path: str | Path | None = None,
    metadata: dict[str, str] | None = None,
) -> Int8Result:
    """An int8 program calibrated on the even-numbered ``images``; its top-1 agreement with the fp32 model
    (the program at ``fp32_path`` when given, else PyTorch) measured on the odd-numbered ones."""
    if images.dim() != 4 or len(images) < 2:
        raise ValueError(f"need at least 2 preprocessed images (N, 3, H, W) to calibrate and check, got {tuple(images.shape)}")
    calibrate, held_out = images[0::2], images[1::2]
    export_executorch(model, path, int8_images=calibrate, batch=batch, input_size=tuple(images.shape[2:]),
                      metadata=metadata)
    fp32 = executorch_runner(fp32_path) if fp32_path is not None else model.eval()
    with torch.no_grad():
        agree = float((executorch_runner(path)(held_out).argmax(1) == fp32(held_out).argmax(1)).float().mean())
    return Int8Result(Path(path), len(calibrate), len(held_out), agree)
