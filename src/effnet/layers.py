"""The building blocks of EfficientNet: Swish, squeeze-and-excitation, DropConnect, MBConv.

Paper section 4: the baseline's main block is the mobile inverted bottleneck (MBConv) of
MobileNetV2 with squeeze-and-excitation added, Swish activations, and stochastic depth
("drop connect") on the residual branch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from effnet.scaling import BlockSpec

#: Use the memory-efficient autograd functions below in training (switch off to compare with plain autograd).
MEMORY_EFFICIENT = True
#: Run convolutions on NHWC (channels_last) activations; values are unchanged, only the layout.
CHANNELS_LAST = True


def _memory_efficient(x: torch.Tensor) -> bool:
    return MEMORY_EFFICIENT and x.requires_grad and torch.is_grad_enabled() and not torch.compiler.is_compiling()


class _SwishFn(torch.autograd.Function):
    """x * sigmoid(x) that saves only its input; the backward pass recomputes sigmoid(x)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return F.silu(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        # ATen's fused kernel: one pass over the tensor. Spelling out sig * (1 + x * (1 - sig))
        # took six passes and made a B0 training step about 1.5x slower on CPU.
        return torch.ops.aten.silu_backward(grad, x)


def swish(x: torch.Tensor) -> torch.Tensor:
    """Memory-efficient Swish when gradients are needed (custom autograd), plain SiLU otherwise."""
    return _SwishFn.apply(x) if _memory_efficient(x) else F.silu(x)


class Swish(nn.SiLU):
    """Swish whose autograd graph keeps only the input (no sigmoid or output copy).

    Subclasses nn.SiLU so code that looks for SiLU still finds it; ``inplace`` is honoured
    in inference, where nothing needs to be kept.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _memory_efficient(x):
            return _SwishFn.apply(x)
        return F.silu(x, inplace=self.inplace)


def make_activation(name: str) -> nn.Module:
    """``swish`` is x * sigmoid(x) (torch's SiLU); ``relu6`` is used by EfficientNet-Lite."""
    return Swish(inplace=True) if name == "swish" else nn.ReLU6(inplace=True)


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) for one spatial dimension of any size.

    The output has ceil(size / stride) positions; the total padding needed for that is split
    with the extra pixel after (right/bottom), which is what makes it asymmetric for stride 2.
    The clamp at zero is skipped when the kernel covers the stride (always, in EfficientNet):
    that keeps the formula free of data-dependent branches, so torch.export / ONNX export with a
    symbolic image size keeps it symbolic instead of baking in (or refusing) one size; writing
    the output size as ``(size + stride - 1) // stride`` lets the shape solver bound it.
    """
    effective = (kernel - 1) * dilation + 1
    out = (size + stride - 1) // stride
    total = out * stride - size + effective - stride
    if effective < stride:
        total = max(total, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """A Conv2d with TensorFlow SAME padding computed from the actual input size at each call.

    Parameter names are those of nn.Conv2d, so state dicts are interchangeable.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        sh, sw = self.stride
        dh, dw = self.dilation
        top, bottom = same_padding(x.shape[-2], kh, sh, dh)
        left, right = same_padding(x.shape[-1], kw, sw, dw)
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def make_conv(
    in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, padding: str = "symmetric"
) -> nn.Conv2d:
    """A bias-free conv; ``padding="same"`` needs the dynamic form only when stride > 1.

    With stride 1 and an odd kernel TF SAME padding is symmetric k//2, so a plain conv is exact.
    """
    if padding == "same" and stride > 1:
        return Conv2dSame(in_ch, out_ch, kernel, stride, 0, groups=groups, bias=False)
    return nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False)


