"""Shared helpers for the performance/export tests: small models whose outputs are O(1)."""

from __future__ import annotations

import torch
from torch import nn

from effnet import create_model


def lively(model: nn.Module, size: int = 64, seed: int = 0) -> nn.Module:
    """Random BN affine parameters, running statistics measured on random data, eval mode.

    A freshly initialised EfficientNet gives logits near 1e-18 (BN running stats 0/1 do not match
    the activations), which would make any comparison pass; after this they are of order 1.
    """
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(8, model.in_chans, size, size, generator=gen))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
    return model.eval()


def tiny_model(padding: str = "symmetric", num_classes: int = 10, **kw: object) -> nn.Module:
    """A quarter-width, quarter-depth B0 (about 60k parameters) with O(1) outputs."""
    model = create_model("b0", width=0.25, depth=0.25, num_classes=num_classes, padding=padding, **kw)
    return lively(model)
