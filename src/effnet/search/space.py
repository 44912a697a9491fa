"""The baseline search space: MnasNet's factorized space (Tan et al., 2019) over B0's seven stages.

Every stage of the base network (B0 by default) chooses, independently of the others:

==============  ===================  ========================================================
choice          default values       meaning
==============  ===================  ========================================================
``expand``      1, 3, 6              MBConv expansion ratio; 1 is the depthwise-separable conv
``kernel``      3, 5                 depthwise kernel size
``se_ratio``    0, 0.25              squeeze-and-excitation ratio (0: none)
``skip``        true, false          identity shortcut where shapes allow one, or none
``width``       0.75, 1.0, 1.25      output channels as a multiple of the base stage's
``layers``      -1, 0, 1             layers added to the base stage's (at least 1 remains)
==============  ===================  ========================================================

``expand = 1`` *is* the depthwise-separable convolution: depthwise k x k -> BN -> activation -> 1x1
projection -> BN (MnasNet's own code writes its SepConv as an ``e1`` block), so "MBConv {1, 3, 6} or
depthwise-separable" is three distinct operations, not four. Stride, the stem and the head stay the base's.

A JSON file with any of these keys (and ``base``: a model name or config .json) replaces the defaults;
any other key is an error. An architecture is the per-stage choice; :func:`decode` turns Optuna's flat
parameters (``s0_expand``, ``s0_kernel``, ...) into a :class:`ModelConfig`, and :func:`encode` back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effnet.arch.config import ModelConfig, Stage, get_config

CHOICES: dict[str, tuple[Any, ...]] = {
    "expand": (1, 3, 6),
    "kernel": (3, 5),
    "se_ratio": (0.0, 0.25),
    "skip": (True, False),
    "width": (0.75, 1.0, 1.25),
    "layers": (-1, 0, 1),
}


@dataclass(frozen=True)
class SearchSpace:
    base: str = "b0"
    choices: dict[str, tuple[Any, ...]] = field(default_factory=lambda: dict(CHOICES))

    def base_config(self) -> ModelConfig:
        return get_config(self.base)

    def size(self) -> int:
        """How many distinct architectures the space holds."""
        total = 1
        for i in range(len(self.base_config().stages)):
            for values in stage_choices(self, i).values():
                total *= len(values)
        return total

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, **{k: list(v) for k, v in self.choices.items()}}


def load_space(path: str | Path | None) -> SearchSpace:
    """The default space, with the keys a JSON file gives replaced; unknown keys or empty lists are errors."""
    if path is None:
        return SearchSpace()
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"search space file {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"search space file {path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"search space file {path} must hold a JSON object with keys {', '.join(CHOICES)}")
    unknown = sorted(set(data) - set(CHOICES) - {"base"})
    if unknown:
        raise ValueError(f"search space file {path}: unknown key(s) {unknown}; valid keys: base, {', '.join(CHOICES)}")
    choices = dict(CHOICES)
    for key, values in data.items():
        if key == "base":
            continue
        if not isinstance(values, list) or not values:
            raise ValueError(f"search space file {path}: {key!r} must be a non-empty list of choices")
        choices[key] = tuple(values)
    space = SearchSpace(base=str(data.get("base", "b0")), choices=choices)
    space.base_config()  # an unknown base is reported now, not in the first trial
    return space


def suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:  # noqa: ANN401 - an optuna.Trial
    """Ask Optuna for one value of every choice of every stage (categorical parameters)."""
    n = len(space.base_config().stages)
    return {f"s{i}_{key}": trial.suggest_categorical(f"s{i}_{key}", list(values))
            for i in range(n) for key, values in stage_choices(space, i).items()}


def stage_choices(space: SearchSpace, i: int) -> dict[str, tuple[Any, ...]]:
    """The choices of stage ``i``: the layer changes that leave at least one layer (B0's one-layer stages
    get {0, +1}, so no two parameter sets name the same network)."""
    layers = space.base_config().stages[i].layers
    return {**space.choices, "layers": tuple(v for v in space.choices["layers"] if layers + v >= 1)}


def decode(params: dict[str, Any], space: SearchSpace, name: str = "nas") -> ModelConfig:
    """The architecture ``params`` names, as a model config (resolution and the rest: the base's).

    Channels are the base's times the width choice, rounded to an integer (B0's channels times 0.75 or 1.25
    are exact), so :func:`encode` recovers the choice; the model rounds them to multiples of 8 when it
    builds, as for every EfficientNet.
    """
    base = space.base_config()
    stages = []
    for i, stage in enumerate(base.stages):
        p = {key: params[f"s{i}_{key}"] for key in CHOICES}
        stages.append(Stage(expand=int(p["expand"]), kernel=int(p["kernel"]), stride=stage.stride,
                            channels=round(stage.channels * p["width"]), layers=stage.layers + int(p["layers"]),
                            se_ratio=float(p["se_ratio"]), skip=bool(p["skip"])))
    return base.replace(name=name, stages=tuple(stages))


def encode(config: ModelConfig, space: SearchSpace) -> dict[str, Any]:
    """The parameters of ``config`` in ``space`` (inverse of :func:`decode`); a ValueError if it is outside."""
    base = space.base_config()
    if len(config.stages) != len(base.stages):
        raise ValueError(f"{config.name} has {len(config.stages)} stages; the space's base has {len(base.stages)}")
    params: dict[str, Any] = {}
    for i, (stage, ref) in enumerate(zip(config.stages, base.stages)):
        widths = [w for w in space.choices["width"] if round(ref.channels * w) == stage.channels]
        se_ratio = config.se_ratio if stage.se_ratio is None else stage.se_ratio
        values = dict(expand=stage.expand, kernel=stage.kernel, se_ratio=se_ratio, skip=stage.skip,
                      width=widths[0] if widths else None, layers=stage.layers - ref.layers)
        for key, value in values.items():
            allowed = stage_choices(space, i)[key]
            if value not in allowed:
                raise ValueError(f"stage {i} of {config.name}: {key} {value} is not in the space {allowed}")
            params[f"s{i}_{key}"] = value
    return params
