"""The family against the reference implementations: parameters, MACs and stage structure.

Models are built on the meta device: counting needs shapes, not storage.
"""

import pytest
import timm
import torch
import torchvision
from torch import nn

from effnet.arch.config import get_config
from effnet.arch.flops import count_macs, count_params, meta_model

# Spec section 3 (torchvision for b0..b7, timm for b8/l2) and section 5 (lite): params, GMACs.
SPEC = {
    "b0": (5_288_548, 0.386), "b1": (7_794_184, 0.687), "b2": (9_109_994, 0.994),
    "b3": (12_233_232, 1.827), "b4": (19_341_616, 4.394), "b5": (30_389_784, 10.266),
    "b6": (43_040_704, 19.068), "b7": (66_347_960, 37.746), "b8": (87_413_142, 62.597),
    "l2": (480_309_308, 475.704),
}  # fmt: skip
LITE_PARAMS = {"lite0": 4_652_008, "lite1": 5_416_680, "lite2": 6_092_072, "lite3": 8_197_096, "lite4": 13_006_568}


def reference(name: str) -> nn.Module:
    with torch.device("meta"):
        if name in ("b8", "l2"):
            return timm.create_model(f"efficientnet_{name}")
        if name.startswith("lite"):
            return timm.create_model(f"tf_efficientnet_{name}")
        return getattr(torchvision.models, f"efficientnet_{name}")()


@pytest.mark.parametrize("name", list(SPEC))
def test_params_and_macs_equal_the_reference(name):
    ours, ref = meta_model(name), reference(name)
    res = get_config(name).resolution
    params, gmacs = SPEC[name]
    assert count_params(ours) == count_params(ref) == params
    ours_macs = count_macs(ours, res)
    assert ours_macs == count_macs(ref, res)
    assert ours_macs / 1e9 == pytest.approx(gmacs, rel=0.01)


@pytest.mark.parametrize("name", list(LITE_PARAMS))
def test_lite_params_equal_timm(name):
    assert count_params(meta_model(name)) == count_params(reference(name)) == LITE_PARAMS[name]


def tv_stage(stage: nn.Sequential) -> tuple[int, int, int, int, int]:
    """(layers, kernel, first stride, out channels, expansion) of a torchvision MBConv stage."""
    first = stage[0].block
    dw = next(m for m in first.modules() if isinstance(m, nn.Conv2d) and m.groups > 1)
    in_ch = next(m for m in first.modules() if isinstance(m, nn.Conv2d)).in_channels
    out_ch = [m for m in stage[-1].block.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
    return len(stage), dw.kernel_size[0], dw.stride[0], out_ch, dw.out_channels // in_ch


def our_stage(stage: nn.Sequential) -> tuple[int, int, int, int, int]:
    dw = stage[0].dw.conv
    return len(stage), dw.kernel_size[0], dw.stride[0], stage[-1].project.conv.out_channels, dw.out_channels // (
        dw.out_channels if isinstance(stage[0].expand, nn.Identity) else stage[0].expand.conv.in_channels
    )


@pytest.mark.parametrize("name", [f"b{i}" for i in range(8)])
def test_stages_match_torchvision(name):
    ours, ref = meta_model(name), reference(name)
    assert ours.stem.conv.out_channels == ref.features[0][0].out_channels
    assert [our_stage(s) for s in ours.stages] == [tv_stage(ref.features[i]) for i in range(1, 8)]
    assert ours.head.conv.out_channels == ref.features[8][0].out_channels
