"""EfficientNet as a feature extractor: timm's ``features_only`` model and a detection backbone.

Both keep only the stem and the stages up to the deepest requested level (no head, no
classifier), so every parameter takes part in the loss: DistributedDataParallel with its default
``find_unused_parameters=False`` works. Maps come out standard-contiguous (NCHW memory) unless
``channels_last=True`` asks for the layout the convolutions ran in.

- :class:`FeatureExtractor` returns a list of maps (timm's ``create_model(..., features_only=True)``).
- :class:`Backbone` returns an ``OrderedDict`` named ``"0"``, ``"1"``, ... with ``out_channels``,
  the interface of torchvision's detection and segmentation models.
- :func:`backbone_with_fpn` puts torchvision's ``FeaturePyramidNetwork`` on top (``FasterRCNN``,
  ``RetinaNet``, ``MaskRCNN`` take it as ``backbone``).
"""

# No `from __future__ import annotations`: FX would copy string annotations into its generated code,
# which TorchScript then refuses (fx.symbolic_trace followed by torch.jit.script).
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


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


class FeatureExtractor(nn.Module):
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


class Backbone(FeatureExtractor):
    """A detection / segmentation backbone: ``OrderedDict`` of maps named ``"0"``, ``"1"``, ...

    ``out_channels`` lists each map's channels (what torchvision's ``FeaturePyramidNetwork``
    takes as ``in_channels_list``). The default levels are strides 4, 8, 16 and 32.
    """

    def __init__(self, model: nn.Module | str, out_indices: int | Sequence[int] | None = (1, 2, 3, 4),
                 channels_last: bool = False, **create_kwargs: Any) -> None:
        if isinstance(model, str):
            from effnet.arch.model import create_model

            model = create_model(model, num_classes=0, **create_kwargs)
        elif create_kwargs:
            raise TypeError(f"model keyword arguments {sorted(create_kwargs)} need a model name, not a model")
        super().__init__(model, out_indices, channels_last)
        self.names: list[str] = [str(i) for i in range(len(self.taps))]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        out: dict[str, torch.Tensor] = OrderedDict()
        for name, fmap in zip(self.names, self.feature_list(x)):
            out[name] = fmap
        return out


class BackboneWithFPN(nn.Module):
    """:class:`Backbone` followed by torchvision's ``FeaturePyramidNetwork`` (with a max-pooled
    extra level, as torchvision's ResNet-FPN): ``out_channels`` is one int, what ``FasterRCNN`` needs."""

    def __init__(self, backbone: Backbone, out_channels: int = 256) -> None:
        from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

        super().__init__()
        self.body = backbone
        self.fpn = FeaturePyramidNetwork(backbone.out_channels, out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.fpn(self.body(x))


def backbone_with_fpn(model: nn.Module | str = "b0", out_indices: Sequence[int] = (1, 2, 3, 4),
                      fpn_channels: int = 256, **create_kwargs: Any) -> BackboneWithFPN:
    """An EfficientNet + FPN backbone for torchvision's detection models.

    ``effnet.arch.backbone.backbone_with_fpn("b0", weights="torchvision/b0")`` then
    ``torchvision.models.detection.FasterRCNN(backbone, num_classes=...)``.
    """
    return BackboneWithFPN(Backbone(model, out_indices, **create_kwargs), fpn_channels)
