"""effnet: the EfficientNet family (Tan & Le, 2019) on PyTorch.

The public names below are imported on first use (PEP 562), so ``import effnet`` and the command
line's parser do not pay for torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from effnet._version import __version__ as __version__

#: public name -> the module that defines it
_PUBLIC = {
    "EfficientNet": "effnet.arch.model",
    "ModelConfig": "effnet.arch.config",
    "Stage": "effnet.arch.config",
    "create_model": "effnet.factory",
    "eval_transform": "effnet.data.transforms",
    "export_onnx": "effnet.deploy.export",
    "export_torchscript": "effnet.deploy.export",
    "fit_budget": "effnet.search.budget",
    "get_config": "effnet.arch.config",
    "list_models": "effnet.arch.config",
    "load_weights": "effnet.weights",
    "optimize_for_inference": "effnet.deploy.inference",
    "scaled_config": "effnet.arch.scaling",
}
_SUBPACKAGES = {"arch", "backbone", "bench", "choices", "cli", "commands", "data", "deploy", "factory", "fileio",
                "integrations", "search", "training", "weights"}

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

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from effnet.arch.config import ModelConfig, Stage, get_config, list_models
    from effnet.arch.model import EfficientNet
    from effnet.arch.scaling import scaled_config
    from effnet.data.transforms import eval_transform
    from effnet.deploy.export import export_onnx, export_torchscript
    from effnet.deploy.inference import optimize_for_inference
    from effnet.factory import create_model
    from effnet.search.budget import fit_budget
    from effnet.weights import load_weights


def __getattr__(name: str) -> Any:  # noqa: ANN401 - whatever the public name is
    if name in _SUBPACKAGES:  # `import effnet; effnet.deploy.export...` keeps working, as when all was eager
        return importlib.import_module(f"effnet.{name}")
    if name not in _PUBLIC:
        raise AttributeError(f"module 'effnet' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
