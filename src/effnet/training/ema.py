"""Exponential moving average of the weights (and BN statistics), used for evaluation.

Short runs: like the official code (``tf.train.ExponentialMovingAverage(decay, num_updates=step)``)
the decay actually used at update ``t`` is ``min(decay, (1 + t) / (10 + t))``. A run of a few
hundred steps therefore averages over roughly its last tenth instead of being stuck near the
random initialisation, as a fixed 0.9999 (a 10,000-step window) would be.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class ModelEMA:
    def __init__(self, model: nn.Module, decay: float = 0.9999, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.warmup = warmup
        self.updates = 0

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        self.updates += 1
        model_state = model.state_dict()
        for name, ema_value in self.module.state_dict().items():
            value = model_state[name].detach()
            if ema_value.is_floating_point():
                ema_value.mul_(d).add_(value.to(ema_value.dtype), alpha=1 - d)
            else:
                ema_value.copy_(value)  # num_batches_tracked and other counters

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
        self.decay = float(state["decay"])
