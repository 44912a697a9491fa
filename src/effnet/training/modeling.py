"""Build the model for a run: config overrides, pretrained weights with a new classifier, freezing."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from effnet.arch.config import ModelConfig, get_config
from effnet.arch.model import EfficientNet
from effnet.factory import create_model


def resolve_model_config(
    model: str | ModelConfig | Path, dropout: float | None, drop_connect: float | None, bn_momentum: float | None = None
) -> ModelConfig:
    config = get_config(model)
    pairs = (("dropout", dropout), ("drop_connect", drop_connect), ("bn_momentum", bn_momentum))
    overrides = {k: v for k, v in pairs if v is not None}
    return config.replace(**overrides) if overrides else config


def build_model(config: ModelConfig, num_classes: int, weights: str | Path | None = None,
                zero_new_head: bool = False) -> EfficientNet:
    """A fresh model, or one started from ``weights`` (file or registry tag).

    Pretrained weights go through :func:`effnet.create_model` and so through
    ``effnet.weights.load_weights(strict=True)``: every backbone tensor must fit, and when the
    class count differs the classifier alone keeps a fresh initialisation, with a warning.
    ``zero_new_head`` makes that new classifier start at zero: the first loss is then exactly
    ln(classes) and no random logits (the paper's init gives them a std of several units on
    pretrained features) have to be unlearnt through the backbone.
    """
    if weights is None:
        model = EfficientNet(config, num_classes=num_classes)
        if zero_new_head:  # from scratch too: short (search) runs need not unlearn the init's large logits
            nn.init.zeros_(model.classifier.weight)
            nn.init.zeros_(model.classifier.bias)
        return model
    overrides = {"dropout": config.dropout, "drop_connect": config.drop_connect, "bn_momentum": config.bn_momentum}
    model = create_model(config, num_classes=num_classes, weights=str(weights), **overrides)
    if zero_new_head:
        from effnet.weights import read_weights

        if read_weights(str(weights)).num_classes != num_classes:
            nn.init.zeros_(model.classifier.weight)
            nn.init.zeros_(model.classifier.bias)
    return model


def freeze_backbone(model: EfficientNet) -> None:
    """Train only the classifier: everything else stops needing gradients."""
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("classifier."))


def freeze_stages(model: EfficientNet, count: int) -> None:
    """Stop training the stem and the first ``count`` of ``model.stages`` (low-level features transfer best)."""
    if not 0 <= count <= len(model.stages):
        raise ValueError(f"freeze_stages must be between 0 and {len(model.stages)} for this model, got {count}")
    if count == 0:
        return
    for module in (model.stem, *model.stages[:count]):
        module.requires_grad_(False)


def set_bn_eval(model: nn.Module, only_frozen: bool) -> None:
    """Put BatchNorm layers in eval mode (running statistics): all of them, or those with frozen params."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if not only_frozen or not any(p.requires_grad for p in m.parameters()):
                m.eval()


BATCHNORM_OF_ONE = "Expected more than 1 value per channel when training"  # PyTorch's words for it


def check_batchnorm_batch(config: ModelConfig, image_size: int, batch_size: int, processes: int,
                          bn_frozen: bool) -> None:
    """Refuse, before anything is written, a run whose BatchNorm would see one value per channel.

    Training BatchNorm needs two values per channel: with one image per step and a last feature map
    of 1x1 (images of at most the model's total stride, 32 px for B0) it fails in the first step.
    The loader already drops an incomplete last batch, so only the batch size itself can cause it.
    """
    from effnet.arch.scaling import feature_strides

    per_process = batch_size // processes
    side = -(-image_size // feature_strides(config)[-1])  # every stride-2 layer rounds up
    if per_process > 1 or bn_frozen or side > 1:
        return
    per = f" ({processes} processes share --batch-size {batch_size})" if processes > 1 else ""
    raise ValueError(
        f"one image per step{per} at {image_size} px leaves BatchNorm one value per channel in the last "
        f"1x1 feature map, which cannot train: use --batch-size {2 * processes} or more, or --freeze-bn "
        "(an incomplete last batch is already dropped)")