class ConvBNAct(nn.Sequential):
    """conv -> BatchNorm -> optional activation, named ``conv``, ``bn``, ``act``."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        *,
        activation: str | None,
        padding: str,
        bn_eps: float,
        bn_momentum: float,
    ) -> None:
        super().__init__()
        self.conv = make_conv(in_ch, out_ch, kernel, stride, groups, padding)
        self.bn = nn.BatchNorm2d(out_ch, eps=bn_eps, momentum=bn_momentum)
        self.act = make_activation(activation) if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # NHWC is oneDNN's native layout: depthwise convs, BN and Swish run about twice as fast
        # on it. Converting once at the stem is enough; later layers keep the layout (no-op check).
        if CHANNELS_LAST and x.dim() == 4 and not x.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        return super().forward(x)


class SqueezeExcite(nn.Module):
    """Channel attention: pool -> 1x1 reduce + Swish -> 1x1 expand + sigmoid -> rescale.

    ``reduced`` is sized from the *block's input* channels (se_ratio * in), not the expanded ones.
    """

    def __init__(self, channels: int, reduced: int, activation: str = "swish") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.act = make_activation(activation)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = self.expand(self.act(self.reduce(scale)))
        if _memory_efficient(x):
            return _GateFn.apply(x, scale)
        return x * scale.sigmoid()


class _GateFn(torch.autograd.Function):
    """x * sigmoid(g) for a per-channel gate g, saving only x and the (tiny) gate logits.

    Plain autograd would also keep sigmoid(g) and, for the broadcast, nothing smaller; the gain
    is mostly that no full-size intermediate is created in the backward of the broadcast mul.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, g)
        return x * torch.sigmoid(g)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, g = ctx.saved_tensors
        sig = torch.sigmoid(g)
        grad_x = grad * sig
        grad_g = (grad * x).sum((2, 3), keepdim=True) * sig * (1 - sig)
        return grad_x, grad_g.to(g.dtype)


def drop_connect(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Per-sample stochastic depth: zero a sample's whole branch with probability ``rate``.

    Kept samples are scaled by 1 / (1 - rate) so the expectation is unchanged; identity at eval.
    """
    if not training or rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)
    return x * mask.bernoulli_(keep).div_(keep)


class DropConnect(nn.Module):
    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_connect(x, self.rate, self.training)

    def extra_repr(self) -> str:
        return f"rate={self.rate:.4f}"


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


def set_grad_checkpointing(model: nn.Module, enable: bool = True) -> None:
    """Per-block activation checkpointing for every MBConv in ``model`` (training memory for compute)."""
    for m in model.modules():
        if isinstance(m, MBConv):
            m.grad_checkpointing = enable


class MBConv(nn.Module):
    """Mobile inverted bottleneck: [expand 1x1] -> depthwise kxk -> [SE] -> project 1x1 (+ shortcut).

    The expansion conv is omitted when expand == 1; the shortcut (and with it drop-connect)
    exists only when stride == 1 and the channel count is unchanged.
    """

    def __init__(
        self, spec: BlockSpec, *, activation: str, padding: str, bn_eps: float, bn_momentum: float
    ) -> None:
        super().__init__()
        bn = dict(padding=padding, bn_eps=bn_eps, bn_momentum=bn_momentum)
        hidden = spec.hidden_channels
        self.expand = (
            ConvBNAct(spec.in_channels, hidden, 1, activation=activation, **bn)
            if spec.expand != 1
            else nn.Identity()
        )
        self.dw = ConvBNAct(hidden, hidden, spec.kernel, spec.stride, groups=hidden, activation=activation, **bn)
        self.se = SqueezeExcite(hidden, spec.se_channels, activation) if spec.se_channels else nn.Identity()
        self.project = ConvBNAct(hidden, spec.out_channels, 1, activation=None, **bn)
        self.has_shortcut = spec.has_shortcut
        self.drop_connect = DropConnect(spec.drop_connect) if spec.has_shortcut else nn.Identity()
        self.grad_checkpointing = False

    def _checkpoint_contexts(self) -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
        return contextlib.nullcontext(), _frozen_bn_stats(self)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.se(self.dw(self.expand(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            # Keep only the block input; the branch is recomputed in the backward pass. The
            # recomputation runs with BN momentum 0 so running statistics are updated only once.
            out = torch.utils.checkpoint.checkpoint(
                self._branch, x, use_reentrant=False, context_fn=self._checkpoint_contexts
            )
        else:
            out = self._branch(x)
        if self.has_shortcut:
            out = self.drop_connect(out) + x
        return out
