"""Inference-only rewrites of a model: BatchNorm folding, channels_last, bf16, torch.compile (int8: effnet.deploy.quantize).

Every rewrite works on a copy; the model passed in is left untouched. The fp32 rewrites are exact
up to float rounding (the tests hold them to 1e-4 of the plain model's logits).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from effnet.arch.fastpath import folded_conv_bn


def bf16_supported() -> bool:
    """Whether this CPU has native bf16 matmul/conv (AVX512-BF16 or AMX) for oneDNN."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A copy of ``conv`` (same class, so SAME padding is kept) computing ``bn(conv(x))`` in eval mode."""
    fused = copy.deepcopy(conv)
    weight, bias = folded_conv_bn(conv, bn)
    fused.weight = nn.Parameter(weight, requires_grad=conv.weight.requires_grad)
    fused.bias = nn.Parameter(bias, requires_grad=conv.weight.requires_grad)
    return fused


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every ``conv`` + ``bn`` pair (effnet's ConvBNAct naming) in place; returns ``model``.

    The BatchNorm becomes an Identity, so the module tree keeps its names and the activation
    still follows. Only valid in eval mode (running statistics are baked in).
    """
    if model.training:
        raise ValueError("fold_batchnorm needs an eval-mode model (call model.eval()); BN statistics get baked in")
    for module in model.modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            module.conv = fold_conv_bn(conv, bn)
            module.bn = nn.Identity()
    return model


class CastInput(nn.Module):
    """Runs the wrapped model in ``dtype`` / memory format and returns float32 logits."""

    def __init__(self, model: nn.Module, dtype: torch.dtype | None, channels_last: bool) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.dtype is not None:
            x = x.to(self.dtype)
        return self.model(x).float()


# Why bf16 is refused; the caller adds the fix in its own terms (a Python argument, a command-line flag).
NO_BF16 = "this CPU has no native bf16 (AVX512-BF16 or AMX), where bf16 runs slower than fp32"


def backend_bf16_check() -> None:
    """Refuse ``--backend bf16`` (predict, eval, bench) on a CPU without native bf16, in the flags' words."""
    if not bf16_supported():
        raise RuntimeError(f"--backend bf16: {NO_BF16}; use --backend channels_last (the same rewrite in fp32)")


def optimize_for_inference(
    model: nn.Module,
    *,
    fold_bn: bool = True,
    channels_last: bool = True,
    dtype: torch.dtype | None = None,
    compile: bool = False,
    compile_mode: str | None = None,
) -> nn.Module:
    """A copy of ``model`` rewritten for fast CPU inference; call it like the original.

    ``fold_bn`` folds BatchNorm into the convolutions; ``channels_last`` stores weights and
    activations NHWC (oneDNN's native layout, much faster for depthwise convs); ``dtype=torch.bfloat16``
    runs in bf16 (refused when the CPU lacks bf16 support, where it would be slower than fp32);
    ``compile`` wraps the result in ``torch.compile`` (inductor; the first call compiles).
    The returned module takes float32 NCHW input and returns float32 logits in eval mode.
    Which path (this, ONNX Runtime, ExecuTorch, int8) is fastest for which model and precision, and
    what each costs in top-1: docs/deploy.md.
    """
    if dtype not in (None, torch.float32, torch.bfloat16):
        raise ValueError(f"dtype must be None, torch.float32 or torch.bfloat16, got {dtype}; for int8 use effnet.deploy.quantize.quantize_onnx_int8 (ONNX Runtime)")
    if dtype == torch.bfloat16 and not bf16_supported():
        raise RuntimeError(f"{NO_BF16}; use dtype=None for fp32")
    model = copy.deepcopy(model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if fold_bn:
        fold_batchnorm(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if dtype == torch.bfloat16:
        model = model.to(torch.bfloat16)
    wrapped: nn.Module = CastInput(model, dtype if dtype == torch.bfloat16 else None, channels_last)
    if compile:
        wrapped = torch.compile(wrapped, mode=compile_mode, dynamic=False)
    return wrapped


def top1_agreement(reference: nn.Module, candidate: Any, images: torch.Tensor, batch: int = 16) -> float:
    """Fraction of ``images`` on which ``candidate``'s top-1 class equals ``reference``'s."""
    agree = 0
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = images[start:start + batch]
            agree += int((reference(x).argmax(1) == candidate(x).argmax(1)).sum())
    return agree / len(images)
