"""effnet's models in timm's model registry, so timm's scripts and helpers build them by name.

    import effnet.integrations.timm  # registers effnet_b0 .. effnet_l2, effnet_lite0 .. effnet_lite4
    model = timm.create_model("effnet_b0", num_classes=10, drop_path_rate=0.1)
    model = timm.create_model("effnet_b3.ns_jft_in1k", pretrained=True)   # a weight tag after the dot
    model = timm.create_model("effnet_lite0", pretrained=True)            # effnet's default weights

timm's ``train.py`` / ``validate.py`` find the models once this module is imported (for
example ``python -c "import effnet.integrations.timm, runpy, sys; sys.argv = sys.argv[1:];
runpy.run_path(sys.argv[0], run_name='__main__')" train.py --model effnet_b0 ...``).
Pretrained weights come from effnet's registry (:func:`effnet.weights.list_weights`): the tag
after the dot is a registry tag, a timm tag of that model (``ra_in1k``, ``ns_jft_in1k``) or a
source (``torchvision``, ``keras``, ``lukemelas``).
"""

from __future__ import annotations

import sys
from typing import Any

from timm.layers import register_notrace_module
from timm.models import register_model

from effnet.arch.config import list_models
from effnet.arch.layers import ConvBNAct, SqueezeExcite
from effnet.factory import create_model, pretrained_cfg
from effnet.weights.registry import get_weight_set, list_weights

PREFIX = "effnet_"
#: timm keyword arguments that effnet has no counterpart for; asking for them is an error.
UNSUPPORTED = ("drop_block_rate", "output_stride", "feature_location", "act_layer", "norm_layer")


def weight_tag(name: str, tag: str | None) -> str:
    """The effnet registry tag for model ``name`` and timm's tag (the part after the dot; None: the default)."""
    own = list_weights(name)
    if not own:
        raise ValueError(f"effnet has no released weights for {name}; build it with pretrained=False")
    candidates = [tag, f"{tag}/{name}", f"timm/efficientnet_{name}.{tag}", f"timm/tf_efficientnet_{name}.{tag}"] if tag \
        else [f"torchvision/{name}", name, own[0].tag]
    for candidate in candidates:
        ws = get_weight_set(candidate)
        if ws is not None and ws.model == name:
            return ws.tag
    raise ValueError(f"no {name} weights tagged {tag!r}; valid: {', '.join(ws.tag for ws in own)}")


def _build(name: str, pretrained: bool = False, pretrained_cfg: Any = None, **kwargs: Any) -> Any:
    for key in ("pretrained_cfg_overlay", "cache_dir", "scriptable", "exportable", "no_jit"):
        kwargs.pop(key, None)
    asked = sorted(k for k in UNSUPPORTED if k in kwargs)
    if asked:
        raise ValueError(f"effnet models do not support {asked}; leave them unset")
    tag = pretrained_cfg if isinstance(pretrained_cfg, str) and pretrained_cfg else None
    weights = weight_tag(name, tag) if pretrained else None
    feature_cls = kwargs.pop("feature_cls", None) or kwargs.pop("feature_cfg", {}).get("feature_cls")
    if feature_cls in (None, "", "effnet"):
        return create_model(name, weights=weights, **kwargs)
    if feature_cls != "getter" or not kwargs.pop("features_only", False):
        raise ValueError(f"feature_cls {feature_cls!r} is not supported; use 'getter' with features_only=True, or leave it unset")
    # timm's own wrapper around forward_intermediates / prune_intermediate_layers.
    from timm.models._features import FeatureGetterNet

    out_indices = kwargs.pop("out_indices", (0, 1, 2, 3, 4))
    model = create_model(name, weights=weights, **kwargs)
    return FeatureGetterNet(model, out_indices=out_indices)


def _entrypoint(name: str) -> Any:
    def build(pretrained: bool = False, **kwargs: Any) -> Any:
        return _build(name, pretrained, **kwargs)

    build.__name__ = build.__qualname__ = f"{PREFIX}{name}"
    build.__module__ = __name__
    build.__doc__ = f"effnet's EfficientNet-{name.upper()} (effnet.create_model({name!r}, ...))."
    return build


# timm reads each model's default pretrained cfg (input size, mean/std ...) from the module's default_cfgs.
default_cfgs = {
    f"{PREFIX}{name}": pretrained_cfg(name) for name in list_models()
}
for _name in list_models():
    setattr(sys.modules[__name__], f"{PREFIX}{_name}", register_model(_entrypoint(_name)))

# timm's FX feature extraction (and its test_model_forward_fx) keeps conv-BN-act and squeeze-excitation as
# leaves: the traced model then runs each one as eager does (BatchNorm folded, the SE gate's 1x1 convs as
# matmuls in eval without autograd: effnet.arch.fastpath), so FX features equal the model's own numbers
# exactly instead of differing in the last bits.
register_notrace_module(ConvBNAct)
register_notrace_module(SqueezeExcite)
