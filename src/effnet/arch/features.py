"""Multi-scale features of an EfficientNet in timm's terms: ``feature_info``, index selection, and
the ``features_only`` model (a list of maps).

:class:`FeatureExtractor` keeps only the stem and the stages up to the deepest requested level (no
head, no classifier), so every parameter takes part in the loss: DistributedDataParallel with its
default ``find_unused_parameters=False`` works. Maps come out standard-contiguous (NCHW memory)
unless ``channels_last=True`` asks for the layout the convolutions ran in. The named-map detection
backbone built on it is :class:`effnet.backbone.Backbone`.
"""

# No `from __future__ import annotations`: FX would copy string annotations into its generated code,
# which TorchScript then refuses (fx.symbolic_trace followed by torch.jit.script).
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from effnet.arch.modes import FormsFollowMode


class FeatureInfo(list):
    """timm's feature description: a list of ``{"num_chs", "reduction", "module"}`` dicts.

    It is a plain list (timm's ``FeatureInfo(model.feature_info, out_indices)`` accepts it) with
    timm's accessors ``channels()``, ``reduction()`` and ``module_name()``.
    """

    def channels(self, idx: int | None = None) -> list[int] | int:
        return self._get("num_chs", idx)

    def reduction(self, idx: int | None = None) -> list[int] | int:
        return self._get("reduction", idx)

    def module_name(self, idx: int | None = None) -> list[str] | str:
        return self._get("module", idx)

    def _get(self, key: str, idx: int | None) -> Any:
        return [info[key] for info in self] if idx is None else self[idx][key]


def take_indices(num_levels: int, indices: int | Sequence[int] | None) -> tuple[list[int], int]:
    """timm's index rule: ``None`` all levels, an int the last n, a sequence those (negative from the end).

    Returns the absolute indices and the largest one.
    """
    if indices is None:
        indices = num_levels
    if isinstance(indices, int):
        if not 0 < indices <= num_levels:
            raise ValueError(f"last-n indices must be 1..{num_levels}, got {indices}")
        taken = list(range(num_levels - indices, num_levels))
    else:
        taken = [num_levels + i if i < 0 else i for i in indices]
        bad = [i for i, t in zip(indices, taken, strict=True) if not 0 <= t < num_levels]
        if bad or not taken:
            raise ValueError(f"feature indices must be in -{num_levels}..{num_levels - 1}, got {list(indices)}")
    return taken, max(taken)


class FeatureExtractor(FormsFollowMode):
    """Stem and stages of an EfficientNet; ``forward`` returns the maps at ``out_indices``.

    ``out_indices`` index ``model.feature_info`` (B0: strides 2, 4, 8, 16, 32 are 0..4). The
    modules are shared with ``model`` (no copy); the head and classifier are left behind.
    """

    def __init__(self, model: nn.Module, out_indices: int | Sequence[int] | None = (0, 1, 2, 3, 4),
                 channels_last: bool = False) -> None:
        super().__init__()
        info = model.feature_info
        taken, deepest = take_indices(len(info), out_indices)
        self.out_indices = tuple(taken)
        self.feature_info = FeatureInfo(dict(info[i]) for i in taken)
        last_stage = info[deepest]["stage"]
        self.stem = model.stem
        self.stages = nn.Sequential(*list(model.stages)[: last_stage + 1])
        self.taps: list[int] = [info[i]["stage"] for i in taken]
        self.channels_last = channels_last
        self.in_chans: int = model.in_chans
        cfg = getattr(model, "pretrained_cfg", None)
        if cfg is not None:
            self.pretrained_cfg = dict(cfg)
        self.train(model.training)

    @property
    def out_channels(self) -> list[int]:
        return self.feature_info.channels()

    @property
    def default_cfg(self) -> dict[str, Any]:
        return self.pretrained_cfg

    __jit_unused_properties__ = ["out_channels", "default_cfg"]

    def feature_list(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        maps: list[torch.Tensor] = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.taps:
                maps.append(x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous())
        return maps

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.feature_list(x)
