"""Build a model by name, config or phi, with pretrained weights read once.

Above the architecture, the weights and the data: ``create_model(name, weights=...)`` reads the
weights file or tag once into one :class:`~effnet.weights.SourceWeights` (state dict, numerics,
classes, preprocessing), builds the config from it, builds the network and loads the state.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from effnet.arch.config import ModelConfig, get_config
from effnet.arch.features import FeatureExtractor
from effnet.arch.model import EfficientNet
from effnet.arch.preprocessing import timm_cfg
from effnet.arch.scaling import ALPHA, BETA, GAMMA, block_specs, scaled_config
from effnet.weights import SourceWeights, load_weights, prepare_config_for_weights, read_weights
from effnet.weights.preprocessing import preprocessing_for


def _timm_aliases(overrides: dict[str, Any], drop_rate: float | None, drop_path_rate: float | None) -> None:
    for alias, field, value in (("drop_rate", "dropout", drop_rate), ("drop_path_rate", "drop_connect", drop_path_rate)):
        if value is None:
            continue
        if field in overrides and overrides[field] != value:
            raise ValueError(f"{alias}={value} and {field}={overrides[field]} disagree; give one of them")
        overrides[field] = value


def pretrained_cfg(model: ModelConfig | str, weights: SourceWeights | str | Path | None = None,
                   num_classes: int | None = None) -> dict[str, Any]:
    """timm's ``pretrained_cfg`` of a model (name or config) with ``weights`` (read, a tag or a file).

    Without weights: the paper's preprocessing for the model, 1000 classes.
    """
    config = get_config(model)
    if weights is None:
        return timm_cfg(config, preprocessing_for(config), 1000 if num_classes is None else num_classes)
    sw = weights if isinstance(weights, SourceWeights) else read_weights(weights)
    ws = sw.weight_set
    classes = ws.num_classes if ws is not None else sw.num_classes
    return timm_cfg(config, sw.preprocessing or preprocessing_for(config), classes if num_classes is None else num_classes,
                    tag=ws.tag if ws is not None else str(sw.path or ""), url=(ws.url or "") if ws is not None else "")


def create_model(
    name: str | ModelConfig | Path = "b0",
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    phi: float | None = None,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
    weights: str | Path | SourceWeights | None = None,
    global_pool: str = "avg",
    drop_rate: float | None = None,
    drop_path_rate: float | None = None,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = (0, 1, 2, 3, 4),
    **overrides: Any,
) -> nn.Module:
    """Build a model by name (``list_models()``), from a saved config, or for any ``phi``.

    ``phi`` scales the given base (default B0) with the compound rule; keyword ``overrides``
    replace config fields (``dropout=0.3``, ``padding="same"``, ``bn_eps=1e-5`` ...); timm's
    ``drop_rate`` / ``drop_path_rate`` are ``dropout`` / ``drop_connect``.
    ``weights`` is a file path or registry tag (or weights already read by
    :func:`effnet.weights.read_weights`), read once: its numerics set the config, its tensors are
    loaded as :func:`effnet.load_weights` does, and the model's ``pretrained_cfg`` describes the
    weights' own preprocessing.
    ``features_only=True`` returns a :class:`~effnet.arch.features.FeatureExtractor` (a list of
    the maps at ``out_indices`` of ``feature_info``), as timm's ``features_only``.
    """
    _timm_aliases(overrides, drop_rate, drop_path_rate)
    config = get_config(name)
    if phi is not None:
        config = scaled_config(phi, alpha, beta, gamma, base=config)
    sw = None
    if weights is not None:
        # The numerics (padding, BN eps) never change the block count, so the layout is known before reading.
        layout = config.replace(**overrides) if overrides else config
        sw = weights if isinstance(weights, SourceWeights) else \
            read_weights(weights, stage_lengths=[len(s) for s in block_specs(layout)])
        config = prepare_config_for_weights(config, sw)
    if overrides:
        config = config.replace(**overrides)
    model = EfficientNet(config, num_classes=num_classes, in_chans=in_chans, global_pool=global_pool)
    if sw is not None:
        load_weights(model, sw)
        model.pretrained_cfg = pretrained_cfg(config, sw)
    if features_only:
        return FeatureExtractor(model, out_indices)
    return model
