"""The things ``effnet bench`` measures: one callable per (implementation, backend).

effnet's backends use :func:`effnet.optimize_for_inference` (BN folded); the references get the
generic equivalent (channels_last, bf16 weights, torch.compile, their own ONNX export), never
effnet's rewrites. All models get the same treatment of their random weights: BatchNorm
statistics are calibrated on random data so activations have realistic magnitudes (fresh
running statistics give near-zero, even denormal, activations, which run at different speeds);
int8 candidates calibrate them on the real photos their int8 grids are calibrated on.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

REFERENCES = ("torchvision", "timm")
CL = torch.channels_last


@dataclass
class Candidate:
    impl: str
    backend: str
    step: Callable[[], Any]
    step1: Callable[[], Any] | None
    gflops_per_image: float
    bf16: bool = False
    run: Callable[[torch.Tensor], Any] | None = None  # the inference path itself (for accuracy)

    @property
    def key(self) -> str:
        return f"{self.impl}/{self.backend}"


def calibrate_bn(model: nn.Module, resolution: int, batches: int = 2, seed: int = 0,
                 images: torch.Tensor | None = None) -> nn.Module:
    """Set BatchNorm running statistics to those of random inputs (cumulative over ``batches``), or of
    ``images`` (preprocessed, 4 at a time) when given.

    A model that int8 calibrates on real photos needs the statistics of those photos: with statistics of
    white noise, real photos (spatially smooth) drive random-weight B0's activations to thousands by the
    last stage, the int8 grids span that, and the check's random inputs then fall within a few int8 steps
    of zero (docs/benchmarks.md, "B0 int8 in ExecuTorch")."""
    gen = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    inputs = images.split(4) if images is not None else (
        torch.randn(4, 3, resolution, resolution, generator=gen) for _ in range(batches))
    with torch.no_grad():
        for x in inputs:
            model(x)
    for m in bns:
        m.momentum = 0.1
    return model.eval()


def build_bench_model(impl: str, name: str, num_classes: int) -> nn.Module:
    """A randomly initialised model of architecture ``name`` (b0..b7) from ``impl``."""
    if impl == "effnet":
        from effnet.factory import create_model

        return create_model(name, num_classes=num_classes)
    variant = name if name.startswith("b") else None
    if variant is None or not variant[1:].isdigit():
        raise ValueError(f"references exist only for b0..b7, not {name!r}; drop --compare")
    if impl == "torchvision":
        import torchvision

        return getattr(torchvision.models, f"efficientnet_{variant}")(num_classes=num_classes)
    if impl == "timm":
        import timm

        return timm.create_model(f"efficientnet_{variant}", num_classes=num_classes)
    raise ValueError(f"unknown implementation {impl!r}")


def _infer_runner(
    impl: str, backend: str, model: nn.Module, calibration: torch.Tensor | None = None, max_batch: int = 32,
    resolution: int | None = None,
) -> tuple[Callable[[torch.Tensor], Any], bool]:
    """(function of an fp32 NCHW batch, runs in bf16) for one inference backend; int8 calibrates on
    ``calibration`` (preprocessed real images), else on the bundled photos. ExecuTorch programs take any
    batch up to ``max_batch`` in one call, at ``resolution`` (default: the model's)."""
    from effnet.deploy.inference import backend_bf16_check, optimize_for_inference

    if backend == "eager":
        return model, False
    if backend in ("onnxruntime", "onnxruntime_int8"):
        return _onnx_runner(impl, model, backend == "onnxruntime_int8", calibration), False
    if backend == "openvino":  # the same ONNX export ONNX Runtime gets (references: their own), run by OpenVINO
        from effnet.deploy.openvino import openvino_runner

        return openvino_runner(onnx_file(impl, model)), False
    if backend in ("executorch", "executorch_int8"):
        return _executorch_runner(impl, model, backend == "executorch_int8", calibration, max_batch,
                                  resolution or _resolution(impl, model)), False
    bf16 = backend == "bf16"
    if bf16:
        backend_bf16_check()
    # References get the same generic rewrites minus BN folding, which is effnet's own.
    fast = optimize_for_inference(model, fold_bn=impl == "effnet", dtype=torch.bfloat16 if bf16 else None,
                                  compile=backend == "compile")
    return fast, bf16


def _resolution(impl: str, model: nn.Module) -> int:
    return model.config.resolution if impl == "effnet" else 224


def _calibration(impl: str, model: nn.Module, calibration: torch.Tensor | None,
                 resolution: int | None = None) -> torch.Tensor:
    if calibration is not None:
        return calibration
    from effnet.data.transforms import eval_transform
    from effnet.deploy.quantize import calibration_photos

    return calibration_photos(eval_transform(resolution=resolution or _resolution(impl, model)))


def _executorch_runner(
    impl: str, model: nn.Module, int8: bool, calibration: torch.Tensor | None, max_batch: int, resolution: int
) -> Callable[[torch.Tensor], Any]:
    """An ExecuTorch program (XNNPACK) taking any batch up to ``max_batch`` (the bench batch: one call
    per batch, as ONNX Runtime gets), run in ExecuTorch's runtime."""
    from effnet.deploy.executorch import executorch_runner, export_executorch

    path = Path(tempfile.mkdtemp(prefix="effnet-bench-")) / f"{impl}.pte"
    export_executorch(model, path, int8_images=_calibration(impl, model, calibration, resolution) if int8 else None,
                      input_size=resolution, max_batch=max(max_batch, 1))
    return executorch_runner(path)


def onnx_file(impl: str, model: nn.Module, int8: bool = False, calibration: torch.Tensor | None = None) -> Path:
    """``model`` exported to ONNX in a temporary folder (effnet with its own exporter), optionally int8."""
    path = Path(tempfile.mkdtemp(prefix="effnet-bench-")) / f"{impl}.onnx"
    if impl == "effnet":
        from effnet.deploy.export import export_onnx

        export_onnx(model, path, dynamic_batch=True, check=False, input_size=model.config.resolution)
    else:
        res = 224
        example = torch.randn(2, 3, res, res)
        with contextlib.redirect_stdout(None):
            program = torch.onnx.export(model, (example,), dynamo=True, opset_version=18,
                                        dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
        program.save(str(path))
    if int8:  # calibrated on real images (`effnet bench --accuracy DATA`: held-out accuracy and agreement)
        from effnet.deploy.quantize import quantize_onnx_int8

        path = quantize_onnx_int8(path, path.with_suffix(".int8.onnx"), _calibration(impl, model, calibration)).path
    return path


def _onnx_runner(
    impl: str, model: nn.Module, int8: bool = False, calibration: torch.Tensor | None = None
) -> Callable[[torch.Tensor], Any]:
    from effnet.deploy.export import onnx_session

    session = onnx_session(onnx_file(impl, model, int8, calibration))
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x.numpy()})[0]


