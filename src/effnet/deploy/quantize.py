"""int8 ONNX models by static post-training quantization (onnxruntime), with top-1 agreement reported.

The file is meant to be exported on one machine and run on another, so its quality must not depend on
the CPU. ONNX Runtime's U8S8 kernels on CPUs without VNNI (AVX2, AVX-512F) add pairs of u8 x s8
products in 16 bits, which saturates for 8-bit weights (255 * 127 * 2 > 32767) and cost Lite0 2.7 points
of top-1 on an AVX2 CPU. Hence: regular convs get 7-bit weights (``reduce_range``: 255 * 64 * 2 fits),
per output channel; depthwise convs, which ONNX Runtime runs in 32-bit arithmetic, keep 8 bits;
activations are per-tensor u8 from ranges seen on calibration images (QDQ format). Weight rounding
shifts each channel's mean output; the int32 biases are corrected for it with the calibration images'
mean inputs (bias correction, Nagel et al. 2019). The first conv, squeeze-excitation and the classifier
cost accuracy for little speed and stay fp32. Every result carries its agreement with fp32 on images
that were *not* used for calibration; docs/benchmarks.md has the figures per CPU.
"""

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
    kept_fp32: tuple[str, ...] = ()  # the layers left in fp32, in words
    portability: str = ""  # why the result holds on other CPUs, where the format guarantees it
    method: str = ""  # what was done beyond calibration ("biases corrected on them")

    def summary(self) -> str:
        from effnet.cpu import features_line

        kept = f"; kept in fp32: {', '.join(self.kept_fp32)}" if self.kept_fp32 else ""
        why = f" ({self.portability})" if self.portability else ""
        how = f", {self.method}" if self.method else ""
        return (f"wrote {self.path} (int8, calibrated on {self.calibration_images} images{how}); top-1 agrees with fp32 "
                f"on {100 * self.top1_agreement:.1f}% of {self.checked_images} held-out images{kept}\n"
                f"  checked on {features_line()}{why}")


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
    import onnx
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
        graph = onnx.load(str(prepared))
        plan = _plan(graph)
        quantize_static(str(prepared), str(tmp_out), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, reduce_range=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=plan.fp32_nodes,
                        extra_options={"TensorQuantOverrides": plan.overrides})
        int8 = onnx.load(str(tmp_out))
        means = _input_means(graph, [n.input[0] for n in graph.graph.node if n.name in plan.conv_nodes],
                             calibrate, input_name, batch, Path(tmp))
        _correct_biases(graph, int8, means)
        onnx.save(int8, str(tmp_out))
        agree = float((_run(_input(tmp_out), check).argmax(1) == _run(fp32, check).argmax(1)).mean())
    return Int8Result(Path(out_path), len(calibrate), len(check), agree, plan.kept,
                      "7-bit conv weights: the same results with or without VNNI")


@dataclass(frozen=True)
class _Plan:
    fp32_nodes: list[str]  # left unquantized
    conv_nodes: list[str]  # quantized convs (bias-corrected)
    overrides: dict[str, list[dict[str, object]]]  # depthwise weights: the full 8 bits
    kept: tuple[str, ...]  # the fp32 layers, in words


def _plan(model: object) -> _Plan:
    """Which nodes stay fp32 (first conv, squeeze-excitation, classifier: the Gemm/MatMul nodes) and which
    weights keep 8 bits (depthwise convs: ONNX Runtime's depthwise int8 kernel accumulates in 32 bits)."""
    nodes = list(model.graph.node)
    inits = {t.name: t for t in model.graph.initializer}
    graph_inputs = {i.name for i in model.graph.input}
    first = [n.name for n in nodes if n.op_type == "Conv" and n.input[0] in graph_inputs]
    pooled = _one_by_one_maps(model)  # squeeze-excitation's 1x1 convs act on the pooled map: dense layers
    dense = [n.name for n in nodes if n.op_type in ("Gemm", "MatMul") or (n.op_type == "Conv" and n.input[0] in pooled)]
    convs = [n for n in nodes if n.op_type == "Conv" and n.name not in first + dense and n.input[1] in inits]
    overrides = {}
    for n in convs:
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        if group > 1 and group == inits[n.input[1]].dims[0]:
            overrides[n.input[1]] = [{"axis": 0, "reduce_range": False}]
    kept = []
    if first:
        kept.append("first conv")
    if len(dense) > 1:
        kept.append(f"squeeze-excitation ({len(dense) - 1} dense layers)")
    if dense:
        kept.append("classifier")
    return _Plan(first + dense, [n.name for n in convs], overrides, tuple(kept))


