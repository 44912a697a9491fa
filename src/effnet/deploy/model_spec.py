"""Everything needed to classify with a set of weights: the model config, the class names and the preprocessing.

A run of ``effnet train`` is self-describing: its ``model.safetensors`` carries the classes, model
config and image size in its metadata (older runs: ``classes.json`` / ``model_config.json`` beside
it), so ``--weights RUN_DIR`` or ``--weights RUN_DIR/model.safetensors`` is enough. Registry tags
and other files bring what they know (ImageNet names for a 1000-way classifier).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effnet.arch.config import ModelConfig, get_config
from effnet.weights.registry import Preprocessing

RUN_WEIGHTS = "model.safetensors"


@dataclass
class ModelSpec:
    weights: str  # a file path or registry tag, as load_weights takes it
    config: ModelConfig
    num_classes: int
    class_names: list[str] | None  # None: not known (then "class i"); ImageNet names for 1000-way registry weights
    names_from_run: bool  # the names came with the weights (effnet train), not from assuming ImageNet
    preprocessing: Preprocessing

    def build(self) -> Any:  # noqa: ANN401 - an EfficientNet in eval mode
        from effnet.factory import create_model

        return create_model(self.config, num_classes=self.num_classes, weights=self.weights).eval()


def _run_weights_file(weights: str) -> str:
    path = Path(weights).expanduser()
    if not path.is_dir():
        return weights
    if (path / RUN_WEIGHTS).is_file():
        return str(path / RUN_WEIGHTS)
    raise FileNotFoundError(f"{path} is a folder without {RUN_WEIGHTS}, so not an effnet run folder; pass a weights "
                            "file, a run folder written by effnet train, or a registry tag (lite0, torchvision/b0, ...)")


def _run_metadata(weights: str) -> dict[str, Any]:
    """classes / config / image size that effnet train stored in the file or beside it."""
    path = Path(weights)
    if not path.is_file():
        return {}
    found: dict[str, Any] = {}
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        if "classes" in meta:
            found["classes"] = json.loads(meta["classes"])
        if "effnet_config" in meta:
            found["config"] = ModelConfig.from_dict(json.loads(meta["effnet_config"]))
        if meta.get("image_size", "").isdigit():
            found["image_size"] = int(meta["image_size"])
    beside = path.parent
    if (beside / "model_config.json").is_file() and (beside / "classes.json").is_file():  # an effnet run folder
        found.setdefault("classes", json.loads((beside / "classes.json").read_text()))
        found.setdefault("config", get_config(beside / "model_config.json"))
    return found


def model_spec(weights: str, model: str | ModelConfig | Path | None = None) -> ModelSpec:
    """What classifying with ``weights`` needs; ``model`` overrides the architecture the weights name."""
    from effnet.data.imagenet import imagenet_classes
    from effnet.data.transforms import preprocessing_for
    from effnet.weights import read_weights
    from effnet.weights.registry import official_crop_pct

    weights = _run_weights_file(str(weights))
    sw = read_weights(weights)
    run = _run_metadata(weights)
    if model is not None:
        config = get_config(model)
    elif "config" in run:
        config = run["config"]
    elif sw.weight_set is not None:
        config = get_config(sw.weight_set.model)
    elif sw.looks_like:
        config = get_config(sw.looks_like[0])
    else:
        raise ValueError(f"cannot tell which model {weights} is for; pass --model NAME")
    if sw.num_classes == 0:
        raise ValueError(f"{weights} has no classifier (a backbone-only file): it cannot classify; fine-tune it "
                         "first (effnet train --weights ...)")
    names = run.get("classes")
    if names is not None and len(names) != sw.num_classes:
        raise ValueError(f"{weights}: the run lists {len(names)} classes but the weights' classifier has "
                         f"{sw.num_classes}; the class list and the weights are not from the same run")
    from_run = names is not None
    if names is None and sw.num_classes == len(imagenet_classes()):
        names = list(imagenet_classes())
    prep = sw.preprocessing or preprocessing_for(config)
    size = run.get("image_size")
    if sw.preprocessing is None and size and size != prep.resolution:  # a run saved before the preprocessing was
        import dataclasses

        prep = dataclasses.replace(prep, resolution=size, crop_pct=official_crop_pct(size))
    return ModelSpec(weights, config, sw.num_classes, names, from_run, prep)
