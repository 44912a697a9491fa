"""Saving activation memory in training: the training forms of the blocks of :mod:`effnet.arch.layers`.

The forms (:data:`TRAINING_FORMS`, swapped in by ``model.train()``, see :mod:`effnet.arch.forms`):

- :class:`LeanSwish` runs :class:`SwishFunction`, which keeps only Swish's input (the backward
  recomputes the sigmoid);
- :class:`LeanSqueezeExcite` runs :class:`SqueezeExciteFunction`, the whole SE rescale with one fused
  gradient for its input;
- :class:`LeanMBConv` recomputes the block in the backward pass when :func:`set_grad_checkpointing`
  asks, fully or selectively, in every stage or chosen ones (:func:`early_stages`).

The autograd functions are on by default and switched per model: ``model.set_memory_efficient(False)``
/ :func:`set_memory_efficient`, or ``with disabled(model):``. They run only while autograd records
through the block's input, and never under ``torch.jit`` tracing, FX tracing, ``torch.compile`` or
``torch.export``, which need plain ops. Measured effect: docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn
from torch.fx._symbolic_trace import is_fx_symbolic_tracing
from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

from effnet.arch.config import STEM_STRIDE
from effnet.arch.forms import Specialised
from effnet.arch.layers import MBConv, SqueezeExcite, Swish
from effnet.arch.switches import set_switch, switched
from effnet.choices import CHECKPOINT_MODES


def set_memory_efficient(model: nn.Module, enable: bool = True) -> None:
    """Use the memory-efficient Swish / SE autograd functions in ``model`` (True) or plain autograd (False)."""
    set_switch(model, "memory_efficient", bool(enable))


def disabled(model: nn.Module) -> contextlib.AbstractContextManager[nn.Module]:
    """``with disabled(model):`` trains with plain autograd ops, then restores each block's switch."""
    return switched(model, "memory_efficient", False)


def records(x: torch.Tensor) -> bool:
    """Autograd records through ``x`` in plain eager execution (the caller checks its own switch)."""
    return (not is_fx_symbolic_tracing() and x.requires_grad and torch.is_grad_enabled()  # (x is a Proxy under FX)
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling() and not torch.compiler.is_exporting())


class SwishFunction(torch.autograd.Function):
    """x * sigmoid(x) that saves only its input; the backward pass recomputes sigmoid(x)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return F.silu(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        # ATen's fused kernel: one pass over the tensor (spelling out sig * (1 + x * (1 - sig))
        # takes six).
        return torch.ops.aten.silu_backward(grad, x)


class SqueezeExciteFunction(torch.autograd.Function):
    """:class:`~effnet.arch.layers.SqueezeExcite`'s rescale ``x * sigmoid(mlp(mean(x)))`` with one fused gradient for ``x``.

    ``x`` gets gradient along two paths, the rescale and the pooled mean. Plain autograd computes
    them as separate full-size tensors (grad * gate, then the mean's broadcast grad / HW) and adds
    them: three passes over the block's largest tensor. Here the tiny MLP's backward runs first
    (recomputed from the saved pooled vector) and one ``addcmul`` writes the sum. Saves only
    ``x``, the pooled vector and the weights.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, act: Callable, *weights: torch.Tensor
                ) -> torch.Tensor:
        pooled = x.mean((2, 3))
        hidden = F.linear(pooled, weights[0], weights[1])
        gate = torch.sigmoid(F.linear(act(hidden), weights[2], weights[3]))
        ctx.act, ctx.compute_dtype = act, hidden.dtype  # under autocast the matmuls ran in bf16/fp16
        ctx.save_for_backward(x, pooled, *weights)
        return x * gate[:, :, None, None]

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, *small = ctx.saved_tensors
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(True) for t in small]
            pooled, w1, b1, w2, b2 = (t.to(ctx.compute_dtype) for t in leaves)
            gate = torch.sigmoid(F.linear(ctx.act(F.linear(pooled, w1, b1)), w2, b2))
        grad_gate = (grad * x).sum((2, 3))
        grad_pooled, *grad_weights = torch.autograd.grad(gate, leaves, grad_gate.to(gate.dtype))
        per_pixel = (grad_pooled / (x.shape[2] * x.shape[3]))[:, :, None, None].to(grad.dtype)
        grad_x = torch.addcmul(per_pixel, grad, gate.detach()[:, :, None, None].to(grad.dtype))
        return grad_x, None, *grad_weights


class LeanSwish(Specialised, Swish):
    """Swish keeping only its input for the backward pass."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.memory_efficient and records(x):
            return SwishFunction.apply(x)
        return super().forward(x)


class LeanSqueezeExcite(Specialised, SqueezeExcite):
    """Squeeze-excitation as one autograd function (the 1x1 convs on the pooled vector as matmuls, same weights)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.memory_efficient and records(x):
            return SqueezeExciteFunction.apply(x, self.act, self.reduce.weight.flatten(1), self.reduce.bias,
                                               self.expand.weight.flatten(1), self.expand.bias)
        return super().forward(x)


