"""Export to ONNX and TorchScript, checked against PyTorch right after writing.

Both exporters keep TF "SAME" padding dynamic: :func:`effnet.arch.layers.same_padding` is written
without data-dependent branches, so ``torch.export`` keeps the padding a function of the symbolic
image size, and for TorchScript the :class:`~effnet.arch.layers.Conv2dSame` modules are scripted
(not traced) before the rest of the model is traced. A file is written to a temporary name next
to its destination, checked, and only then renamed into place, so a file at ``path`` has passed
its check (when ``check=True``).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from effnet.arch.layers import Conv2dSame
from effnet.choices import DEFAULT_OPSET, MIN_OPSET
from effnet.fileio import atomic_path

#: Smallest / largest image side of a dynamic-size export. Below 33 px the last feature map is
#: 1x1 and the shape solver must special-case broadcasting; 32 px inputs need a fixed-size export.
MIN_DYNAMIC_SIZE = 33
MAX_DYNAMIC_SIZE = 8192


class ExportCheckError(RuntimeError):
    """The exported file's outputs differ from PyTorch's by more than the tolerance."""


@dataclass
class ExportResult:
    path: Path
    format: str
    input_shape: tuple[int, ...]
    dynamic_batch: bool
    dynamic_size: bool
    checked: bool = False
    atol: float = 1e-4
    max_abs_diff: float | None = None
    max_abs_logit: float | None = None
    per_shape: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        dyn = [name for name, on in (("batch", self.dynamic_batch), ("image size", self.dynamic_size)) if on]
        text = f"wrote {self.format} {self.path} (input {tuple(self.input_shape)}, dynamic: {', '.join(dyn) or 'none'})"
        if not self.checked:
            return text + "; not checked"
        shapes = ", ".join(f"{k}: {v:.2e}" for k, v in self.per_shape.items())
        return (
            f"{text}\ncheck vs PyTorch: max abs diff {self.max_abs_diff:.2e} <= {self.atol:.0e} "
            f"(outputs up to {self.max_abs_logit:.3g} in magnitude; {shapes})"
        )


def _default_input_shape(model: nn.Module, input_size: int | tuple[int, int] | None) -> tuple[int, int, int, int]:
    if input_size is None:
        config = getattr(model, "config", None)
        input_size = config.resolution if config is not None else 224
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    # Batch 2, not 1: an example of size 1 lets the exporter specialise that dimension.
    return (2, getattr(model, "in_chans", 3), h, w)


def check_shapes(input_shape: tuple[int, ...], dynamic_batch: bool, dynamic_size: bool) -> list[tuple[int, ...]]:
    """The input shapes a check runs: the example, plus other batches / odd sizes when dynamic."""
    n, c, h, w = input_shape
    shapes = [tuple(input_shape)]
    if dynamic_batch:
        shapes.append((1, c, h, w))
        shapes.append((3, c, h, w))
    if dynamic_size:
        shapes.append((n if not dynamic_batch else 1, c, max(MIN_DYNAMIC_SIZE, h // 2 + 1), max(MIN_DYNAMIC_SIZE, w - 31)))
    return shapes


def _compare(
    model: nn.Module, run: Callable[[torch.Tensor], torch.Tensor], shapes: list[tuple[int, ...]], seed: int = 0
) -> tuple[dict[str, float], float]:
    """Max abs difference per input shape, and the largest reference output magnitude."""
    gen = torch.Generator().manual_seed(seed)
    diffs, scale = {}, 0.0
    with torch.no_grad():
        for shape in shapes:
            x = torch.randn(*shape, generator=gen)
            expected = model(x).float()
            got = run(x).float()
            if got.shape != expected.shape:
                raise ExportCheckError(f"exported model gave shape {tuple(got.shape)} for input {shape}, "
                                       f"PyTorch {tuple(expected.shape)}")
            diffs["x".join(map(str, shape))] = (got - expected).abs().max().item()
            scale = max(scale, expected.abs().max().item())
    return diffs, scale


def _atomic_write(path: Path, suffix: str, write: Callable[[Path], None], verify: Callable[[Path], None]) -> None:
    """``write`` to a temporary file in the destination folder, ``verify`` it, then rename into place."""
    with atomic_path(path, suffix=suffix) as tmp:
        write(tmp)
        verify(tmp)


def _finish_check(result: ExportResult, compared: tuple[dict[str, float], float]) -> None:
    diffs, result.max_abs_logit = compared
    result.checked = True
    result.per_shape = diffs
    result.max_abs_diff = max(diffs.values())
    if not result.max_abs_diff <= result.atol:  # also catches NaN
        raise ExportCheckError(
            f"{result.format} export differs from PyTorch by {result.max_abs_diff:.3e} > {result.atol:.0e} "
            f"({diffs}); nothing was written to {result.path}"
        )


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    dynamic_batch: bool = True,
    dynamic_size: bool = False,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    input_size: int | tuple[int, int] | None = None,
    atol: float = 1e-4,
    metadata: dict[str, str] | None = None,
) -> ExportResult:
    """Export ``model`` (in eval mode) to ONNX with ``torch.export``; check it with onnxruntime.

    ``dynamic_size`` makes height and width symbolic (from 33 to 8192 px), TF SAME padding
    included. The check runs the file on the example shape and, for dynamic axes, on other
    batch sizes and odd image sizes, and raises :class:`ExportCheckError` above ``atol``.
    ``metadata`` is stored in the model's ``metadata_props``
    (:func:`effnet.deploy.model_spec.export_metadata`: class names, preprocessing ...).
    """
    from torch.export import Dim

    check_opset(opset)
    path = Path(path)
    model = model.eval()
    shape = _default_input_shape(model, input_size)
    axes: dict[int, Dim] = {}
    if dynamic_batch:
        axes[0] = Dim("batch", min=1, max=1 << 16)
    if dynamic_size:
        axes[2] = Dim("height", min=MIN_DYNAMIC_SIZE, max=MAX_DYNAMIC_SIZE)
        axes[3] = Dim("width", min=MIN_DYNAMIC_SIZE, max=MAX_DYNAMIC_SIZE)
    example = torch.randn(*shape)
    result = ExportResult(path, "onnx", shape, dynamic_batch, dynamic_size, atol=atol)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (example,), dynamo=True, dynamic_shapes=(axes,) if axes else None, opset_version=opset,
                input_names=["images"], output_names=["logits"], verbose=False,
            )
        written = {o.domain: o.version for o in program.model_proto.opset_import}.get("", opset)
        if written != opset:
            raise ValueError(f"torch's ONNX exporter wrote opset {written}, not the requested {opset}; "
                             f"nothing was written to {path}")
        program.model.metadata_props.update(metadata or {})
        program.save(str(tmp))

    def verify(tmp: Path) -> None:
        if check:
            session = onnx_session(tmp)
            name = session.get_inputs()[0].name
            run = lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])  # noqa: E731
            _finish_check(result, _compare(model, run, check_shapes(shape, dynamic_batch, dynamic_size)))

    _atomic_write(path, ".onnx", write, verify)
    return result


def check_opset(opset: int) -> None:
    """Refuse an ONNX opset the exporter cannot write (instead of writing another one)."""
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"ONNX opset {opset} is not supported: torch's exporter writes opsets {MIN_OPSET} to "
                         f"{newest} (the installed onnx's newest); use --opset {DEFAULT_OPSET} (the default)")


def onnx_session(path: str | Path, threads: int | None = None) -> object:
    """An onnxruntime CPU session with all graph optimisations on."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def script_same_convs(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose Conv2dSame modules are TorchScript-compiled.

    Tracing would freeze their padding to the example's size; a scripted submodule keeps its
    Python control flow and size arithmetic when the parent module is traced.
    """
    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, Conv2dSame):
                setattr(module, name, torch.jit.script(child))
    return model


def export_torchscript(
    model: nn.Module,
    path: str | Path,
    *,
    dynamic_size: bool = True,
    check: bool = True,
    input_size: int | tuple[int, int] | None = None,
    atol: float = 1e-4,
) -> ExportResult:
    """Trace ``model`` (eval mode) to TorchScript; batch size is always free, image size too.

    The result loads with ``torch.jit.load`` and needs no effnet import. The check reloads the
    written file and compares it with PyTorch on several batch sizes (and image sizes).
    """
    path = Path(path)
    model = model.eval()
    shape = _default_input_shape(model, input_size)
    result = ExportResult(path, "torchscript", shape, True, dynamic_size, atol=atol)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(script_same_convs(model), torch.randn(*shape))
        traced.save(str(tmp))

    def verify(tmp: Path) -> None:
        if check:
            loaded = torch.jit.load(str(tmp))
            _finish_check(result, _compare(model, loaded, check_shapes(shape, True, dynamic_size)))

    _atomic_write(path, ".pt", write, verify)
    return result


def set_onnx_metadata(path: str | Path, metadata: dict[str, str]) -> None:
    """Store ``metadata`` in the ``metadata_props`` of the ONNX file at ``path`` (replaced atomically).

    For files effnet writes by other means than :func:`export_onnx` (the int8 copy of ``--int8``).
    """
    import onnx

    path = Path(path)
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props} | metadata
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    with atomic_path(path, suffix=".onnx") as tmp:
        onnx.save(model, str(tmp))
