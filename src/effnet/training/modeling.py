"""Build the model for a run: config overrides, pretrained weights with a new classifier, freezing."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from effnet.arch.config import ModelConfig, get_config
from effnet.arch.model import EfficientNet, create_model


def resolve_model_config(
    model: str | ModelConfig | Path, dropout: float | None, drop_connect: float | None, bn_momentum: float | None = None
) -> ModelConfig:
    config = get_config(model)
    pairs = (("dropout", dropout), ("drop_connect", drop_connect), ("bn_momentum", bn_momentum))
    overrides = {k: v for k, v in pairs if v is not None}
    return config.replace(**overrides) if overrides else config


def build_model(config: ModelConfig, num_classes: int, weights: str | Path | None = None) -> EfficientNet:
    """A fresh model, or one started from ``weights`` (file or registry tag).

    Pretrained weights go through :func:`effnet.create_model` and so through
    ``effnet.weights.load_weights(strict=True)``: every backbone tensor must fit, and when the
    class count differs the classifier alone keeps a fresh initialisation, with a warning.
    """
    if weights is None:
        return EfficientNet(config, num_classes=num_classes)
    overrides = {"dropout": config.dropout, "drop_connect": config.drop_connect, "bn_momentum": config.bn_momentum}
    return create_model(config, num_classes=num_classes, weights=str(weights), **overrides)


def freeze_backbone(model: EfficientNet) -> None:
    """Train only the classifier: everything else stops needing gradients."""
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("classifier."))


def set_bn_eval(model: nn.Module, only_frozen: bool) -> None:
    """Put BatchNorm layers in eval mode (running statistics): all of them, or those with frozen params."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if not only_frozen or not any(p.requires_grad for p in m.parameters()):
                m.eval()
