"""The building blocks of EfficientNet: Swish, squeeze-and-excitation, DropConnect, MBConv.

Paper section 4: the baseline's main block is the mobile inverted bottleneck (MBConv) of
MobileNetV2 with squeeze-and-excitation added, Swish activations, and stochastic depth
("drop connect") on the residual branch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn
from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

from effnet.arch.config import STEM_STRIDE
from effnet.arch.scaling import BlockSpec

#: Use the memory-efficient autograd functions below in training (switch off to compare with plain autograd).
MEMORY_EFFICIENT = True
#: Run convolutions on NHWC (channels_last) activations; values are unchanged, only the layout.
CHANNELS_LAST = True
#: In eval mode without autograd, run each conv with its BatchNorm folded in (weights cached).
FOLD_BN_IN_EVAL = True
#: ... and run a 1x1 conv as a matmul when N*H*W is at most this (measured crossover on CPU: above
#: it oneDNN's conv is faster, below it the matmul is).
MATMUL_MAX_ROWS = 3136


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


def _inference_fast_path(module: nn.Module) -> bool:
    """Eval mode, no autograd, plain eager execution: in-place and folded rewrites are safe."""
    return (
        not module.training
        and not torch.is_grad_enabled()
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
        and not torch.compiler.is_exporting()
    )


class ConvBNAct(nn.Sequential):
    """conv -> BatchNorm -> optional activation, named ``conv``, ``bn``, ``act``.

    In eval mode under ``torch.no_grad()``/``inference_mode`` the BatchNorm is folded into the
    conv: the folded weights are computed once and cached (one extra copy of the conv weights)
    until any parameter or running statistic changes. That saves a full pass over every
    activation; with the other eval rewrites below, B0 went from about 37 to 54-60 images/s at
    batch 32 on a 2-core CPU. The ``bn`` module is then not called, so forward hooks on it do
    not fire; set ``effnet.arch.layers.FOLD_BN_IN_EVAL = False`` to run it unfused.
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
        self._folded: tuple[tuple, torch.Tensor, torch.Tensor] | None = None

    def train(self, mode: bool = True) -> ConvBNAct:
        self._folded = None  # training changes the weights; do not keep a stale copy around
        return super().train(mode)

    def _folded_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        # Any in-place update (optimizer step, load_state_dict, BN statistics) bumps a tensor's
        # version; .to()/.cuda() give new storage. Either invalidates the cached fold.
        tensors = (self.conv.weight, self.conv.bias, self.bn.weight, self.bn.bias, self.bn.running_mean,
                   self.bn.running_var)
        key = tuple((t.data_ptr(), t._version) for t in tensors if t is not None) + (self.bn.eps,)
        if self._folded is None or self._folded[0] != key:
            weight, bias = folded_conv_bn(self.conv, self.bn)
            if CHANNELS_LAST:
                weight = weight.contiguous(memory_format=torch.channels_last)
            self._folded = (key, weight, bias)
        return self._folded[1], self._folded[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # NHWC is oneDNN's native layout: depthwise convs, BN and Swish run about twice as fast
        # on it. Converting once at the stem is enough; later layers keep the layout (no-op check).
        if CHANNELS_LAST and x.dim() == 4 and not x.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        folded = isinstance(self.bn, nn.Identity)  # BN already folded by optimize_for_inference
        if FOLD_BN_IN_EVAL and (folded or isinstance(self.bn, nn.BatchNorm2d)) and _inference_fast_path(self):
            weight, bias = (self.conv.weight, self.conv.bias) if folded else self._folded_weights()
            if self._as_matmul(x):
                # An NHWC tensor viewed as (N, H, W, C) is a plain row-major matrix: a 1x1 conv is
                # one matmul on it, no copies. PyTorch sends small 1x1 convs (7x7 and 14x14 maps
                # at batch 1) to a slow generic kernel; as matmuls B0's batch-1 latency drops ~15%.
                out = F.linear(x.permute(0, 2, 3, 1), weight.flatten(1), bias).permute(0, 3, 1, 2)
            else:
                out = self.conv._conv_forward(x, weight, bias)
            return self.act(out)
        return super().forward(x)

    def _as_matmul(self, x: torch.Tensor) -> bool:
        conv = self.conv
        return (conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.groups == 1
                and x.shape[0] * x.shape[2] * x.shape[3] <= MATMUL_MAX_ROWS
                and x.is_contiguous(memory_format=torch.channels_last))


class SqueezeExcite(nn.Module):
    """Channel attention: pool -> 1x1 reduce + Swish -> 1x1 expand + sigmoid -> rescale.

    ``reduced`` is sized from the *block's input* channels (se_ratio * in), not the expanded ones.
    ``forward(x, inplace=True)`` rescales ``x`` in place when no autograd is recording (MBConv
    passes its depthwise conv's fresh output, which nothing else holds).
    """

    def __init__(self, channels: int, reduced: int, activation: str = "swish") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.act = make_activation(activation)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        # The 1x1 convs act on a 1x1 map: as matmuls (same weights, viewed 2-D) they skip
        # PyTorch's slow generic conv path, 3 ms of a 25 ms batch-1 forward on CPU.
        weights = (self.reduce.weight.flatten(1), self.reduce.bias, self.expand.weight.flatten(1), self.expand.bias)
        if _memory_efficient(x):
            return _SqueezeExciteFn.apply(x, self.act, *weights)
        pooled = x.mean((2, 3))
        scale = F.linear(self.act(F.linear(pooled, weights[0], weights[1])), weights[2], weights[3])[:, :, None, None]
        if inplace and _inference_fast_path(self):
            return x.mul_(scale.sigmoid())
        return x * scale.sigmoid()


class _SqueezeExciteFn(torch.autograd.Function):
    """The whole SE rescale ``x * sigmoid(mlp(mean(x)))`` with one fused gradient for ``x``.

    ``x`` gets gradient along two paths, the rescale and the pooled mean. Plain autograd computes
    them as separate full-size tensors (grad * gate, then the mean's broadcast grad / HW) and adds
    them: three passes over the block's largest tensor. Here the tiny MLP's backward runs first
    (recomputed from the saved pooled vector) and one ``addcmul`` writes the sum. Saves only
    ``x``, the pooled vector and the weights.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, act: nn.Module, *weights: torch.Tensor
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


#: Ops whose outputs selective checkpointing keeps: the convolutions, the costly part to recompute.
_CONV_OPS = frozenset({torch.ops.aten.convolution.default, torch.ops.aten.mkldnn_convolution.default,
                       torch.ops.aten.cudnn_convolution.default})
CHECKPOINT_MODES = ("full", "selective")


def _keep_conv_outputs(ctx: object, op: object, *args: object, **kwargs: object) -> CheckpointPolicy:
    return CheckpointPolicy.MUST_SAVE if op in _CONV_OPS else CheckpointPolicy.PREFER_RECOMPUTE


def set_grad_checkpointing(
    model: nn.Module, enable: bool | str = True, stages: Iterable[int] | None = None
) -> None:
    """Activation checkpointing for the MBConv blocks of ``model`` (training memory for compute).

    ``"full"`` (what ``True`` means) keeps only each block's input and recomputes the whole
    block in the backward pass. ``"selective"`` also keeps the conv outputs and recomputes only
    the element-wise work (BatchNorm, Swish, SE), so no convolution runs twice; it keeps about
    3x more than full (and 3x less than no checkpointing). On a 2-core CPU, B0 batch 32, full
    was leaner (1420 vs 1840 MB) and selective faster (8.4 vs 7.8 images/s); see docs/benchmarks.md.
    ``False`` switches checkpointing off.

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
        for m in part.modules():
            if isinstance(m, MBConv):
                m.grad_checkpointing = mode


def early_stages(model: nn.Module, max_stride: int = 4) -> list[int]:
    """Indices of ``model.stages`` whose input is at most ``max_stride`` times smaller than the image.

    For B0 with the default 4 these are stages 0-2 (112x112 and 56x56 inputs at 224 px): about 55%
    of the activations a training step keeps, in 5 of the 16 blocks.
    """
    stride, out = STEM_STRIDE, []
    for i, stage in enumerate(model.stages):
        if stride <= max_stride:
            out.append(i)
        stride *= stage[0].dw.conv.stride[0]
    return out


@contextlib.contextmanager
def _recompute_context(module: nn.Module, selective: contextlib.AbstractContextManager | None) -> Iterator[None]:
    # BN statistics are frozen *outside* the selective-recompute mode: the bookkeeping it does
    # (cloning the step counter) must not be mistaken for an op of the block being replayed.
    with _frozen_bn_stats(module), (selective or contextlib.nullcontext()):
        yield


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
        self.grad_checkpointing: str | None = None  # None, "selective" or "full"

    def _checkpoint_contexts(self) -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
        if self.grad_checkpointing == "selective":
            forward, recompute = create_selective_checkpoint_contexts(_keep_conv_outputs)
            return forward, _recompute_context(self, recompute)
        return contextlib.nullcontext(), _recompute_context(self, None)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.dw(self.expand(x))
        if isinstance(self.se, SqueezeExcite):
            hidden = self.se(hidden, inplace=True)  # hidden is the depthwise conv's own output
        return self.project(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            # Keep the block input (and, when selective, the conv outputs); the rest of the branch
            # is recomputed in the backward pass with BN momentum 0, so running statistics are
            # updated only once.
            out = torch.utils.checkpoint.checkpoint(
                self._branch, x, use_reentrant=False, context_fn=self._checkpoint_contexts,
                respect_saved_tensors_hooks=True,  # e.g. torch.autograd.graph.save_on_cpu sees them too
            )
        else:
            out = self._branch(x)
        if self.has_shortcut:
            if _inference_fast_path(self):
                return out.add_(x)  # out is the project conv's fresh output
            out = self.drop_connect(out) + x
        return out
