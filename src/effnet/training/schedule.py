"""Learning-rate schedule: linear warm-up, then 0.97 every 2.4 epochs (staircase) or cosine.

The schedule is a pure function of the global step (:func:`lr_at`), so resuming only needs the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from effnet.choices import SCHEDULES

LR_PER_256 = 0.016  # paper: 0.256 at batch 4096


def scaled_lr(global_batch: int, per_256: float = LR_PER_256) -> float:
    """The recipe's learning rate for a global batch size (linear scaling rule)."""
    if global_batch < 1:
        raise ValueError(f"batch size must be >= 1, got {global_batch}")
    return per_256 * global_batch / 256




@dataclass(frozen=True)
class Schedule:
    base_lr: float
    steps_per_epoch: int
    total_epochs: float
    warmup_epochs: float = 5.0
    kind: str = "step"  # 'step' (0.97 every 2.4 epochs), 'cosine' or 'constant'
    decay_epochs: float = 2.4
    decay_rate: float = 0.97
    min_lr: float = 0.0
    warmup_steps: int | None = None  # replaces warmup_epochs: short fine-tunes warm up for a fixed step count

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.kind!r}; choose {', '.join(SCHEDULES)}")
        if self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")

    def warmup_step_count(self) -> int:
        if self.warmup_steps is not None:
            return min(self.warmup_steps, int(self.total_epochs * self.steps_per_epoch) // 2)
        return int(round(self.warmup_epochs * self.steps_per_epoch))

    def lr_at(self, step: int) -> float:
        """Learning rate for global step ``step`` (0-based), as the official TF code computes it."""
        warmup_steps = self.warmup_step_count()
        if step < warmup_steps:
            # TF: base_lr * step / warmup_steps; +1 so the very first step is not wasted at lr=0.
            return self.base_lr * (step + 1) / warmup_steps
        if self.kind == "constant":
            return self.base_lr
        if self.kind == "step":
            # TF's exponential_decay(staircase=True) counts from step 0, warm-up included.
            decay_steps = max(1, int(self.decay_epochs * self.steps_per_epoch))
            return self.base_lr * self.decay_rate ** (step // decay_steps)
        total = max(1, int(self.total_epochs * self.steps_per_epoch) - warmup_steps)
        t = min(1.0, (step - warmup_steps) / total)
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * t))


class StepScheduler:
    """Sets every param group's lr from a :class:`Schedule` each step; state is just the step.

    A group's ``lr_scale`` (default 1) multiplies the schedule's rate: a fine-tuned backbone's lower lr.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: Schedule) -> None:
        self.optimizer = optimizer
        self.schedule = schedule
        self.step_count = 0
        self._apply()

    def _apply(self) -> None:
        lr = self.schedule.lr_at(self.step_count)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def get_last_lr(self) -> float:
        """The schedule's rate (the new head's, when the backbone's is scaled down)."""
        return self.schedule.lr_at(self.step_count)

    def state_dict(self) -> dict[str, Any]:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        self._apply()


def default_warmup_epochs(total_epochs: float, recipe_warmup: float = 5.0) -> float:
    """The paper's 5 warm-up epochs, but at most a tenth of a short run (fine-tuning, demos)."""
    return min(recipe_warmup, 0.1 * total_epochs)
