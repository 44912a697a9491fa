"""Which form a block runs in: the plain one of :mod:`effnet.arch.layers`, or a specialised one swapped in by class.

A specialised form (:class:`Specialised`) is a subclass of a plain block with the same parameters,
buffers and submodules, so swapping ``module.__class__`` changes only how ``forward`` computes:
state dicts, ``named_modules``, hooks and optimizers see the same model. Each form falls back to
the plain forward wherever it does not apply (autograd recording where it needs none, or the
reverse; tracing, scripting, compiling, exporting). The forms in use:

- eval mode: :data:`effnet.arch.fastpath.EVAL_FORMS` (BatchNorm folded, 1x1 convs as matmuls,
  in-place SE and residual);
- training: :data:`effnet.arch.memory_saving.TRAINING_FORMS` (autograd functions that keep less,
  activation checkpointing).

:class:`~effnet.arch.modes.FormsFollowMode` (inherited by :class:`~effnet.arch.model.EfficientNet` and
:class:`~effnet.arch.features.FeatureExtractor`) swaps
their blocks in ``train(mode)`` (which ``eval()`` calls too). ``torch.jit.script`` gets a plain copy
(:func:`plain_copy`, through ``__prepare_scriptable__``): TorchScript compiles only the paper's forward.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from typing import TypeVar

from torch import nn

M = TypeVar("M", bound=nn.Module)


class Specialised:
    """Mixin, first base of a specialised form: ``class FastX(Specialised, X)`` for a plain block ``X``."""

    #: instance attributes the form keeps for itself (caches); dropped when the block leaves the form
    form_state: tuple[str, ...] = ()

    @classmethod
    def plain_form(cls) -> type:
        return next(c for c in cls.__mro__ if not issubclass(c, Specialised))

    def __prepare_scriptable__(self) -> nn.Module:
        return plain_copy(self)


def swap_forms(model: M, forms: Mapping[type, type]) -> M:
    """Give every plain or specialised block of ``model`` its form in ``forms`` (plain block -> form), else the plain one.

    Subclasses of the plain blocks that are not effnet's forms are left alone.
    """
    for m in model.modules():
        plain = m.plain_form() if isinstance(m, Specialised) else type(m)
        form = forms.get(plain, plain if isinstance(m, Specialised) else None)
        if form is not None and type(m) is not form:
            _leave_form(m)
            m.__class__ = form
    return model


def plain_copy(model: M) -> M:
    """A copy of ``model`` whose blocks all run the plain forward; parameters and buffers are shared, not copied.

    A copy because ``torch.jit.script`` writes the prepared submodules into their parents: the
    model itself keeps its forms.
    """
    shared = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    plain = copy.deepcopy(model, shared)
    for m in plain.modules():
        if isinstance(m, Specialised):
            _leave_form(m)
            m.__class__ = m.plain_form()
    return plain


def _leave_form(module: nn.Module) -> None:
    for name in getattr(module, "form_state", ()):
        module.__dict__.pop(name, None)
