"""effnet: the EfficientNet family (Tan & Le, 2019) on PyTorch."""

from effnet.config import ModelConfig, Stage, get_config, list_models
from effnet.model import EfficientNet, create_model
from effnet.scaling import scaled_config

__all__ = [
    "EfficientNet",
    "ModelConfig",
    "Stage",
    "create_model",
    "get_config",
    "list_models",
    "scaled_config",
]
__version__ = "0.1.0"
