"""The building blocks of EfficientNet: Swish, SAME padding, conv-BN-act, squeeze-and-excitation, MBConv.

Paper section 4: the baseline's main block is the mobile inverted bottleneck (MBConv) of
MobileNetV2 with squeeze-and-excitation added, Swish activations, and stochastic depth
("drop connect") on the residual branch.

The blocks compute exactly that. Two optional ways of computing it faster live in their own
modules and are switched per model by attributes these blocks carry:
:mod:`effnet.arch.fastpath` (eval without autograd: BatchNorm folded, 1x1 convs as matmuls,
in-place SE and residual; ``fast_eval``) and :mod:`effnet.arch.memory` (training: autograd
functions that keep less, activation checkpointing; ``memory_efficient``, ``grad_checkpointing``).
Each is a one-line branch here, skipped under ``torch.jit.script`` and FX tracing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from effnet.arch import fastpath, memory
from effnet.arch.scaling import BlockSpec


class Swish(nn.SiLU):
    """x * sigmoid(x). In training it keeps only its input for the backward pass (``memory_efficient``).

    Subclasses nn.SiLU so code that looks for SiLU still finds it; ``inplace`` is honoured
    where nothing needs to be kept.
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(inplace)
        self.memory_efficient = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():  # TorchScript compiles neither the test nor the branch
            if self.memory_efficient and memory.applies(x):
                return memory.swish(x)
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
    layers find the layout already there.
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
        self.matmul_max_rows = fastpath.MATMUL_MAX_ROWS
        self._folded = None  # fastpath's cache of the BN-folded weights

    def train(self, mode: bool = True) -> ConvBNAct:
        self._folded = None  # training changes the weights; do not keep a stale copy around
        return super().train(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)  # returns x itself when already NHWC
        if not torch.jit.is_scripting():
            if fastpath.folds(self):
                return self.act(fastpath.conv_bn(self, x))
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Channel attention: pool -> 1x1 reduce + Swish -> 1x1 expand + sigmoid -> rescale.

    ``reduced`` is sized from the *block's input* channels (se_ratio * in), not the expanded ones.
    ``forward(x, inplace=True)`` lets the eval fast path rescale ``x`` in place (MBConv passes its
    depthwise conv's fresh output, which nothing else holds).
    """

    def __init__(self, channels: int, reduced: int, activation: str = "swish") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.act = make_activation(activation)
        self.expand = nn.Conv2d(reduced, channels, 1)
        self.fast_eval = True
        self.memory_efficient = True

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        # The 1x1 convs act on a 1x1 map: as matmuls (same weights, viewed 2-D) they skip
        # PyTorch's slow generic conv path.
        w1, b1 = self.reduce.weight.flatten(1), self.reduce.bias
        w2, b2 = self.expand.weight.flatten(1), self.expand.bias
        if not torch.jit.is_scripting():
            if self.memory_efficient and memory.applies(x):
                return memory.squeeze_excite(x, self.act, w1, b1, w2, b2)
        gate = torch.sigmoid(F.linear(self.act(F.linear(x.mean((2, 3)), w1, b1)), w2, b2))[:, :, None, None]
        if not torch.jit.is_scripting():
            if inplace and fastpath.applies(self):
                return x.mul_(gate)
        return x * gate


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
        self.fast_eval = True
        self.grad_checkpointing = None  # None, "full" or "selective" (effnet.arch.memory)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.dw(self.expand(x))
        if hasattr(self.se, "reduce"):  # SqueezeExcite (TorchScript's isinstance misses renamed copies)
            hidden = self.se(hidden, inplace=True)  # hidden is the depthwise conv's own output
        return self.project(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            if memory.checkpoints(self):  # keep only x, recompute the branch in the backward pass
                return self.add_shortcut(memory.checkpointed(self, self.branch, x), x)
        return self.add_shortcut(self.branch(x), x)

    def add_shortcut(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if not self.has_shortcut:
            return out
        if not torch.jit.is_scripting():
            if fastpath.applies(self):
                return out.add_(x)  # out is the project conv's fresh output
        return self.drop_connect(out) + x