class LeanMBConv(Specialised, MBConv):
    """The block, recomputed in the backward pass when its ``grad_checkpointing`` is on (keeps its input only)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if checkpoints(self):
            return checkpointed(self, super().forward, x)
        return super().forward(x)


# ------------------------------------------------------------------ activation checkpointing
#: Ops whose outputs selective checkpointing keeps: the convolutions, the costly part to recompute.
_CONV_OPS = frozenset({torch.ops.aten.convolution.default, torch.ops.aten.mkldnn_convolution.default,
                       torch.ops.aten.cudnn_convolution.default})


def _keep_conv_outputs(ctx: object, op: object, *args: object, **kwargs: object) -> CheckpointPolicy:
    return CheckpointPolicy.MUST_SAVE if op in _CONV_OPS else CheckpointPolicy.PREFER_RECOMPUTE


def set_grad_checkpointing(
    model: nn.Module, enable: bool | str = True, stages: Iterable[int] | None = None
) -> None:
    """Activation checkpointing for the MBConv blocks of ``model`` (training memory for compute).

    ``"full"`` (what ``True`` means) keeps only each block's input and recomputes the whole
    block in the backward pass. ``"selective"`` also keeps the conv outputs and recomputes only
    the element-wise work (BatchNorm, Swish, SE), so no convolution runs twice; it keeps about
    3x more than full and 3x less than no checkpointing (memory and speed of each:
    docs/benchmarks.md). ``False`` switches checkpointing off.

    ``stages`` limits it to those indices of ``model.stages`` (paper stages 2-8 are 0-6); the
    early, high-resolution stages hold most of the activations (see :func:`early_stages`), so
    checkpointing only them buys most of the memory for little recomputation.
    """
    mode = "full" if enable is True else enable or None
    if mode is not None and mode not in CHECKPOINT_MODES:
        raise ValueError(f"grad checkpointing must be True, False or one of {CHECKPOINT_MODES}, got {enable!r}")
    if stages is None:
        scope = [model]
    else:
        all_stages = getattr(model, "stages", None)
        if all_stages is None:
            raise ValueError("stages= needs a model with .stages (an effnet EfficientNet)")
        stages = sorted(set(stages))
        bad = [i for i in stages if not 0 <= i < len(all_stages)]
        if bad:
            raise ValueError(f"stage indices {bad} out of range: this model has stages 0..{len(all_stages) - 1}")
        scope = [all_stages[i] for i in stages]
    for part in scope:
        set_switch(part, "grad_checkpointing", mode)


def early_stages(model: nn.Module, max_stride: int = 4) -> list[int]:
    """Indices of ``model.stages`` whose input is at most ``max_stride`` times smaller than the image.

    For B0 with the default 4 these are stages 0-2 (112x112 and 56x56 inputs at 224 px): 5 of the 16
    blocks, which keep most of the activations of a training step.
    """
    stride, out = STEM_STRIDE, []
    for i, stage in enumerate(model.stages):
        if stride <= max_stride:
            out.append(i)
        stride *= stage[0].dw.conv.stride[0]
    return out


def checkpoints(block: nn.Module) -> bool:
    """Whether ``block`` recomputes itself now: checkpointing on, training, autograd recording, eager or compiled."""
    return bool(block.grad_checkpointing) and block.training and torch.is_grad_enabled() and not is_fx_symbolic_tracing()


@contextlib.contextmanager
def _frozen_bn_stats(module: nn.Module) -> Iterator[None]:
    """BatchNorm layers of ``module`` normalise with batch statistics but leave running ones unchanged."""
    bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(bns, saved, strict=True):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)


@contextlib.contextmanager
def _recompute_context(module: nn.Module, selective: contextlib.AbstractContextManager | None) -> Iterator[None]:
    # BN statistics are frozen *outside* the selective-recompute mode: the bookkeeping it does
    # (cloning the step counter) must not be mistaken for an op of the block being replayed.
    with _frozen_bn_stats(module), (selective or contextlib.nullcontext()):
        yield


def checkpointed(block: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``forward(x)`` keeping only ``x`` (and, when selective, the conv outputs) for the backward pass.

    The rest is recomputed in the backward pass with BN momentum 0, so running statistics are
    updated only once.
    """
    def contexts() -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
        if block.grad_checkpointing == "selective":
            forward, recompute = create_selective_checkpoint_contexts(_keep_conv_outputs)
            return forward, _recompute_context(block, recompute)
        return contextlib.nullcontext(), _recompute_context(block, None)

    return torch.utils.checkpoint.checkpoint(
        forward, x, use_reentrant=False, context_fn=contexts,
        respect_saved_tensors_hooks=True,  # e.g. torch.autograd.graph.save_on_cpu sees them too
    )


#: The training form of each plain block (ConvBNAct runs plain in training).
TRAINING_FORMS: dict[type, type] = {Swish: LeanSwish, SqueezeExcite: LeanSqueezeExcite, MBConv: LeanMBConv}
