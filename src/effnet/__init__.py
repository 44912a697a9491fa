"""effnet: the EfficientNet family (Tan & Le, 2019) on PyTorch."""

__version__ = "0.1.0"

from effnet.arch.config import ModelConfig, Stage, get_config, list_models  # noqa: E402
from effnet.arch.model import EfficientNet, create_model  # noqa: E402
from effnet.arch.scaling import scaled_config  # noqa: E402
from effnet.data.transforms import eval_transform  # noqa: E402
from effnet.deploy.export import export_onnx, export_torchscript  # noqa: E402
from effnet.deploy.inference import optimize_for_inference  # noqa: E402
from effnet.search.budget import fit_budget  # noqa: E402
from effnet.weights import load_weights  # noqa: E402

__all__ = [
    "EfficientNet",
    "ModelConfig",
    "Stage",
    "create_model",
    "eval_transform",
    "export_onnx",
    "export_torchscript",
    "fit_budget",
    "get_config",
    "list_models",
    "load_weights",
    "optimize_for_inference",
    "scaled_config",
]
