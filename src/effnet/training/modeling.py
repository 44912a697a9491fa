"""Build the model for a run: config overrides, pretrained weights with a new classifier, freezing."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from effnet.config import ModelConfig, get_config
from effnet.model import EfficientNet, create_model


def resolve_model_config(model: str | ModelConfig | Path, dropout: float | None, drop_connect: float | None) -> ModelConfig:
    config = get_config(model)
    overrides = {k: v for k, v in (("dropout", dropout), ("drop_connect", drop_connect)) if v is not None}
    return config.replace(**overrides) if overrides else config


def build_model(config: ModelConfig, num_classes: int, weights: str | Path | None = None) -> EfficientNet:
    """A fresh model, or one started from ``weights``.

    Pretrained weights are loaded into a model with the *source's* classifier (so the weights
    helper's strict loading checks every tensor), then :meth:`EfficientNet.reset_classifier`
    gives it ``num_classes`` outputs with a warning when the counts differ.
    """
    if weights is None:
        return EfficientNet(config, num_classes=num_classes)
    source_classes = _source_num_classes(weights)
    overrides = {"dropout": config.dropout, "drop_connect": config.drop_connect}
    model = create_model(config, num_classes=source_classes, weights=weights, **overrides)
    if source_classes != num_classes:
        warnings.warn(
            f"the weights {weights} have a {source_classes}-class classifier but the data has {num_classes} "
            "classes; the classifier is re-initialised and trained from scratch",
            stacklevel=2,
        )
        model.reset_classifier(num_classes)
    return model


def _source_num_classes(weights: str | Path) -> int:
    """Classifier size stored in the weights; 1000 (ImageNet) when the source does not say."""
    try:
        from effnet.weights import source_num_classes  # type: ignore[attr-defined]
    except ImportError:
        source_num_classes = None
    if source_num_classes is not None:
        return int(source_num_classes(weights))
    path = Path(weights)
    if path.suffix == ".pt" and path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("ema", {}).get("module") or state.get("model", state)
        if "classifier.weight" in state:
            return int(state["classifier.weight"].shape[0])
    if path.suffix == ".safetensors" and path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            if "classifier.weight" in f.keys():
                return int(f.get_slice("classifier.weight").get_shape()[0])
    return 1000


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