def _one_by_one_maps(model: object) -> set[str]:
    """Names of the tensors that shape inference shows to be N x C x 1 x 1 (after a global pool)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    return {v.name for v in inferred.graph.value_info
            if len(v.type.tensor_type.shape.dim) == 4 and [d.dim_value for d in v.type.tensor_type.shape.dim[2:]] == [1, 1]}


def _input_means(model: object, tensors: list[str], images: torch.Tensor, input_name: str, batch: int,
                 tmp: Path) -> dict[str, np.ndarray]:
    """Per-channel mean of each named fp32 tensor over ``images`` (N, C, H, W -> C)."""
    import onnx

    from effnet.deploy.export import onnx_session

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    names = list(dict.fromkeys(t for t in tensors if t != input_name))
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(t) for t in names)
    path = tmp / "probe.onnx"
    onnx.save(probe, str(path))
    session = onnx_session(path)
    outputs = [session.get_outputs()[i].name for i in range(len(session.get_outputs()))]
    sums: dict[str, np.ndarray] = {}
    for chunk in padded_batches(images, batch):
        values = dict(zip(outputs, session.run(None, {input_name: chunk.numpy()})))
        values[input_name] = chunk.numpy()
        for t in [*names, input_name]:
            sums[t] = sums.get(t, 0) + values[t].mean(axis=(0, 2, 3))
    n = len(padded_batches(images, batch))
    return {t: s / n for t, s in sums.items()}


def _correct_biases(fp32: object, int8: object, means: dict[str, np.ndarray]) -> None:
    """Subtract from each quantized conv's int32 bias the mean output shift its rounded weights cause:
    (W_int8 - W) . E[input], per output channel (padding ignored)."""
    from onnx import numpy_helper

    fp32_inits = {t.name: t for t in fp32.graph.initializer}
    fp32_nodes = {n.name: n for n in fp32.graph.node}
    inits = {t.name: t for t in int8.graph.initializer}
    producer = {o: n for n in int8.graph.node for o in n.output}
    for node in int8.graph.node:
        original = fp32_nodes.get(node.name)
        if node.op_type != "Conv" or original is None or len(node.input) < 3 or original.input[0] not in means:
            continue
        w_dq, b_dq = producer.get(node.input[1]), producer.get(node.input[2])
        if w_dq is None or b_dq is None or w_dq.op_type != "DequantizeLinear" or b_dq.op_type != "DequantizeLinear":
            continue
        q = numpy_helper.to_array(inits[w_dq.input[0]]).astype(np.float64)
        scale = numpy_helper.to_array(inits[w_dq.input[1]]).astype(np.float64)
        zero = numpy_helper.to_array(inits[w_dq.input[2]]).astype(np.float64) if len(w_dq.input) > 2 else 0.0
        shape = (-1,) + (1,) * (q.ndim - 1)
        w = numpy_helper.to_array(fp32_inits[original.input[1]]).astype(np.float64)
        delta = (q - np.reshape(zero, shape)) * np.reshape(scale, shape) - w  # (out, in/groups, kh, kw)
        mean_in = means[original.input[0]].astype(np.float64)
        groups = len(mean_in) // delta.shape[1]
        per_group = delta.shape[0] // groups
        mean_for_out = mean_in.reshape(groups, -1).repeat(per_group, axis=0)  # (out, in/groups)
        shift = (delta.sum(axis=(2, 3)) * mean_for_out).sum(axis=1)
        bias = inits[b_dq.input[0]]
        b_scale = numpy_helper.to_array(inits[b_dq.input[1]]).astype(np.float64)
        corrected = numpy_helper.to_array(bias).astype(np.float64) - np.round(shift / b_scale)
        bias.CopyFrom(numpy_helper.from_array(corrected.astype(np.int32), bias.name))
