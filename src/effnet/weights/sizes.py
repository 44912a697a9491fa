"""Which model size a set of effnet-named tensors belongs to, and what exactly does not fit."""

from __future__ import annotations

from functools import cache
from typing import Any

from effnet.arch.config import NAMED_CONFIGS, ModelConfig


def _ignored(key: str) -> bool:
    return key.startswith("classifier.") or key.endswith("num_batches_tracked")


def _bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{leaf}": (channels,) for leaf in ("weight", "bias", "running_mean", "running_var")}


@cache
def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Parameter/buffer shapes of a model's state dict (classifier excluded), computed from its block specs.

    Computed rather than built: building all 15 named models (even on the meta device) takes
    seconds; tests check this agrees with real models.
    """
    from effnet.arch.scaling import block_specs, head_channels, stem_channels

    stem = stem_channels(config)
    shapes = {"stem.conv.weight": (stem, 3, 3, 3), **_bn("stem.bn", stem)}
    specs = block_specs(config)
    for s, stage in enumerate(specs):
        for b, spec in enumerate(stage):
            p, hidden = f"stages.{s}.{b}", spec.hidden_channels
            if spec.expand != 1:
                shapes[f"{p}.expand.conv.weight"] = (hidden, spec.in_channels, 1, 1)
                shapes.update(_bn(f"{p}.expand.bn", hidden))
            shapes[f"{p}.dw.conv.weight"] = (hidden, 1, spec.kernel, spec.kernel)
            shapes.update(_bn(f"{p}.dw.bn", hidden))
            if spec.se_channels:
                shapes.update({f"{p}.se.reduce.weight": (spec.se_channels, hidden, 1, 1),
                               f"{p}.se.reduce.bias": (spec.se_channels,),
                               f"{p}.se.expand.weight": (hidden, spec.se_channels, 1, 1),
                               f"{p}.se.expand.bias": (hidden,)})
            shapes[f"{p}.project.conv.weight"] = (spec.out_channels, hidden, 1, 1)
            shapes.update(_bn(f"{p}.project.bn", spec.out_channels))
    head = head_channels(config)
    shapes["head.conv.weight"] = (head, specs[-1][-1].out_channels, 1, 1)
    shapes.update(_bn("head.bn", head))
    return shapes


def _signature(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    blocks = {k.rsplit(".", 3)[0] for k in shapes if k.startswith("stages.") and ".project.conv." in k}
    return {
        "stem": shapes.get("stem.conv.weight", (None,))[0],
        "head": shapes.get("head.conv.weight", (None,))[0],
        "blocks": len(blocks),
        "se": any(".se." in k for k in shapes),
    }


def describe(state: dict[str, Any]) -> str:
    sig = _signature({k: tuple(v.shape) for k, v in state.items()})
    return f"stem {sig['stem']} channels, head {sig['head']} channels, {sig['blocks']} blocks, SE {'yes' if sig['se'] else 'no'}"


def guess_models(state: dict[str, Any]) -> list[str]:
    """Named models whose every (non-classifier) tensor shape matches ``state``; closest first otherwise.

    An exact match returns the matching names; if none matches exactly, the names whose stem/head
    width, block count and SE presence agree (e.g. the same size with a different stage split).
    """
    shapes = {k: tuple(v.shape) for k, v in state.items() if not _ignored(k)}
    exact = [name for name, cfg in NAMED_CONFIGS.items() if expected_shapes(cfg) == shapes]
    if exact:
        return exact
    sig = _signature(shapes)
    return [name for name, cfg in NAMED_CONFIGS.items() if _signature(expected_shapes(cfg)) == sig]


def mismatch(model_shapes: dict[str, tuple[int, ...]], state: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, mis-shaped) keys of ``state`` against a model's state-dict shapes."""
    missing = [k for k in model_shapes if k not in state]
    unexpected = [k for k in state if k not in model_shapes]
    shaped = [
        f"{k}: file {tuple(state[k].shape)} vs model {model_shapes[k]}"
        for k in model_shapes
        if k in state and tuple(state[k].shape) != model_shapes[k]
    ]
    return missing, unexpected, shaped


def _listing(title: str, keys: list[str], limit: int = 8) -> str:
    if not keys:
        return ""
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"\n  {title} ({len(keys)}): " + ", ".join(keys[:limit]) + more


def mismatch_message(
    what: str, model_config: ModelConfig, missing: list[str], unexpected: list[str], shaped: list[str],
    looks_like: list[str], state: dict[str, Any],
) -> str:
    text = f"{what} do not fit model {model_config.name!r}"
    if looks_like and model_config.name not in looks_like:
        text += f": the file looks like {' / '.join(looks_like)} ({describe(state)}); build that model instead."
    elif not looks_like:
        text += f": the file has {describe(state)}, which matches no named model."
    return text + _listing("missing", missing) + _listing("unexpected", unexpected) + _listing("mis-shaped", shaped)
