"""EfficientNet as a detection / segmentation backbone.

Built on :class:`effnet.arch.features.FeatureExtractor` (timm's ``features_only`` model: only the
stem and the stages the requested levels need, so DDP's default ``find_unused_parameters=False``
works; standard-contiguous maps unless ``channels_last=True``).

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

from effnet.arch.features import FeatureExtractor
from effnet.factory import create_model


class Backbone(FeatureExtractor):
    """A detection / segmentation backbone: ``OrderedDict`` of maps named ``"0"``, ``"1"``, ...

    ``out_channels`` lists each map's channels (what torchvision's ``FeaturePyramidNetwork``
    takes as ``in_channels_list``). The default levels are strides 4, 8, 16 and 32.
    """

    def __init__(self, model: nn.Module | str, out_indices: int | Sequence[int] | None = (1, 2, 3, 4),
                 channels_last: bool = False, **create_kwargs: Any) -> None:
        if isinstance(model, str):
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

    ``effnet.backbone.backbone_with_fpn("b0", weights="torchvision/b0")`` then
    ``torchvision.models.detection.FasterRCNN(backbone, num_classes=...)``.
    """
    return BackboneWithFPN(Backbone(model, out_indices, **create_kwargs), fpn_channels)
