"""Model assembly: stem -> MBConv stages -> head -> pool -> dropout -> classifier."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from effnet.arch.config import STEM_STRIDE, ModelConfig, get_config
from effnet.arch.layers import ConvBNAct, MBConv
from effnet.arch.scaling import (
    ALPHA,
    BETA,
    GAMMA,
    block_specs,
    feature_stage_indices,
    head_channels,
    scaled_config,
    stem_channels,
)


class EfficientNet(nn.Module):
    """An EfficientNet built from a :class:`~effnet.arch.config.ModelConfig`.

    ``num_classes=0`` drops the classifier so ``forward`` returns the pooled features.
    """

    def __init__(self, config: ModelConfig | str, num_classes: int = 1000, in_chans: int = 3) -> None:
        super().__init__()
        config = get_config(config)
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 returns pooled features), got {num_classes}")
        if in_chans < 1:
            raise ValueError(f"in_chans must be >= 1, got {in_chans}")
        self.config = config
        self.in_chans = in_chans
        norm = dict(padding=config.padding, bn_eps=config.bn_eps, bn_momentum=config.bn_momentum)
        self.stem = ConvBNAct(
            in_chans, stem_channels(config), 3, STEM_STRIDE, activation=config.activation, **norm
        )
        self.stages = nn.Sequential(
            *(
                nn.Sequential(*(MBConv(spec, activation=config.activation, **norm) for spec in stage))
                for stage in block_specs(config)
            )
        )
        last_channels = block_specs(config)[-1][-1].out_channels
        self.num_features = head_channels(config)
        self.head = ConvBNAct(last_channels, self.num_features, 1, activation=config.activation, **norm)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(config.dropout)
        self.num_classes = num_classes
        self.classifier: nn.Module = self._make_classifier(num_classes)
        self._feature_stages = feature_stage_indices(config)
        self._init_weights()

    def _make_classifier(self, num_classes: int) -> nn.Module:
        if num_classes == 0:
            return nn.Identity()
        fc = nn.Linear(self.num_features, num_classes)
        bound = 1.0 / math.sqrt(num_classes)
        nn.init.uniform_(fc.weight, -bound, bound)
        nn.init.zeros_(fc.bias)
        return fc

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def set_grad_checkpointing(self, enable: bool | str = True, stages: Iterable[int] | None = None) -> None:
        """Recompute MBConv activations in the backward pass: ``"full"`` (= True) or ``"selective"``,
        in every stage or only in ``stages`` (indices of ``self.stages``).

        See :func:`effnet.arch.layers.set_grad_checkpointing` for what each keeps.
        """
        from effnet.arch.layers import set_grad_checkpointing

        set_grad_checkpointing(self, enable, stages)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes`` (0 removes it)."""
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        device = next(self.parameters()).device
        self.num_classes = num_classes
        self.classifier = self._make_classifier(num_classes).to(device)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_chans:
            raise ValueError(
                f"expected an image batch of shape (N, {self.in_chans}, H, W), got {tuple(x.shape)}; "
                f"convert the images to {self.in_chans} channels or build the model with "
                f"in_chans={x.shape[1] if x.dim() == 4 else '...'}"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (after the head conv), before pooling."""
        if not torch.jit.is_tracing() and not torch.compiler.is_compiling():
            self._check_input(x)
        return self.head(self.stages(self.stem(x)))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(features).flatten(1)
        if pre_logits:
            return x
        return self.classifier(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Five maps at strides 2, 4, 8, 16, 32 (ends of paper stages 2, 3, 4, 6, 8)."""
        self._check_input(x)
        x = self.stem(x)
        maps = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self._feature_stages:
                maps.append(x)
        return maps

    @property
    def feature_channels(self) -> list[int]:
        return [self.stages[i][-1].project.bn.num_features for i in self._feature_stages]


def create_model(
    name: str | ModelConfig | Path = "b0",
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    phi: float | None = None,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
    weights: str | Path | None = None,
    **overrides: Any,
) -> EfficientNet:
    """Build a model by name (``list_models()``), from a saved config, or for any ``phi``.

    ``phi`` scales the given base (default B0) with the compound rule; keyword ``overrides``
    replace config fields (``dropout=0.3``, ``padding="same"``, ``bn_eps=1e-5`` ...).
    ``weights`` is a file path or registry tag handed to :func:`effnet.load_weights`.
    """
    config = get_config(name)
    if phi is not None:
        config = scaled_config(phi, alpha, beta, gamma, base=config)
    if weights is not None:
        from effnet.weights import prepare_config_for_weights

        config = prepare_config_for_weights(config, weights)
    if overrides:
        config = config.replace(**overrides)
    model = EfficientNet(config, num_classes=num_classes, in_chans=in_chans)
    if weights is not None:
        from effnet.weights import load_weights

        load_weights(model, weights)
    return model
