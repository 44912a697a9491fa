"""Model configurations: the paper's B0 table (Table 1) and the named family members.

Everything here is data. How a configuration turns into concrete layer sizes lives in
:mod:`effnet.arch.scaling`; how the layers are built lives in :mod:`effnet.arch.model`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Stage:
    """One row of the baseline table: a stage of identical MBConv blocks.

    ``se_ratio`` (None: the model's) and ``skip`` (False: no identity shortcut even where shapes allow
    one) let a searched baseline differ per stage, as MnasNet's factorized space does; B0 uses neither.
    """

    expand: int
    kernel: int
    stride: int
    channels: int
    layers: int
    se_ratio: float | None = None
    skip: bool = True


# EfficientNet-B0, paper Table 1. Stride applies to the first block of a stage only.
# Stage 1 (the stem) and stage 9 (the head) are STEM_CHANNELS and HEAD_CHANNELS.
#            expand kernel stride channels layers     # input resolution at 224
B0_STAGES: tuple[Stage, ...] = (
    Stage(1, 3, 1, 16, 1),    # MBConv1, 3x3   112
    Stage(6, 3, 2, 24, 2),    # MBConv6, 3x3   112
    Stage(6, 5, 2, 40, 2),    # MBConv6, 5x5    56
    Stage(6, 3, 2, 80, 3),    # MBConv6, 3x3    28
    Stage(6, 5, 1, 112, 3),   # MBConv6, 5x5    14
    Stage(6, 5, 2, 192, 4),   # MBConv6, 5x5    14
    Stage(6, 3, 1, 320, 1),   # MBConv6, 3x3     7
)
STEM_CHANNELS = 32
STEM_STRIDE = 2
HEAD_CHANNELS = 1280
BASE_RESOLUTION = 224

PADDINGS = ("symmetric", "same")
ACTIVATIONS = ("swish", "relu6")

# PyTorch's BatchNorm momentum is the weight of the *new* batch statistic; TensorFlow's is the
# weight of the *old* running value. So TF momentum 0.99 (the official models) == PyTorch 0.01.
TF_BN_MOMENTUM = 0.99
DEFAULT_BN_MOMENTUM = 1.0 - TF_BN_MOMENTUM
DEFAULT_BN_EPS = 1e-3


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build one EfficientNet.

    ``width``, ``depth`` and ``resolution`` are the compound-scaling multipliers/size;
    ``bn_momentum`` uses the PyTorch convention (see ``TF_BN_MOMENTUM``).
    """

    name: str
    width: float = 1.0
    depth: float = 1.0
    resolution: int = BASE_RESOLUTION
    dropout: float = 0.2
    drop_connect: float = 0.2
    se_ratio: float = 0.25
    activation: str = "swish"
    padding: str = "symmetric"
    bn_eps: float = DEFAULT_BN_EPS
    bn_momentum: float = DEFAULT_BN_MOMENTUM
    fix_stem_head: bool = False
    fix_first_last_depth: bool = False
    stem_channels: int = STEM_CHANNELS
    head_channels: int = HEAD_CHANNELS
    stages: tuple[Stage, ...] = field(default=B0_STAGES)
    phi: float | None = None

    def __post_init__(self) -> None:
        _validate(self)

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (unknown field names are an error)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            valid = ", ".join(f.name for f in dataclasses.fields(self))
            raise TypeError(f"unknown config field(s) {sorted(unknown)}; valid fields: {valid}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        if "stages" in data:
            data["stages"] = tuple(Stage(**s) if isinstance(s, dict) else Stage(*s) for s in data["stages"])
        return cls(**data)

    def save(self, path: str | Path) -> None:
        """Write the configuration as JSON, atomically (an interrupted save leaves the old file)."""
        from effnet.fileio import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ModelConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path} is not an effnet model configuration: {exc}") from exc


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_range(name: str, value: object, low: float, high: float, *, low_open: bool = False,
                 high_open: bool = False, integer: bool = False) -> None:
    """``value`` must be a finite number (an int when ``integer``) between ``low`` and ``high``."""
    ok = _number(value) and (not integer or float(value).is_integer())  # type: ignore[arg-type]
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        lo, hi = ("(" if low_open else "[") + f"{low:g}", f"{high:g}" + (")" if high_open else "]")
        kind = "an integer" if integer else "a number"
        raise ValueError(f"model config: {name} must be {kind} in {lo}, {hi}, got {value!r}")