def _train_step(impl: str, backend: str, model: nn.Module, x: torch.Tensor) -> tuple[Callable[[], Any], bool]:
    model.train()
    if backend != "eager":
        model = model.to(memory_format=CL)
        x = x.contiguous(memory_format=CL)
    if backend in ("checkpoint", "checkpoint_early", "checkpoint_selective", "bf16_checkpoint"):
        if impl != "effnet" and backend in ("checkpoint_early", "checkpoint_selective"):
            raise ValueError(f"{impl}'s checkpointing has no selective or per-stage mode; effnet only")
        if not hasattr(model, "set_grad_checkpointing"):
            raise ValueError(f"{impl} has no per-stage activation checkpointing")
        if backend == "checkpoint_early":
            from effnet.arch.memory_saving import early_stages

            model.set_grad_checkpointing(True, stages=early_stages(model))
        else:
            model.set_grad_checkpointing("selective" if backend == "checkpoint_selective" else True)
    if backend == "plain_autograd" and impl != "effnet":
        raise ValueError("plain_autograd switches off effnet's own memory-efficient ops; effnet only")
    forward = torch.compile(model) if backend == "compile" else model
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    y = torch.randint(0, 10, (x.shape[0],), generator=torch.Generator().manual_seed(0))
    bf16 = backend in ("bf16", "bf16_checkpoint")
    memory_efficient = backend != "plain_autograd"

    if not memory_efficient:
        model.set_memory_efficient(False)  # this model is the candidate's own (a fresh one per candidate)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(forward(x), y)
        loss.backward()
        opt.step()

    return step, bf16


def build_candidates(
    cfg: Any, log: Callable[[str], None], only: tuple[str, str] | None = None,  # noqa: ANN401
    calibration: torch.Tensor | None = None,
) -> tuple[list[Candidate], dict[str, str]]:
    """Every (implementation, backend) of ``cfg`` that can run here (or just ``only``); the rest with the reason.

    effnet gets the weights ``cfg.weights`` when set (real weights, for accuracy), else random weights
    with calibrated BatchNorm statistics, as the references always do. int8 calibrates on ``calibration``."""
    from effnet.arch.config import get_config
    from effnet.arch.flops import model_cost

    resolution = cfg.resolution or get_config(cfg.model).resolution
    gflops = 2 * model_cost(cfg.model, resolution)[1] / 1e9 * (3 if cfg.mode == "train" else 1)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(cfg.batch, 3, resolution, resolution, generator=gen)
    x1 = torch.randn(1, 3, resolution, resolution, generator=gen)
    cands, skipped = [], {}
    for impl in ("effnet", *cfg.compare):
        for backend in cfg.backends:
            if only is not None and (impl, backend) != only:
                continue
            log(f"building {impl}/{backend} ...")
            torch.manual_seed(0)
            try:
                if impl == "effnet" and getattr(cfg, "weights", None):
                    from effnet.factory import create_model

                    model = create_model(cfg.model, weights=cfg.weights).eval()
                else:
                    model = build_bench_model(impl, cfg.model, cfg.num_classes)
                    # int8: BatchNorm statistics of the very photos its int8 grids are calibrated on
                    photos = _calibration(impl, model, calibration, resolution) if backend.endswith("_int8") else None
                    model = calibrate_bn(model, resolution, images=photos)
                if cfg.mode == "infer":
                    run, bf16 = _infer_runner(impl, backend, model, calibration, max_batch=cfg.batch,
                                              resolution=resolution)
                    cands.append(Candidate(impl, backend, _no_grad(run, x), _no_grad(run, x1), gflops, bf16, run))
                else:
                    step, bf16 = _train_step(impl, backend, model, x)
                    cands.append(Candidate(impl, backend, step, None, gflops, bf16))
            except (ValueError, RuntimeError, ImportError) as exc:
                skipped[f"{impl}/{backend}"] = str(exc).splitlines()[0][:200]
                log(f"skipping {impl}/{backend}: {skipped[f'{impl}/{backend}']}")
    return cands, skipped


def _no_grad(run: Callable[[torch.Tensor], Any], x: torch.Tensor) -> Callable[[], Any]:
    def call() -> Any:  # noqa: ANN401
        with torch.inference_mode():
            return run(x)

    return call
