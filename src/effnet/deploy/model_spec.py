"""Everything needed to classify with a set of weights: the model config, the class names and the preprocessing.

A run of ``effnet train`` is self-describing: its ``model.safetensors`` carries the classes, model
config and image size in its metadata (older runs: ``classes.json`` / ``model_config.json`` beside
it), so ``--weights RUN_DIR`` or ``--weights RUN_DIR/model.safetensors`` is enough. Registry tags
and other files bring what they know (ImageNet names for a 1000-way classifier); files written by
``effnet export`` (``.onnx``, ``.pte``) carry all of it (:mod:`effnet.deploy.artifacts`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effnet.arch.config import ModelConfig, get_config
from effnet.weights.registry import Preprocessing

if TYPE_CHECKING:
    from torch import nn

RUN_WEIGHTS = "model.safetensors"


@dataclass
class ModelSpec:
    weights: str | None  # a file path or registry tag, as load_weights takes it; None: random weights
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


def model_spec(weights: str, model: str | ModelConfig | Path | None = None, headless_ok: bool = False) -> ModelSpec:
    """What classifying with ``weights`` needs; ``model`` overrides the architecture the weights name.

    ``headless_ok`` returns a backbone-only file (``num_classes`` 0) instead of refusing it.
    """
    from effnet.deploy.artifacts import is_artifact

    if is_artifact(weights) and Path(weights).is_file():
        return artifact_spec(weights, model)
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
    if sw.num_classes == 0 and not headless_ok:
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


def spec_for_export(
    weights: str | None, model: str | None = None, num_classes: int | None = None, size: int | None = None,
    allow_random_head: bool = False,
) -> ModelSpec:
    """What ``effnet export`` writes: the weights' own model, classes and size, or a refusal in one line.

    A run (``effnet train``) is the unit: flags that contradict its model, class count or image size
    are refused rather than silently overriding it. A classifier that the weights do not fill (another
    ``num_classes``, a backbone-only file, or no weights at all) would be exported randomly
    initialised, which is refused unless ``allow_random_head``.
    """
    import dataclasses

    from effnet.data.transforms import preprocessing_for

    random_ok = "pass --allow-random-head to export it anyway (e.g. to benchmark)"  # the end of a sentence
    if weights is None:
        if model is None:
            raise ValueError("nothing to export: pass --weights (an effnet train run folder, a weights file or a "
                             "registry tag such as lite0)")
        if not allow_random_head:
            raise ValueError(f"no --weights: {model} would be exported with random weights; pass --weights (a run "
                             f"folder, a file or a tag such as lite0); or {random_ok}")
        config = get_config(model)
        prep = preprocessing_for(config)
        if size is not None:
            prep = dataclasses.replace(prep, resolution=size)
        return ModelSpec(None, config, num_classes or 1000, None, False, prep)
    if model is not None and "config" in (run := _run_metadata(_run_weights_file(str(weights)))):
        if get_config(model).name != run["config"].name:
            raise ValueError(f"--model {model} contradicts the run {weights}, a {run['config'].name}; drop --model "
                             "(the run's own model is used)")
        model = None
    spec = model_spec(weights, model, headless_ok=True)
    if spec.names_from_run:
        what = f"the run {weights}"
        if num_classes is not None and num_classes != spec.num_classes:
            raise ValueError(f"--num-classes {num_classes} contradicts {what}, which has {spec.num_classes} classes "
                             f"({', '.join(spec.class_names[:3])}{' ...' if spec.num_classes > 3 else ''}); drop "
                             "--num-classes")
        if size is not None and size != spec.preprocessing.resolution:
            raise ValueError(f"--size {size} contradicts {what}, trained for {spec.preprocessing.resolution} px; drop "
                             "--size (--dynamic exports any image size)")
        return spec
    if size is not None:
        spec.preprocessing = dataclasses.replace(spec.preprocessing, resolution=size)
    if num_classes is None and spec.num_classes == 0:
        raise ValueError(f"{weights} has no classifier (a backbone-only file); fine-tune it first (effnet train "
                         f"--weights ...), or give --num-classes N and {random_ok}")
    if num_classes is not None and num_classes != spec.num_classes:
        if not allow_random_head:
            has = f"a {spec.num_classes}-class classifier" if spec.num_classes else "no classifier"
            raise ValueError(f"--num-classes {num_classes}: {weights} has {has}, so the exported one would be "
                             f"randomly initialised; drop --num-classes, fine-tune first (effnet train), or {random_ok}")
        spec.num_classes, spec.class_names = num_classes, None
    return spec


def export_metadata(spec: ModelSpec, input_size: int) -> dict[str, str]:
    """The metadata of an export of ``spec`` at ``input_size`` px: string keys and values (ONNX's kind).

    Lists and numbers are JSON. ``classes`` is ``null`` where the names are unknown;
    ``classes_source`` says whether they came with the weights (a run's own) or are ImageNet's.
    """
    from effnet._version import __version__

    prep = spec.preprocessing
    return {
        "effnet_version": __version__,
        "model": spec.config.name,
        "effnet_config": json.dumps(spec.config.to_dict()),
        "num_classes": str(spec.num_classes),
        "classes": json.dumps(spec.class_names),
        "classes_source": "weights" if spec.names_from_run else "imagenet" if spec.class_names else "none",
        "input_size": json.dumps([input_size, input_size]),
        "mean": json.dumps(list(prep.mean)),
        "std": json.dumps(list(prep.std)),
        "crop_pct": json.dumps(prep.crop_pct),
        "crop_mode": prep.crop_mode,
        "interpolation": prep.interpolation,
    }


@dataclass
class ArtifactSpec(ModelSpec):
    """A :class:`ModelSpec` whose model is an exported file, run by ONNX Runtime or ExecuTorch."""

    def build(self) -> nn.Module:
        from effnet.deploy.artifacts import ArtifactModel

        return ArtifactModel(self.weights)


def artifact_spec(path: str | Path, model: str | ModelConfig | Path | None = None) -> ArtifactSpec:
    """What classifying with an exported file needs, read from its metadata; ``model`` must agree with it."""
    from effnet.deploy.artifacts import read_metadata

    meta = read_metadata(path)
    config = ModelConfig.from_dict(json.loads(meta["effnet_config"]))
    if model is not None and get_config(model).name != config.name:
        raise ValueError(f"--model {model} contradicts {path}, an export of {config.name}; drop --model "
                         "(an exported file is one fixed model)")
    size = json.loads(meta["input_size"])[0]
    prep = Preprocessing(resolution=size, crop_pct=json.loads(meta["crop_pct"]), interpolation=meta["interpolation"],
                         mean=tuple(json.loads(meta["mean"])), std=tuple(json.loads(meta["std"])),
                         crop_mode=meta["crop_mode"])
    names = json.loads(meta["classes"])
    return ArtifactSpec(str(path), config, int(meta["num_classes"]), names, meta["classes_source"] == "weights", prep)


def load_artifact(path: str | Path) -> tuple[nn.Module, ArtifactSpec]:
    """The runnable exported file and its spec (class names, preprocessing): ``spec.build()`` is the model."""
    spec = artifact_spec(path)
    return spec.build(), spec
