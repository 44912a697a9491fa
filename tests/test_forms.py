"""The blocks' forms (effnet.arch.forms): fast in eval, lean in training, plain for TorchScript; nothing else changes."""

from __future__ import annotations

import pytest
import torch

from effnet import create_model
from effnet.arch import fastpath, layers, memory_saving
from effnet.arch.features import FeatureExtractor
from effnet.arch.forms import Specialised, plain_copy, swap_forms


def _forms(model: torch.nn.Module) -> dict[str, type]:
    return {name: type(m) for name, m in model.named_modules() if isinstance(m, layers.ConvBNAct | layers.Swish
                                                                             | layers.SqueezeExcite | layers.MBConv)}


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("b0", width=0.25, depth=0.34, num_classes=7)


def test_each_mode_swaps_in_its_forms_and_nothing_else(model):
    names, state = [n for n, _ in model.named_modules()], list(model.state_dict())
    model.train()
    trained = _forms(model)
    assert trained["stages.1.0"] is memory_saving.LeanMBConv and trained["stages.1.0.se"] is memory_saving.LeanSqueezeExcite
    assert trained["stem.act"] is memory_saving.LeanSwish and trained["stem"] is layers.ConvBNAct
    model.eval()
    evaluated = _forms(model)
    assert evaluated["stages.1.0"] is fastpath.FastMBConv and evaluated["stem"] is fastpath.FastConvBNAct
    assert evaluated["stages.1.0.se"] is fastpath.FastSqueezeExcite and evaluated["stem.act"] is layers.Swish
    assert [n for n, _ in model.named_modules()] == names and list(model.state_dict()) == state
    assert all(isinstance(m, t.plain_form()) for n, m in model.named_modules()
               for t in [type(m)] if issubclass(t, Specialised))


def test_plain_copy_shares_weights_and_leaves_the_model_alone(model):
    model.eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))  # fills the fold caches
    before = _forms(model)
    plain = plain_copy(model)
    assert all(not isinstance(m, Specialised) for m in plain.modules())
    assert not hasattr(plain.stem, "_folded") and model.stem._folded is not None
    assert plain.stem.conv.weight is model.stem.conv.weight and plain.stem.bn.running_var is model.stem.bn.running_var
    scripted = torch.jit.script(model)
    assert _forms(model) == before  # scripting compiled a plain copy
    x = torch.randn(2, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(plain(x), model(x), rtol=1e-4, atol=1e-4)


def test_feature_extractor_follows_its_own_mode_and_subclasses_are_left_alone(model):
    model.train()
    features = FeatureExtractor(model).eval()
    assert type(model.stages[1][0]) is fastpath.FastMBConv  # shared modules, in the extractor's mode

    class Mine(layers.SqueezeExcite):
        pass

    block = torch.nn.Sequential(Mine(8, 2), layers.SqueezeExcite(8, 2))
    swap_forms(block, fastpath.EVAL_FORMS)
    assert type(block[0]) is Mine and type(block[1]) is fastpath.FastSqueezeExcite
    features.train()
    assert type(model.stages[1][0]) is memory_saving.LeanMBConv
