"""Models whose blocks take the form of the model's mode: fast in eval, lean in training.

:class:`~effnet.arch.model.EfficientNet` and :class:`~effnet.arch.features.FeatureExtractor` both
inherit :class:`FormsFollowMode`, so ``model.train()`` / ``model.eval()`` swap every block's form in
one place (:mod:`effnet.arch.forms`) and ``torch.jit.script`` compiles a plain copy.
"""

from __future__ import annotations

from torch import nn

from effnet.arch import fastpath, memory_saving
from effnet.arch.forms import plain_copy, swap_forms


class FormsFollowMode(nn.Module):
    """Mixin: ``train(mode)`` puts each block in that mode's form; TorchScript gets the paper's forward."""

    def train(self, mode: bool = True) -> nn.Module:
        """Training or eval mode, each block in that mode's form: lean in training, fast in eval."""
        super().train(mode)
        return swap_forms(self, memory_saving.TRAINING_FORMS if mode else fastpath.EVAL_FORMS)

    def __prepare_scriptable__(self) -> nn.Module:
        return plain_copy(self)  # TorchScript compiles the paper's forward; the model keeps its forms
