"""The building blocks of EfficientNet: Swish, SAME padding, conv-BN-act, squeeze-and-excitation, MBConv.

Paper section 4: the baseline's main block is the mobile inverted bottleneck (MBConv) of
MobileNetV2 with squeeze-and-excitation added, Swish activations, and stochastic depth
("drop connect") on the residual branch.

The blocks compute exactly that, in plain PyTorch ops: what TorchScript, FX, torch.compile,
torch.export, ONNX and ExecuTorch see. Two faster forms of some blocks are subclasses with the same
parameters, swapped in by class when an EfficientNet changes mode (:mod:`effnet.arch.forms`):
:mod:`effnet.arch.fastpath` in eval mode (BatchNorm folded, 1x1 convs as matmuls, in-place SE and
residual) and :mod:`effnet.arch.memory_saving` in training (autograd functions that keep less,
activation checkpointing). The switches they read are attributes of these blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from effnet.arch.scaling import BlockSpec
from effnet.arch.switches import MATMUL_MAX_ROWS


class Swish(nn.SiLU):
    """x * sigmoid(x): torch's SiLU, so code that looks for SiLU still finds it.

    ``memory_efficient`` is the switch of its training form (:class:`effnet.arch.memory_saving.LeanSwish`).
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(inplace)
        self.memory_efficient = True


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

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        kh, kw = self.kernel_size
        sh, sw = self.stride
        dh, dw = self.dilation
        top, bottom = same_padding(x.shape[-2], kh, sh, dh)
        left, right = same_padding(x.shape[-1], kw, sw, dw)
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, weight, bias, self.stride, 0, self.dilation, self.groups)


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
    """conv -> BatchNorm -> optional activation, named ``conv``, ``bn``, ``act``.

    ``channels_last``: activations run NHWC, oneDNN's native layout (depthwise convs, BN and Swish
    about twice as fast); values are unchanged. Converting once at the stem is enough, later
    layers find the layout already there. ``fast_eval`` and ``matmul_max_rows`` are the switches of
    its eval form (:class:`effnet.arch.fastpath.FastConvBNAct`).
    """

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
        self.channels_last = True
        self.fast_eval = True
        self.matmul_max_rows = MATMUL_MAX_ROWS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)  # returns x itself when already NHWC
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Channel attention as the paper draws it: global pool, 1x1 conv, Swish, 1x1 conv, sigmoid, rescale.

    ``reduced`` is sized from the *block's input* channels (se_ratio * in), not the expanded ones.
    ``fast_eval`` and ``memory_efficient`` are the switches of its eval and training forms.
    """

    def __init__(self, channels: int, reduced: int, activation: str = "swish") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.act = make_activation(activation)
        self.expand = nn.Conv2d(reduced, channels, 1)
        self.fast_eval = True
        self.memory_efficient = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True)))))


@torch.fx.wrap
def drop_connect(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Per-sample stochastic depth: zero a sample's whole branch with probability ``rate``.

    Kept samples are scaled by 1 / (1 - rate) so the expectation is unchanged; identity at eval.
    A leaf of FX graphs (its mask's shape depends on the batch size), as torchvision's stochastic_depth.
    """
    if not training or rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = torch.empty([x.shape[0]] + [1] * (x.dim() - 1), dtype=x.dtype, device=x.device)
    return x * mask.bernoulli_(keep).div_(keep)


class DropConnect(nn.Module):
    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_connect(x, self.rate, self.training)

    def extra_repr(self) -> str:
        return f"rate={self.rate:.4f}"


class MBConv(nn.Module):
    """Mobile inverted bottleneck: [expand 1x1] -> depthwise kxk -> [SE] -> project 1x1 (+ shortcut).

    The expansion conv (and SE) are identities when absent; the shortcut, and with it DropConnect,
    exists only when stride == 1 and the channel count is unchanged. ``fast_eval`` and
    ``grad_checkpointing`` (None, "full" or "selective") are the switches of its eval and training forms.
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
        self.fast_eval = True
        self.grad_checkpointing = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.dw(self.expand(x))))
        if self.has_shortcut:
            out = self.drop_connect(out) + x
        return out
