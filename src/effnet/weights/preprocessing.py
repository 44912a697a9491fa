"""Which evaluation preprocessing a weight set, weight file or model needs (the tag's own, else the paper's rule)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from effnet.arch.config import ModelConfig, get_config
from effnet.arch.preprocessing import Preprocessing, paper_preprocessing
from effnet.weights.load import SourceWeights, read_weights
from effnet.weights.registry import get_weight_set


def preprocessing_for(weights_or_config: Any = None) -> Preprocessing:
    """The :class:`Preprocessing` for a registry tag, weight file, ``SourceWeights``, config or model name.

    Without a weight set: the model's resolution, the official crop res / (res + 32), bicubic,
    ImageNet mean/std (Lite models: (x - 127) / 128, as their TF release).
    """
    if weights_or_config is None:
        weights_or_config = "b0"
    if isinstance(weights_or_config, Preprocessing):
        return weights_or_config
    if isinstance(weights_or_config, SourceWeights) and weights_or_config.preprocessing is not None:
        return weights_or_config.preprocessing
    if isinstance(weights_or_config, str):
        ws = get_weight_set(weights_or_config)
        if ws is not None:
            return ws.preprocessing
        if Path(weights_or_config).is_file() and not weights_or_config.endswith(".json"):
            sw = read_weights(weights_or_config)
            if sw.preprocessing is not None:
                return sw.preprocessing
            weights_or_config = sw.looks_like[0] if sw.looks_like else "b0"
    config = weights_or_config.config if hasattr(weights_or_config, "config") else weights_or_config
    return paper_preprocessing(get_config(config) if not isinstance(config, ModelConfig) else config)
