"""Sequential empirical bias correction of a PT2E int8 graph (after Nagel et al. 2019, applied layer by layer).

Rounding the weights shifts each output channel's mean; the errors of earlier layers add to it on the way down.
Each quantized conv's bias (BatchNorm folded in) is moved by the per-channel mean of fp32 output minus
int8-graph output on the calibration images, in graph order, and each output is measured with the
corrections upstream already applied: a conv corrects only what is left when it is reached. Measured all
at once on the uncorrected graph, every conv would also correct its inputs' shift, which the convs
upstream correct too (docs/benchmarks.md: that one-pass form lost 12 points of agreement).
"""

from __future__ import annotations

import torch
from torch import nn


def fp32_channel_means(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The fp32 model's per-channel mean of every conv + BatchNorm output (before the activation) on
    ``images``, keyed by the conv's module path (``stages.1.0.dw.conv``: as the exported graph names it)."""
    from effnet.arch.layers import ConvBNAct

    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook_for(path: str):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0]
            sums[path] = sums.get(path, 0) + x.double().sum((0, 2, 3))
            counts[path] = counts.get(path, 0) + x.shape[0] * x.shape[2] * x.shape[3]
        return hook

    # hooked at the activation's input: the eval fast path runs the folded conv without the conv's own hooks
    hooks = [m.act.register_forward_pre_hook(hook_for(name + ".conv"))
             for name, m in model.named_modules() if isinstance(m, ConvBNAct)]
    try:
        with torch.no_grad():
            for chunk in images.split(20):
                model(chunk)
    finally:
        for h in hooks:
            h.remove()
    return {path: sums[path] / counts[path] for path in sums}


class _SequentialCorrector(torch.fx.Interpreter):
    """Runs the int8 graph once; at each conv with int8 weights, moves its bias so that the output's
    per-channel mean is the fp32 model's, and passes the corrected output on."""

    def __init__(self, graph: torch.fx.GraphModule, targets: dict[str, torch.Tensor]) -> None:
        super().__init__(graph)
        self.targets = targets
        self.shifts: dict[str, float] = {}  # conv path -> largest bias change

    def run_node(self, node: torch.fx.Node) -> object:
        out = super().run_node(node)
        path = _int8_conv_path(node)
        if path in self.targets and isinstance(node.args[2], torch.fx.Node):
            shift = (self.targets[path] - out.double().mean((0, 2, 3))).float()
            bias = self.fetch_attr(node.args[2].target)
            bias += shift
            self.shifts[path] = float(shift.abs().max())
            out = out + shift.view(1, -1, 1, 1)
        return out


def _int8_conv_path(node: torch.fx.Node) -> str | None:
    """The module path of a conv whose weight is dequantized int8 (the convs left fp32 are not corrected)."""
    if node.op != "call_function" or "conv2d" not in str(node.target):
        return None
    weight = node.args[1]
    if not (isinstance(weight, torch.fx.Node) and "dequantize" in str(weight.target)):
        return None
    stack = node.meta.get("nn_module_stack")
    return list(stack.values())[-1][0] if stack else None


def correct_biases(quantized: torch.fx.GraphModule, model: nn.Module, images: torch.Tensor) -> dict[str, float]:
    """Correct ``quantized`` (``model`` converted by PT2E) in place on ``images`` (the calibration images,
    run as one batch); returns each corrected conv's largest bias change, by module path."""
    corrector = _SequentialCorrector(quantized, fp32_channel_means(model, images))
    with torch.no_grad():
        corrector.run(images)
    return corrector.shifts
