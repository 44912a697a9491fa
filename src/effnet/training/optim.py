"""RMSProp as TensorFlow implements it, and parameter groups without weight decay on BN/bias.

TensorFlow's ``tf.compat.v1.train.RMSPropOptimizer`` (used by the official EfficientNet code)
differs from ``torch.optim.RMSprop`` in three ways, all reproduced here:

1. epsilon sits *inside* the square root: ``g / sqrt(ms + eps)`` (torch: ``g / (sqrt(ms) + eps)``).
   With eps=1e-3 this caps the step for tiny gradients at ``lr * g / 0.0316``.
2. the mean-square accumulator starts at 1, not 0, so the first steps are not huge.
3. the learning rate is applied *before* the momentum buffer (``mom = m * mom + lr * g / rms``), so a
   change of learning rate only affects new gradients, not the velocity already accumulated.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from effnet.choices import OPTIMIZERS


class TFRMSprop(torch.optim.Optimizer):
    """RMSProp with TensorFlow's update rule (see module docstring).

    ``weight_decay`` is L2 regularisation added to the gradient (``g + wd * p``), as TF adds
    ``wd * sum(w**2) / 2`` to the loss; set it per parameter group (see :func:`param_groups`).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.016,
        alpha: float = 0.9,
        eps: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
    ) -> None:
        if lr < 0 or eps <= 0 or not 0 <= alpha < 1 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(
                f"invalid RMSProp settings lr={lr} alpha={alpha} eps={eps} momentum={momentum} "
                f"weight_decay={weight_decay}: need lr>=0, eps>0, 0<=alpha<1, 0<=momentum<1, weight_decay>=0"
            )
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # noqa: ANN401 - matches torch.optim.Optimizer
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, alpha, eps, momentum, wd = (group[k] for k in ("lr", "alpha", "eps", "momentum", "weight_decay"))
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError("TFRMSprop does not support sparse gradients")
                if wd != 0:
                    grad = grad.add(p, alpha=wd)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["square_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)
                    if momentum > 0:
                        state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                square_avg = state["square_avg"]
                square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
                update = grad / square_avg.add(eps).sqrt_()
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf.mul_(momentum).add_(update, alpha=lr)
                    p.sub_(buf)
                else:
                    p.sub_(update, alpha=lr)
        return loss


def is_no_decay(name: str, param: torch.nn.Parameter) -> bool:
    """BatchNorm scales/shifts and all biases: every parameter with fewer than two dimensions."""
    return param.ndim <= 1


HEAD_PREFIX = "classifier."


def param_groups(model: nn.Module, weight_decay: float, backbone_lr_scale: float = 1.0) -> list[dict[str, Any]]:
    """Conv/linear weights with ``weight_decay``, BN parameters and biases without; with
    ``backbone_lr_scale != 1`` each splits again into the classifier (``lr_scale`` 1) and the rest
    (``lr_scale`` = backbone_lr_scale, applied by :class:`~effnet.training.schedule.StepScheduler`).

    Frozen parameters (``requires_grad=False``) are left out entirely.
    """
    split_head = backbone_lr_scale != 1.0
    groups: dict[tuple[bool, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = not is_no_decay(name, param)
        head = split_head and name.startswith(HEAD_PREFIX)
        group = groups.setdefault((head, decay), {
            "params": [], "weight_decay": weight_decay if decay else 0.0,
            "lr_scale": 1.0 if head or not split_head else backbone_lr_scale,
            "name": ("head_" if head else "backbone_" if split_head else "") + ("decay" if decay else "no_decay"),
        })
        group["params"].append(param)
    return [groups[k] for k in sorted(groups, key=lambda k: (k[0], not k[1]))]




def build_optimizer(
    model: nn.Module, name: str, lr: float, weight_decay: float, momentum: float = 0.9, eps: float = 1e-3,
    backbone_lr_scale: float = 1.0,
) -> torch.optim.Optimizer:
    """``rmsprop_tf`` (the paper's), ``rmsprop`` (PyTorch's), ``sgd`` or ``adamw``."""
    if backbone_lr_scale < 0:
        raise ValueError(f"backbone lr scale must be >= 0, got {backbone_lr_scale}")
    groups = param_groups(model, weight_decay, backbone_lr_scale)
    if not groups:
        raise ValueError("the model has no trainable parameters (is everything frozen?)")
    if name == "rmsprop_tf":
        return TFRMSprop(groups, lr=lr, alpha=0.9, eps=eps, momentum=momentum)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=0.9, eps=eps, momentum=momentum)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)  # each group's weight_decay, not AdamW's 0.01
    raise ValueError(f"unknown optimizer {name!r}; choose {', '.join(OPTIMIZERS)}")
