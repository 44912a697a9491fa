"""The eval fast path: the eval forms of the blocks of :mod:`effnet.arch.layers`, for eval mode without autograd.

In eval mode under ``torch.no_grad()`` / ``inference_mode`` nothing needs the intermediate
tensors, so the blocks' eval forms (:data:`EVAL_FORMS`, swapped in by ``model.eval()``, see
:mod:`effnet.arch.forms`)

- run each conv with its BatchNorm folded in (:class:`FastConvBNAct`, :func:`conv_bn`): the folded weights are computed
  once and cached on the ``ConvBNAct`` (one extra copy of its conv weights) until any parameter or
  running statistic changes; the ``bn`` module is then not called, so forward hooks on it do not fire;
- run a small 1x1 conv as one matmul on the NHWC view (PyTorch sends small 1x1 convs to a slow
  generic kernel on CPU; above ``matmul_max_rows`` output positions oneDNN's conv is faster);
- compute the SE gate with matmuls on the pooled vector (:class:`FastSqueezeExcite`), rescale the SE
  input and add the residual in place (:class:`FastMBConv`: both write into a fresh tensor nothing else holds).

It is on by default and switched per model: ``model.set_fast_eval(False)`` / :func:`set_fast_eval`,
or for a while ``with effnet.arch.fastpath.disabled(model):``. It never runs while autograd
records, under ``torch.jit`` scripting or tracing, FX tracing, ``torch.compile`` or ``torch.export``:
those run the plain forward. Measured effect: docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.fx._symbolic_trace import is_fx_symbolic_tracing

from effnet.arch.forms import Specialised
from effnet.arch.layers import ConvBNAct, MBConv, SqueezeExcite
from effnet.arch.switches import set_switch, switched


def set_fast_eval(model: nn.Module, enable: bool = True, matmul_max_rows: int | None = None) -> None:
    """Switch the eval fast path of every block in ``model`` on or off (``matmul_max_rows=0``: no matmul 1x1s)."""
    set_switch(model, "fast_eval", bool(enable))
    if matmul_max_rows is not None:
        set_switch(model, "matmul_max_rows", int(matmul_max_rows))


def disabled(model: nn.Module) -> contextlib.AbstractContextManager[nn.Module]:
    """``with disabled(model):`` runs the plain blocks (BatchNorm as such, nothing in place), then restores."""
    return switched(model, "fast_eval", False)


def applies(module: nn.Module) -> bool:
    """Eval mode, fast path on, no autograd, plain eager execution: folded and in-place rewrites are safe."""
    return (
        module.fast_eval
        and not module.training
        and not torch.is_grad_enabled()
        and not is_fx_symbolic_tracing()
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
        and not torch.compiler.is_exporting()
    )


def folds(block: nn.Module) -> bool:
    """Whether ``block`` (a ConvBNAct) runs folded now: its BN is a BatchNorm2d or already folded away."""
    return isinstance(block.bn, (nn.BatchNorm2d, nn.Identity)) and applies(block)


def folded_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of one conv computing ``bn(conv(x))`` with BN's running statistics.

    y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta: scale each output channel's
    weights by gamma / sqrt(var + eps) and move the rest into the bias. Computed in float64
    (where the device has it) so the folded weights round once.
    """
    with torch.no_grad():
        wide = torch.float64 if conv.weight.device.type != "mps" else torch.float32
        scale = bn.weight.to(wide) / torch.sqrt(bn.running_var.to(wide) + bn.eps)
        bias = conv.bias.to(wide) if conv.bias is not None else torch.zeros_like(bn.running_mean, dtype=wide)
        weight = conv.weight.to(wide) * scale.view(-1, 1, 1, 1)
        bias = (bias - bn.running_mean.to(wide)) * scale + bn.bias.to(wide)
        return weight.to(conv.weight.dtype), bias.to(conv.weight.dtype)


def _cached_fold(block: FastConvBNAct) -> tuple[torch.Tensor, torch.Tensor]:
    # Any in-place update (optimizer step, load_state_dict, BN statistics) bumps a tensor's
    # version; .to()/.cuda() give new storage. Either invalidates the cached fold.
    conv, bn = block.conv, block.bn
    tensors = (conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var)
    key = tuple((t.data_ptr(), t._version) for t in tensors if t is not None) + (bn.eps, block.channels_last)
    if getattr(block, "_folded", None) is None or block._folded[0] != key:
        weight, bias = folded_conv_bn(conv, bn)
        if block.channels_last:
            weight = weight.contiguous(memory_format=torch.channels_last)
        block._folded = (key, weight, bias)
    return block._folded[1], block._folded[2]


def conv_bn(block: FastConvBNAct, x: torch.Tensor) -> torch.Tensor:
    """``block.bn(block.conv(x))`` as one folded conv (or matmul), for a block where :func:`folds` holds."""
    conv = block.conv
    weight, bias = (conv.weight, conv.bias) if isinstance(block.bn, nn.Identity) else _cached_fold(block)
    if (conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.groups == 1
            and x.shape[0] * x.shape[2] * x.shape[3] <= block.matmul_max_rows
            and x.is_contiguous(memory_format=torch.channels_last)):
        # An NHWC tensor viewed as (N, H, W, C) is a plain row-major matrix: a 1x1 conv is one
        # matmul on it, no copies.
        return F.linear(x.permute(0, 2, 3, 1), weight.flatten(1), bias).permute(0, 3, 1, 2)
    return conv._conv_forward(x, weight, bias)



class FastConvBNAct(Specialised, ConvBNAct):
    """conv -> BN -> act as one conv with the BatchNorm folded in (weights cached in ``_folded``)."""

    form_state = ("_folded",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not folds(self):
            return super().forward(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)  # returns x itself when already NHWC
        return self.act(conv_bn(self, x))


class FastSqueezeExcite(Specialised, SqueezeExcite):
    """The gate's 1x1 convs as matmuls on the pooled vector; ``inplace=True`` rescales ``x`` itself.

    The convs act on a 1x1 map: as matmuls (same weights, viewed 2-D) they skip PyTorch's slow
    generic conv path.
    """

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        if not applies(self):
            return super().forward(x)
        hidden = self.act(F.linear(x.mean((2, 3)), self.reduce.weight.flatten(1), self.reduce.bias))
        gate = torch.sigmoid(F.linear(hidden, self.expand.weight.flatten(1), self.expand.bias))[:, :, None, None]
        return x.mul_(gate) if inplace else x * gate


class FastMBConv(Specialised, MBConv):
    """The block with the SE rescale and the residual add written in place (DropConnect is the identity in eval)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not applies(self):
            return super().forward(x)
        hidden = self.dw(self.expand(x))
        # hidden is the depthwise conv's fresh output, out the project conv's: nothing else holds them
        hidden = self.se(hidden, inplace=True) if isinstance(self.se, FastSqueezeExcite) else self.se(hidden)
        out = self.project(hidden)
        return out.add_(x) if self.has_shortcut else out


#: The eval form of each plain block (the others run plain in eval mode).
EVAL_FORMS: dict[type, type] = {ConvBNAct: FastConvBNAct, SqueezeExcite: FastSqueezeExcite, MBConv: FastMBConv}
