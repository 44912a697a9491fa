"""Parameters and multiply-adds of a config, counted from its block table (no torch, no network built).

What ``effnet info`` prints, in milliseconds: the layer shapes follow from :func:`block_specs`, and a
conv's multiply-adds are ``out_h * out_w * out_ch * in_ch / groups * k * k`` (biases, BatchNorm,
activations and pooling are not counted, as ``torch.utils.flop_counter`` does not count them).
``tests/test_cost.py`` checks every named model and scaled variants against :func:`effnet.arch.flops.model_cost`,
which builds the network on the meta device and counts with ``FlopCounterMode``.
"""

from __future__ import annotations

import math

from effnet.arch.config import STEM_STRIDE, ModelConfig, get_config
from effnet.arch.scaling import block_specs, head_channels, stem_channels


def _conv(in_ch: int, out_ch: int, kernel: int, out_size: int, groups: int = 1) -> tuple[int, int]:
    """(weights + BatchNorm's scale and shift, multiply-adds) of a bias-free conv followed by BatchNorm."""
    weights = out_ch * in_ch // groups * kernel * kernel
    return weights + 2 * out_ch, weights * out_size * out_size


def analytic_cost(config: ModelConfig | str, resolution: int | None = None, num_classes: int = 1000,
                  in_chans: int = 3) -> tuple[int, int]:
    """(parameters, multiply-adds) of ``config`` at ``resolution`` (default its own), as ``model_cost``."""
    config = get_config(config)
    size = math.ceil((resolution or config.resolution) / STEM_STRIDE)  # SAME or k//2 padding: ceil(H / s)
    params, macs = _conv(in_chans, stem_channels(config), 3, size)
    for spec in (s for stage in block_specs(config) for s in stage):
        hidden = spec.hidden_channels
        parts = [_conv(spec.in_channels, hidden, 1, size)] if spec.expand != 1 else []
        size = math.ceil(size / spec.stride)
        parts.append(_conv(hidden, hidden, spec.kernel, size, groups=hidden))
        if spec.se_channels:  # two 1x1 convs with biases on the pooled vector
            se = spec.se_channels
            parts.append((2 * hidden * se + se + hidden, 2 * hidden * se))
        parts.append(_conv(hidden, spec.out_channels, 1, size))
        params += sum(p for p, _ in parts)
        macs += sum(m for _, m in parts)
    head = head_channels(config)
    last = block_specs(config)[-1][-1].out_channels
    head_params, head_macs = _conv(last, head, 1, size)
    classifier = (head * num_classes + num_classes, head * num_classes) if num_classes else (0, 0)
    return params + head_params + classifier[0], macs + head_macs + classifier[1]
