"""LP-FT's first step (Kumar et al. 2022, "Fine-tuning can distort pretrained features"): fit the new
classifier on frozen features before fine-tuning, so the backbone's first steps follow a good head's
gradients instead of a zero head's.

The fit is `effnet probe`'s own (:func:`effnet.deploy.embed.fit_linear_head`): features computed once in
eval mode without augmentation, then full-batch L-BFGS on standardised features. The images are the run's
training split seen as its val split is (the run's eval transform), so the head is fitted on the view the
model is scored on.

As LP-FT, not the fine-tune recipe's default: on 300 images of two classes it scored 4 points below the zero
head (docs/transfer.md, issue 21); ``effnet train --head-init probe`` asks for it. Below
``recipes.LINEAR_PROBE_BELOW`` training images the recipe uses it with the backbone frozen instead: `effnet probe`'s
model, which a fine-tune of that few images did not reach.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

EMBED_BATCH = 64  # images per forward pass while embedding (eval mode: the features do not depend on it)


class PooledFeatures(nn.Module):
    """The model up to its pooled features (no dropout, no classifier), for :func:`embed_samples`."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.num_features = model.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


def fit_head_by_probe(model: nn.Module, samples: list[tuple[str, int]], transform: Any,  # noqa: ANN401
                      workers: int = 0, progress: bool = False, label_smoothing: float = 0.0) -> int:
    """Replace ``model.classifier`` by a linear probe fitted on ``samples``; returns how many images it saw.

    The global RNG is left as it was (the embedding's DataLoader would draw a seed from it), so a run with
    the fitted head draws the same dropout masks as one without, and a resumed run the same as a fresh one.
    """
    from effnet.deploy.embed import embed_samples, fit_linear_head

    was_training = model.training
    with torch.random.fork_rng(devices=[]):  # the embedding's DataLoader draws a seed
        model.eval()
        try:
            emb = embed_samples(PooledFeatures(model), samples, transform, EMBED_BATCH, progress,
                                "fitting the head (probe)", workers)
        finally:
            model.train(was_training)
        if len(emb.files) == 0:
            raise ValueError("no readable training image to fit the head on; pass --head-init random")
        head, _ = fit_linear_head(emb.features, emb.labels, model.classifier.out_features,
                                  label_smoothing=label_smoothing)
    with torch.no_grad():
        model.classifier.weight.copy_(head.weight)
        model.classifier.bias.copy_(head.bias)
    return len(emb.files)
