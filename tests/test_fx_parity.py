"""An FX-traced model gives the eager model's numbers exactly (timm's test_model_forward_fx, issue 18 point 3).

Eager eval without autograd folds BatchNorm into each conv (effnet.arch.fastpath); a trace that went
through conv -> bn would compute the unfolded form and differ in the last bits. timm's FX feature
extraction treats effnet's conv-BN-act as one leaf (registered by effnet.integrations.timm), so the
traced model runs each one as eager does.
"""

from __future__ import annotations

import pytest
import torch

timm = pytest.importorskip("timm")
pytest.importorskip("torchvision")

from timm.layers import get_notrace_functions, get_notrace_modules  # noqa: E402
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names  # noqa: E402

import effnet.integrations.timm  # noqa: E402,F401 - registers effnet_* and the FX leaves


def _fx_model(model: torch.nn.Module) -> torch.nn.Module:
    """timm's tests/test_models.py _create_fx_model (eval: the graph's last node)."""
    tracer_kwargs = dict(leaf_modules=get_notrace_modules(), autowrap_functions=get_notrace_functions(),
                         param_shapes_constant=True)
    train_nodes, eval_nodes = get_graph_node_names(model, tracer_kwargs=tracer_kwargs)
    return create_feature_extractor(model, train_return_nodes=[train_nodes[-1]], eval_return_nodes=[eval_nodes[-1]],
                                    tracer_kwargs=tracer_kwargs)


@pytest.mark.parametrize("name", ["effnet_b0", "effnet_lite0"])
def test_fx_traced_model_equals_eager_eval_exactly(name):
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    with torch.inference_mode():
        inputs = torch.randn(2, 3, 96, 96)
        outputs = model(inputs)
        fx_outputs = torch.cat(tuple(_fx_model(model)(inputs).values()))
    assert torch.equal(fx_outputs, outputs)
    assert not torch.isnan(outputs).any()
