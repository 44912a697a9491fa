"""Compound scaling (paper section 3.3) as pure functions.

The paper scales a baseline network uniformly in three dimensions with one coefficient phi::

    depth:      d = alpha ** phi
    width:      w = beta  ** phi
    resolution: r = gamma ** phi
    subject to  alpha * beta**2 * gamma**2 ~= 2,   alpha, beta, gamma >= 1

so that the FLOPs of the scaled network grow by about ``(alpha * beta**2 * gamma**2) ** phi``,
i.e. ``2 ** phi``. The grid search of the paper found alpha=1.2, beta=1.1, gamma=1.15.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from effnet.arch.config import STEM_STRIDE, ModelConfig, Stage

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15
CHANNEL_DIVISOR = 8
#: The largest compound coefficient effnet builds. phi 12 from B0 is already 415M parameters and 935
#: GMACs at 1200 px (L2, the largest released model, is 480M parameters); beyond it merely *counting*
#: a model takes minutes and GBs (phi 40 never finished). :func:`compound_coefficients` also bounds each
#: multiplier by its phi-12 value under the paper's coefficients, so other alpha/beta/gamma stay buildable.
PHI_MAX = 12.0
MAX_MULTIPLIERS = (ALPHA**PHI_MAX, BETA**PHI_MAX, GAMMA**PHI_MAX)
_PHI_MAX_WHY = "phi 12 from B0 is already 415M parameters and 935 GMACs"
RESOLUTION_DIVISOR = 8


def round_channels(channels: float, width: float = 1.0, divisor: int = CHANNEL_DIVISOR) -> int:
    """Scale ``channels`` by ``width`` and round to a multiple of ``divisor``.

    Rounds to the nearest multiple (at least ``divisor``), then adds one ``divisor`` if that fell
    more than 10% below the exact value, as every reference implementation does.
    """
    exact = channels * width
    rounded = max(divisor, int(exact + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * exact:
        rounded += divisor
    return int(rounded)


def round_layers(layers: int, depth: float = 1.0) -> int:
    """Scale a stage's number of layers by ``depth``, rounding up."""
    return int(math.ceil(layers * depth))


def round_resolution(resolution: float, divisor: int = RESOLUTION_DIVISOR) -> int:
    """Round an input resolution to the nearest multiple of ``divisor`` (8), at least ``divisor``.

    The official B1-B7 resolutions were rounded by hand; for any other phi we take the nearest
    multiple of 8, which keeps every stride-2 stage's map size close to an exact halving.
    """
    return max(divisor, int(round(resolution / divisor)) * divisor)


def compound_coefficients(
    phi: float, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA
) -> tuple[float, float, float]:
    """(depth, width, resolution) multipliers for ``phi``: ``(alpha**phi, beta**phi, gamma**phi)``.

    Each multiplier is bounded by what :data:`PHI_MAX` gives with the paper's coefficients (see there).
    """
    if not 0 <= phi <= PHI_MAX:  # also refuses nan
        raise ValueError(f"phi must be a number from 0 (the baseline) to {PHI_MAX:g}, got {phi}; {_PHI_MAX_WHY}")
    for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not 1 <= value < math.inf:
            raise ValueError(f"{name} must be a finite number >= 1 (scaling never shrinks a dimension), got {value}")
    multipliers = alpha**phi, beta**phi, gamma**phi
    for dim, value, limit in zip(("depth", "width", "resolution"), multipliers, MAX_MULTIPLIERS):
        if value > limit * (1 + 1e-9):
            raise ValueError(f"phi {phi:g} scales {dim} by {value:.3g}x, more than the {limit:.3g}x of phi "
                             f"{PHI_MAX:g} with the paper's coefficients; use a smaller phi or coefficient. {_PHI_MAX_WHY}")
    return multipliers


def flops_factor(alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA) -> float:
    """How much one step of phi multiplies FLOPs: ``alpha * beta**2 * gamma**2``."""
    return alpha * beta**2 * gamma**2


def scaled_config(
    phi: float,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
    base: ModelConfig | None = None,
) -> ModelConfig:
    """The baseline scaled by any real ``phi >= 0`` (fractional phi included).

    Dropout follows the official schedule (0.2 at B0 rising to 0.5 at B6/B7) as
    ``min(0.5, base_dropout + 0.05 * phi)``.
    """
    depth, width, res = compound_coefficients(phi, alpha, beta, gamma)
    base = base or ModelConfig(name="b0")
    name = f"phi{phi:g}" if (alpha, beta, gamma) == (ALPHA, BETA, GAMMA) else (
        f"phi{phi:g}-a{alpha:g}-b{beta:g}-g{gamma:g}"
    )
    return base.replace(
        name=name,
        width=base.width * width,
        depth=base.depth * depth,
        resolution=round_resolution(base.resolution * res),
        dropout=min(0.5, base.dropout + 0.05 * phi),
        phi=float(phi),
    )


