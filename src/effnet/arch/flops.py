"""Counting parameters and multiply-adds with torch.utils.flop_counter.

``FlopCounterMode`` reports 2 FLOPs per multiply-add; the paper's "FLOPs" are multiply-adds,
so :func:`count_macs` halves it. Models are built on the meta device, so counting even L2
(480M parameters at 800x800) allocates no memory.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from effnet.arch.config import ModelConfig


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, resolution: int, in_chans: int = 3, batch: int = 1) -> int:
    """Multiply-adds of one forward pass on a ``batch x in_chans x resolution x resolution`` input."""
    device = next(model.parameters()).device
    x = torch.zeros(batch, in_chans, resolution, resolution, device=device)
    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    model.train(was_training)
    return counter.get_total_flops() // 2


def meta_model(config: ModelConfig | str, num_classes: int = 1000) -> nn.Module:
    """A model with no storage, for counting."""
    from effnet.arch.model import EfficientNet

    with torch.device("meta"):
        return EfficientNet(config, num_classes=num_classes)


def model_cost(config: ModelConfig | str, resolution: int | None = None) -> tuple[int, int]:
    """(parameters, multiply-adds) of a config at ``resolution`` (default: its own)."""
    model = meta_model(config)
    res = resolution or model.config.resolution
    return count_params(model), count_macs(model, res)
