"""ExecuTorch programs (``.pte``) with the XNNPACK delegate, fp32 or int8, checked in ExecuTorch's runtime.

The model is captured with ``torch.export`` at a fixed input shape (mobile runtimes run one shape;
batch 1 by default), lowered to XNNPACK (the CPU backend ExecuTorch ships for Android, iOS and Linux)
and serialized (``max_batch`` > 1: any batch up to it in one call). int8 uses PyTorch's PT2E flow with
the XNNPACK quantizer (symmetric, per-channel weights, per-tensor activations; ReLU6 outputs observed
after the clamp; first conv, squeeze-excitation and classifier kept fp32), calibrated on real
preprocessed images. Like the ONNX export, the
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
#: the constant method present in programs that take any batch up to their input's first size
DYNAMIC_BATCH_METHOD = "effnet_dynamic_batch"


def _require_executorch() -> None:
    try:
        import executorch.exir  # noqa: F401
    except ImportError as exc:
        raise ImportError("ExecuTorch export needs executorch: pip install 'effnet[edge]'") from exc


#: where the int8 recipe keeps fp32: the first conv (3 input channels: little work, and the raw
#: image's quantization error reaches every later layer), squeeze-excitation (its sigmoid gates rescale
#: whole channels) and the classifier (1000 logits from one matmul: the argmax is what is scored)
INT8_FP32_MODULES = ("stem", "classifier")
INT8_FP32_TYPES = ("SqueezeExcite",)
_HARDTANH = ("hardtanh.default", "hardtanh_.default")
_PAD = ("pad.default", "constant_pad_nd.default")


#: from this many calibration images on, the int8 export corrects each int8 conv's bias (sequential bias
#: correction, :mod:`effnet.deploy.bias_correction`): Lite0 on five calibration folds of 100 images, 98.55% top-1
#: agreement with fp32 against 97.90% without it, 98.70 against 97.95% with 10; fewer were not measured, and a
#: mean over a handful of images is mostly noise (docs/benchmarks.md)
BIAS_CORRECTION_MIN_IMAGES = 10

#: activation observers a recipe may use: what the int8 grid of each activation spans
ACTIVATION_OBSERVERS = ("histogram", "minmax", "moving_average")


def _int8_quantizer(observer: str = "histogram", fp32_modules: tuple[str, ...] = INT8_FP32_MODULES) -> object:
    """The XNNPACK quantizer (symmetric per-channel int8 weights, per-tensor int8 activations observed as
    histograms) with two changes that bring Lite0 int8 to its fp32 top-1 (85.5 -> 88.0-88.8, fp32 88.2, on 400
    real images; docs/benchmarks.md):

    - ReLU6 outputs are observed *after* the clamp. The stock quantizer shares one observer between a
      conv and the ReLU6 after it, so the int8 grid spans the conv's raw range (tens) while only [0, 6]
      survives the clamp: about 30 of 256 levels carried the signal. Observed after the clamp, all 256
      do. XNNPACK fuses the clamp into the int8 conv (``dq -> conv -> hardtanh -> q``), as it does ReLU.
    - ``fp32_modules`` (default :data:`INT8_FP32_MODULES`) and :data:`INT8_FP32_TYPES` stay fp32.

    ``observer`` picks the activation observer (:data:`ACTIVATION_OBSERVERS`; docs/benchmarks.md compares them).
    """
    import dataclasses

    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e import MinMaxObserver, MovingAverageMinMaxObserver
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec

    if observer not in ACTIVATION_OBSERVERS:
        raise ValueError(f"int8 activation observer must be one of {', '.join(ACTIVATION_OBSERVERS)}, got {observer!r}")
    key = "quantization_annotation"
    config = get_symmetric_quantization_config(is_per_channel=True)
    if observer != "histogram":
        ctr = (MinMaxObserver if observer == "minmax" else MovingAverageMinMaxObserver).with_args(eps=2**-12)
        act = dataclasses.replace(config.input_activation, observer_or_fake_quant_ctr=ctr)
        config = dataclasses.replace(config, input_activation=act, output_activation=act)

    def kept_fp32(node: torch.fx.Node) -> bool:
        for path, kind in node.meta.get("nn_module_stack", {}).values():
            kind = kind if isinstance(kind, str) else f"{kind.__module__}.{kind.__qualname__}"
            if any(path == m or path.startswith(m + ".") for m in fp32_modules) \
                    or kind.endswith(INT8_FP32_TYPES):
                return True
        return False

    def share_pad(pad: torch.fx.Node) -> None:
        """SAME padding between int8 ops carries its input's int8 parameters through to the conv after it.

        XNNPACK runs an int8 pad only when input and output share their parameters (with an observer of its
        own the conv's input differs); then it takes the pad int8 (:func:`_partitioner_configs`)."""
        source = pad.args[0]
        if key not in source.meta or source.meta[key].output_qspec is None or kept_fp32(pad):
            return
        pad.meta[key] = QuantizationAnnotation(input_qspec_map={source: SharedQuantizationSpec(source)},
                                               output_qspec=SharedQuantizationSpec((source, pad)), _annotated=True)
        for user in pad.users:
            annotation = user.meta.get(key)
            if annotation is not None and pad in annotation.input_qspec_map:
                annotation.input_qspec_map[pad] = SharedQuantizationSpec((source, pad))

    class RecipeQuantizer(XNNPACKQuantizer):
        def annotate(self, gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
            gm = super().annotate(gm)
            for node in gm.graph.nodes:
                if node.op == "call_function" and any(str(node.target).endswith(h) for h in _HARDTANH):
                    producer = node.args[0]
                    before = producer.meta.get(key)
                    if (before is None or before.output_qspec is None or len(producer.users) != 1
                            or isinstance(before.output_qspec, SharedQuantizationSpec)):
                        continue
                    node.meta[key] = QuantizationAnnotation(input_qspec_map={}, output_qspec=before.output_qspec,
                                                            _annotated=True)
                    before.output_qspec = None
            for node in gm.graph.nodes:
                if key in node.meta and kept_fp32(node):
                    del node.meta[key]
            for node in gm.graph.nodes:
                if node.op == "call_function" and any(str(node.target).endswith(p) for p in _PAD):
                    share_pad(node)
            return gm

    return RecipeQuantizer().set_global(config)


def _batch_dim(max_batch: int) -> dict[int, object]:
    """dynamic_shapes entry of an NCHW input whose batch may be anything from 1 to ``max_batch``."""
    return {0: torch.export.Dim("batch", min=1, max=max_batch)}


def quantize_pt2e(model: nn.Module, calibration: torch.Tensor, *, observer: str = "histogram",
                  fp32_modules: tuple[str, ...] = INT8_FP32_MODULES, bias_correction: bool = False) -> nn.Module:
    """``model`` quantized to int8 by PT2E with effnet's XNNPACK recipe (:func:`_int8_quantizer`),
    observers fed ``calibration`` (preprocessed real images) in its order, 16 at a time: the same images in
    the same order give the same program (a histogram observer's ranges depend on the order).
    ``bias_correction``: then each int8 conv's bias is corrected on the same images, in graph order
    (:mod:`effnet.deploy.bias_correction`)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    example = calibration[:2] if len(calibration) >= 2 else calibration.expand(2, *calibration.shape[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        captured = torch.export.export(model, (example,), dynamic_shapes=(_batch_dim(1024),)).module()
        prepared = prepare_pt2e(captured, _int8_quantizer(observer, fp32_modules))
        with torch.no_grad():
            for chunk in calibration.split(16):
                prepared(chunk)
        quantized = convert_pt2e(prepared)
    if bias_correction:
        from effnet.deploy.bias_correction import correct_biases

        correct_biases(quantized, model, calibration)
    return quantized


def _partitioner_configs() -> list[type]:
    """XNNPACK's partitioner configs, with constant padding taken int8 as well as fp32.

    ExecuTorch 1.5 offers XNNPACK only fp32 pads, so an int8 SAME pad ran as int8 -> fp32 convert, fp32 pad,
    fp32 -> int8 convert (Lite0: 4 pads, 8 converts, about 2 ms of a 17 ms call). XNNPACK's pad itself
    is type-generic: it needs equal input and output parameters, which the recipe's pads have
    (:func:`_int8_quantizer`), and then folds the pad into the int8 conv after it."""
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
    from executorch.backends.xnnpack.partition.config.generic_node_configs import ConstantPadConfig
    from executorch.backends.xnnpack.partition.config.xnnpack_config import ConfigPrecisionType

    class Int8ConstantPadConfig(ConstantPadConfig):
        def supported_precision_types(self) -> list[ConfigPrecisionType]:
            return [ConfigPrecisionType.FP32, ConfigPrecisionType.STATIC_QUANT]

        def check_constraints(self, node: torch.fx.Node, ep: object) -> bool:
            # XNNPACK refuses (at load) an int8 pad whose output parameters differ from its input's
            source = node.args[0]
            if "dequantize" in str(getattr(source, "target", "")) and any(
                    "quantize" in str(u.target) and tuple(u.args[1:3]) != tuple(source.args[1:3]) for u in node.users):
                return False
            return super().check_constraints(node, ep)

    return [Int8ConstantPadConfig if c is ConstantPadConfig else c for c in ALL_PARTITIONER_CONFIGS]


def lower_to_xnnpack(model: nn.Module, example: torch.Tensor, metadata: dict[str, str] | None = None,
                     max_batch: int = 1) -> bytes:
    """The serialized ExecuTorch program of ``model`` with everything XNNPACK supports delegated to it
    (:func:`lower_to_edge`, serialized)."""
    return lower_to_edge(model, example, metadata, max_batch).to_executorch().buffer


def lower_to_edge(model: nn.Module, example: torch.Tensor, metadata: dict[str, str] | None = None,
                  max_batch: int = 1) -> object:
    """ExecuTorch's edge program (``EdgeProgramManager``) of ``model`` with everything XNNPACK supports
    delegated to it; ``executorch.devtools.backend_debug.get_delegation_info`` of its graph says what was not.

    ``metadata`` becomes the constant method ``effnet_metadata`` returning it as one JSON string
    (:mod:`effnet.deploy.artifacts`): inside the program, so nothing can separate the two. With
    ``max_batch`` > 1 the program takes any batch from 1 to ``max_batch`` (XNNPACK reshapes its
    operators per call; ExecuTorch plans memory for the largest), marked by :data:`DYNAMIC_BATCH_METHOD`;
    else exactly ``example``'s batch.
    """
    import json

    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # torch.export sees the blocks' plain forward: squeeze-excitation as pool + 1x1 convs, the form
        # XNNPACK delegates whole (the eager eval form's matmuls on a 2-D mean are not delegated)
        constants = {METADATA_METHOD: json.dumps(metadata)} if metadata else {}
        if max_batch > 1:
            example = example[:1].expand(2, *example.shape[1:]).contiguous()  # 1 would specialise the size
            program = torch.export.export(model, (example,), dynamic_shapes=(_batch_dim(max_batch),))
            constants[DYNAMIC_BATCH_METHOD] = True
        else:
            program = torch.export.export(model, (example,))
        return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner(configs=_partitioner_configs())],
                                           constant_methods=constants or None)


def xnnpack_op_events(program: bytes, x: torch.Tensor, etdump: str | Path, calls: int = 1) -> list:
    """The per-operator events of ``calls`` runs of ``program`` on ``x``, as XNNPACK itself times them
    (ExecuTorch's ETDump, written to ``etdump`` and read by its Inspector): each has ``name`` (the kernel,
    e.g. ``QC8 Convolution #3``) and ``perf_data`` (its times over the calls, ms; None for wrappers)."""
    import warnings

    from executorch.devtools import Inspector
    from executorch.extension.pybindings.portable_lib import _load_for_executorch_from_buffer

    module = _load_for_executorch_from_buffer(program, enable_etdump=True, debug_buffer_size=0)
    for _ in range(calls):
        module.forward([x.contiguous()])
    module.write_etdump_result_to_file(str(etdump))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blocks = Inspector(etdump_path=str(etdump)).event_blocks
    return next(b for b in blocks if b.name == "Execute").events


def executorch_runner(path: str | Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function of an NCHW float batch running the program at ``path`` in ExecuTorch's runtime.

    A program with a dynamic batch runs any batch in chunks of at most its largest; one with a fixed
    batch runs chunks of exactly it (the last padded). The function's ``dynamic_batch`` and ``max_batch``
    say which, and ``calls`` counts the runtime calls made so far.
    """
    _require_executorch()
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(Path(path))
    method = program.load_method("forward")
    batch = method.metadata.input_tensor_meta(0).sizes()[0]
    dynamic = DYNAMIC_BATCH_METHOD in program.method_names

    def run(x: torch.Tensor) -> torch.Tensor:
        chunks = x.split(batch) if dynamic else padded_batches(x, batch)
        run.calls += len(chunks)
        outs = [method.execute([chunk.contiguous().float()])[0] for chunk in chunks]
        return torch.cat(outs)[:len(x)]

    run.dynamic_batch, run.max_batch, run.calls = dynamic, batch, 0
    return run


def export_executorch(
    model: nn.Module,
    path: str | Path,
    *,
    int8_images: torch.Tensor | None = None,
    batch: int = 1,
    max_batch: int = 1,
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
    ``max_batch`` > 1 writes a program taking any batch up to it (``batch`` is then ignored).
    """
    _require_executorch()
    path = Path(path)
    model = model.eval()
    _, c, h, w = _default_input_shape(model, input_size)
    shape = (batch if max_batch == 1 else 2, c, h, w)
    example = torch.randn(*shape)
    reference = model
    if int8_images is not None:
        if int8_images.dim() != 4 or tuple(int8_images.shape[1:]) != (c, h, w):
            raise ValueError(f"int8 calibration images must be N x {c} x {h} x {w}, got {tuple(int8_images.shape)}")
        reference = quantize_pt2e(model, int8_images, bias_correction=corrects_biases(len(int8_images)))
    result = ExportResult(path, "executorch int8" if int8_images is not None else "executorch", shape, max_batch > 1, False,
                          atol=atol if atol is not None else 1e-4)

    def write(tmp: Path) -> None:
        tmp.write_bytes(lower_to_xnnpack(reference, example, metadata, max_batch=max_batch))

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


def corrects_biases(calibration_images: int) -> bool:
    """Whether an int8 export calibrated on this many images also corrects its biases (:data:`BIAS_CORRECTION_MIN_IMAGES`)."""
    return calibration_images >= BIAS_CORRECTION_MIN_IMAGES


def export_executorch_int8(
    model: nn.Module, path: str | Path, images: torch.Tensor, *, batch: int = 1, max_batch: int = 1,
    fp32_path: str | Path | None = None, metadata: dict[str, str] | None = None,
) -> Int8Result:
    """An int8 program calibrated on the even-numbered ``images``; its top-1 agreement with the fp32 model
    (the program at ``fp32_path`` when given, else PyTorch) measured on the odd-numbered ones."""
    if images.dim() != 4 or len(images) < 2:
        raise ValueError(f"need at least 2 preprocessed images (N, 3, H, W) to calibrate and check, got {tuple(images.shape)}")
    calibrate, held_out = images[0::2], images[1::2]
    export_executorch(model, path, int8_images=calibrate, batch=batch, max_batch=max_batch,
                      input_size=tuple(images.shape[2:]), metadata=metadata)
    fp32 = executorch_runner(fp32_path) if fp32_path is not None else model.eval()
    with torch.no_grad():
        agree = float((executorch_runner(path)(held_out).argmax(1) == fp32(held_out).argmax(1)).float().mean())
    method = "biases corrected on them" if corrects_biases(len(calibrate)) else ""
    return Int8Result(Path(path), len(calibrate), len(held_out), agree, kept_fp32_words(model), method=method)


def kept_fp32_words(model: nn.Module) -> tuple[str, ...]:
    """What the int8 recipe leaves in fp32 in ``model`` (:data:`INT8_FP32_MODULES`, :data:`INT8_FP32_TYPES`), in words."""
    has_se = any(type(m).__name__.endswith(INT8_FP32_TYPES) for m in model.modules())
    return ("first conv", *(("squeeze-excitation",) if has_se else ()), "classifier")