def _check_stage(i: int, stage: Stage) -> None:
    where = f"stages[{i}]"
    for name in ("expand", "kernel", "channels", "layers"):
        _check_range(f"{where}.{name}", getattr(stage, name), 1, math.inf, integer=True, high_open=True)
    if stage.stride not in (1, 2):
        raise ValueError(f"model config: {where}.stride must be 1 or 2, got {stage.stride!r}")
    if stage.se_ratio is not None:
        _check_range(f"{where}.se_ratio", stage.se_ratio, 0, 1)


def _validate(config: ModelConfig) -> None:
    """Refuse values no network can be built (or trusted) with: one error naming the field and its range.

    Saved configs travel inside weight files, so NaN, a negative BatchNorm eps and the like are
    caught here rather than showing up as NaN predictions.
    """
    _check_range("width", config.width, 0, math.inf, low_open=True, high_open=True)
    _check_range("depth", config.depth, 0, math.inf, low_open=True, high_open=True)
    _check_range("resolution", config.resolution, 1, math.inf, integer=True, high_open=True)
    for name in ("dropout", "drop_connect"):
        _check_range(name, getattr(config, name), 0, 1, high_open=True)
    _check_range("se_ratio", config.se_ratio, 0, 1)
    _check_range("bn_eps", config.bn_eps, 0, 1, low_open=True)
    _check_range("bn_momentum", config.bn_momentum, 0, 1)
    for name in ("stem_channels", "head_channels"):
        _check_range(name, getattr(config, name), 1, math.inf, integer=True, high_open=True)
    if config.phi is not None:
        _check_range("phi", config.phi, 0, math.inf, high_open=True)
    if config.padding not in PADDINGS:
        raise ValueError(f"model config: padding must be one of {PADDINGS}, got {config.padding!r}")
    if config.activation not in ACTIVATIONS:
        raise ValueError(f"model config: activation must be one of {ACTIVATIONS}, got {config.activation!r}")
    if not config.stages:
        raise ValueError("model config: stages is empty; a network needs at least one stage")
    for i, stage in enumerate(config.stages):
        _check_stage(i, stage)


def _named(name: str, width: float, depth: float, resolution: int, dropout: float, **kw: Any) -> ModelConfig:
    return ModelConfig(name=name, width=width, depth=depth, resolution=resolution, dropout=dropout, **kw)


_LITE = dict(
    se_ratio=0.0, activation="relu6", padding="same", fix_stem_head=True, fix_first_last_depth=True
)

# The official hand-rounded coefficients (tensorflow/tpu efficientnet_builder.efficientnet_params
# and lite/efficientnet_lite_builder.efficientnet_lite_params): width, depth, resolution, dropout.
NAMED_CONFIGS: dict[str, ModelConfig] = {
    c.name: c
    for c in (
        _named("b0", 1.0, 1.0, 224, 0.2),
        _named("b1", 1.0, 1.1, 240, 0.2),
        _named("b2", 1.1, 1.2, 260, 0.3),
        _named("b3", 1.2, 1.4, 300, 0.3),
        _named("b4", 1.4, 1.8, 380, 0.4),
        _named("b5", 1.6, 2.2, 456, 0.4),
        _named("b6", 1.8, 2.6, 528, 0.5),
        _named("b7", 2.0, 3.1, 600, 0.5),
        _named("b8", 2.2, 3.6, 672, 0.5),
        _named("l2", 4.3, 5.3, 800, 0.5),
        _named("lite0", 1.0, 1.0, 224, 0.2, **_LITE),
        _named("lite1", 1.0, 1.1, 240, 0.2, **_LITE),
        _named("lite2", 1.1, 1.2, 260, 0.3, **_LITE),
        _named("lite3", 1.2, 1.4, 280, 0.3, **_LITE),
        _named("lite4", 1.4, 1.8, 300, 0.3, **_LITE),
    )
}


def list_models() -> list[str]:
    """Names accepted by :func:`get_config` and :func:`effnet.create_model`."""
    return list(NAMED_CONFIGS)


def get_config(name: str | ModelConfig | Path) -> ModelConfig:
    """The configuration for a model name (``b0``, ``efficientnet_b0`` ...) or a saved JSON file."""
    if isinstance(name, ModelConfig):
        return name
    key = str(name)
    if key.endswith(".json"):
        if not Path(key).is_file():
            raise FileNotFoundError(f"model configuration file {key} does not exist")
        return ModelConfig.load(key)
    key = key.lower().removeprefix("tf_").removeprefix("efficientnet_").removeprefix("efficientnet-")
    if key not in NAMED_CONFIGS:
        raise ValueError(
            f"unknown model {name!r}; valid names: {', '.join(NAMED_CONFIGS)} "
            "(or a configuration .json written by `effnet scale --save`)"
        )
    return NAMED_CONFIGS[key]
