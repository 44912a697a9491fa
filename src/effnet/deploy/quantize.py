"""int8 ONNX models by static post-training quantization (onnxruntime), with top-1 agreement reported.

Weights are quantized per output channel, activations per tensor from ranges seen on calibration
images (QDQ format, which onnxruntime runs with its int8 kernels: VNNI/AMX where the CPU has them).
It pays for the Lite models (ReLU6, no SE), not for B0, whose SE multiply and Swish stay fp32 between
quantize/dequantize nodes. Calibrate on real images from the deployment's domain; how many are
needed and what int8 costs in top-1 on real ImageNet images: docs/deploy.md and docs/benchmarks.md.
Every result carries its agreement with fp32 on images that were *not* used for calibration."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from effnet.fileio import atomic_path


@dataclass(frozen=True)
class Int8Result:
    path: Path
    calibration_images: int
    checked_images: int
    top1_agreement: float  # against the fp32 ONNX model, on the checked images

    def summary(self) -> str:
        return (f"wrote {self.path} (int8, calibrated on {self.calibration_images} images); top-1 agrees with fp32 "
                f"on {100 * self.top1_agreement:.1f}% of {self.checked_images} held-out images")


def calibration_photos(transform: object) -> torch.Tensor:
    """Real photos for calibrating when the user has none: scikit-image's and scikit-learn's sample images."""
    from effnet.deploy.predict import demo_photos

    return torch.stack([transform(image) for _, image in demo_photos()])


def folder_images(folder: str | Path, transform: object, limit: int = 256) -> tuple[torch.Tensor, list[str]]:
    """Up to ``limit`` images under ``folder`` (recursively, sorted), preprocessed; unreadable files are
    skipped and returned by name."""
    from effnet.data.folders import IMAGE_EXTENSIONS
    from effnet.data.transforms import load_image

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}; give a folder of sample inputs")
    tensors, skipped = [], []
    for path in files[:limit]:
        try:
            tensors.append(transform(load_image(path)))
        except (OSError, ValueError) as exc:
            skipped.append(f"{path}: {exc}")
    if len(tensors) < 2:
        raise ValueError(f"only {len(tensors)} readable image(s) under {folder}; int8 calibration needs at least 2")
    return torch.stack(tensors), skipped


def padded_batches(images: torch.Tensor, batch: int) -> list[torch.Tensor]:
    """``images`` in chunks of exactly ``batch`` (a fixed-batch program's input), the last padded by
    repeating its final image."""
    chunks = []
    for i in range(0, len(images), batch):
        chunk = images[i:i + batch]
        if len(chunk) < batch:
            chunk = torch.cat([chunk, chunk[-1:].expand(batch - len(chunk), *chunk.shape[1:])])
        chunks.append(chunk)
    return chunks


def _input(path: Path) -> tuple[object, str, int]:
    """(session, input name, batch size: the fixed one of an export without a dynamic batch, else 1)."""
    from effnet.deploy.export import onnx_session

    session = onnx_session(path)
    first = session.get_inputs()[0]
    return session, first.name, first.shape[0] if isinstance(first.shape[0], int) else 1


def _run(model: tuple[object, str, int], images: torch.Tensor) -> np.ndarray:
    """Logits of ``images`` from a model opened with :func:`_input`."""
    session, name, batch = model
    outputs = [session.run(None, {name: chunk.numpy()})[0] for chunk in padded_batches(images, batch)]
    return np.concatenate(outputs)[:len(images)]


def quantize_onnx_int8(
    fp32_path: str | Path, out_path: str | Path, images: torch.Tensor, *, check: torch.Tensor | None = None,
    per_channel: bool = True,
) -> Int8Result:
    """Quantize an fp32 ONNX export to int8 and measure its top-1 agreement with fp32 on held-out images.

    ``images`` are preprocessed (N, 3, H, W) float tensors. Without ``check``, even-numbered images
    calibrate and odd-numbered ones are held out (N >= 2); with ``check``, all of ``images`` calibrate
    and the agreement is measured on ``check``. The file is written atomically.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if images.dim() != 4 or len(images) < (1 if check is not None else 2):
        raise ValueError(f"need at least 2 preprocessed images (N, 3, H, W) to calibrate and check, got {tuple(images.shape)}")
    fp32_path = Path(fp32_path)
    calibrate, check = (images[0::2], images[1::2]) if check is None else (images, check)

    fp32 = _input(fp32_path)
    _, input_name, batch = fp32

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{input_name: chunk.numpy()} for chunk in padded_batches(calibrate, batch)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(prefix="effnet-int8-") as tmp, atomic_path(out_path, suffix=".onnx") as tmp_out:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))  # shape inference + graph cleanup, as onnxruntime advises
        quantize_static(str(prepared), str(tmp_out), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        agree = float((_run(_input(tmp_out), check).argmax(1) == _run(fp32, check).argmax(1)).mean())
    return Int8Result(Path(out_path), len(calibrate), len(check), agree)