@dataclass(frozen=True)
class BlockSpec:
    """A concrete MBConv block after scaling."""

    in_channels: int
    out_channels: int
    expand: int
    kernel: int
    stride: int
    se_channels: int
    drop_connect: float
    skip: bool = True

    @property
    def has_shortcut(self) -> bool:
        return self.skip and self.stride == 1 and self.in_channels == self.out_channels

    @property
    def hidden_channels(self) -> int:
        return self.in_channels * self.expand


def stem_channels(config: ModelConfig) -> int:
    return config.stem_channels if config.fix_stem_head else round_channels(config.stem_channels, config.width)


def head_channels(config: ModelConfig) -> int:
    return config.head_channels if config.fix_stem_head else round_channels(config.head_channels, config.width)


def scaled_stages(config: ModelConfig) -> list[Stage]:
    """The baseline table with channels and layers scaled by the config's width and depth."""
    last = len(config.stages) - 1
    out = []
    for i, stage in enumerate(config.stages):
        fixed_depth = config.fix_first_last_depth and i in (0, last)
        out.append(
            Stage(
                expand=stage.expand,
                kernel=stage.kernel,
                stride=stage.stride,
                channels=round_channels(stage.channels, config.width),
                layers=stage.layers if fixed_depth else round_layers(stage.layers, config.depth),
                se_ratio=stage.se_ratio,
                skip=stage.skip,
            )
        )
    return out


def block_specs(config: ModelConfig) -> list[list[BlockSpec]]:
    """Every block of every stage, with its channels, stride, SE size and drop-connect rate.

    The drop-connect rate grows linearly with the block's global index i over all N blocks:
    ``p_i = drop_connect * i / N``.
    """
    stages = scaled_stages(config)
    total = sum(s.layers for s in stages)
    in_ch = stem_channels(config)
    index = 0
    specs: list[list[BlockSpec]] = []
    for stage in stages:
        blocks = []
        se_ratio = config.se_ratio if stage.se_ratio is None else stage.se_ratio
        for j in range(stage.layers):
            se = max(1, int(in_ch * se_ratio)) if se_ratio > 0 else 0
            blocks.append(
                BlockSpec(
                    in_channels=in_ch,
                    out_channels=stage.channels,
                    expand=stage.expand,
                    kernel=stage.kernel,
                    stride=stage.stride if j == 0 else 1,
                    se_channels=se,
                    drop_connect=config.drop_connect * index / total,
                    skip=stage.skip,
                )
            )
            in_ch = stage.channels
            index += 1
        specs.append(blocks)
    return specs


def feature_stage_indices(config: ModelConfig) -> list[int]:
    """Stages whose output is a feature map at a new stride (2, 4, 8, 16, 32 for B0).

    A stage ends a stride level when the next stage downsamples, or when it is the last stage.
    """
    stages = config.stages
    return [i for i in range(len(stages)) if i == len(stages) - 1 or stages[i + 1].stride > 1]


def feature_strides(config: ModelConfig) -> list[int]:
    stride, strides = STEM_STRIDE, []
    ends = set(feature_stage_indices(config))
    for i, stage in enumerate(config.stages):
        stride *= stage.stride
        if i in ends:
            strides.append(stride)
    return strides


def _operator(stage: Stage) -> str:
    """``MBConv6, k3x3`` for B0's rows; a searched stage also shows its own SE ratio and a missing skip."""
    text = f"MBConv{stage.expand}, k{stage.kernel}x{stage.kernel}"
    if stage.se_ratio is not None:
        text += f", SE {stage.se_ratio:g}"
    return text + ("" if stage.skip else ", no skip")


def stage_table(config: ModelConfig) -> list[dict[str, object]]:
    """The scaled analogue of the paper's Table 1: operator, input resolution, channels, layers."""
    res = config.resolution
    rows: list[dict[str, object]] = [
        dict(stage=1, operator="Conv3x3", resolution=res, channels=stem_channels(config), layers=1)
    ]
    res = -(-res // STEM_STRIDE)
    for i, stage in enumerate(scaled_stages(config)):
        rows.append(
            dict(
                stage=i + 2,
                operator=_operator(stage),
                resolution=res,
                channels=stage.channels,
                layers=stage.layers,
            )
        )
        res = -(-res // stage.stride)
    rows.append(
        dict(
            stage=len(rows) + 1,
            operator="Conv1x1 & Pooling & FC",
            resolution=res,
            channels=head_channels(config),
            layers=1,
        )
    )
    return rows

