"""Model assembly: stem -> MBConv stages -> head -> pool -> dropout -> classifier.

:class:`EfficientNet` also speaks timm's model interface (``forward_features`` /
``forward_head``, ``forward_intermediates``, ``feature_info``, ``reset_classifier``,
``pretrained_cfg`` ...), so timm's training scripts and data helpers take it as one of theirs.
"""

# No `from __future__ import annotations` here: FX copies string annotations of forward() into its
# generated code as unknown type names, and TorchScript then refuses the traced graph.
import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from effnet.arch import fastpath, memory_saving
from effnet.arch.config import STEM_STRIDE, ModelConfig, get_config
from effnet.arch.features import FeatureInfo, take_indices
from effnet.arch.layers import ConvBNAct, MBConv
from effnet.arch.modes import FormsFollowMode
from effnet.arch.preprocessing import paper_preprocessing, timm_cfg
from effnet.arch.scaling import (
    block_specs,
    feature_stage_indices,
    feature_strides,
    head_channels,
    stem_channels,
)


@torch.fx.wrap  # a leaf of FX graphs: its checks are Python control flow on the input's shape
def check_image_batch(x: torch.Tensor, in_chans: int) -> None:
    """Refuse anything but an (N, in_chans, H, W) batch, in one line naming the fix (skipped while traced or compiled)."""
    # Under torch.jit.is_scripting() TorchScript skips the block (an FX graph that keeps this call scripts).
    if not torch.jit.is_scripting():
        if torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return
        if x.dim() != 4 or x.shape[1] != in_chans:
            raise ValueError(
                f"expected an image batch of shape (N, {in_chans}, H, W), got {tuple(x.shape)}; "
                f"convert the images to {in_chans} channels or build the model with "
                f"in_chans={x.shape[1] if x.dim() == 4 else '...'}"
            )


#: Global pooling types (timm's names): average, max, or none ('' keeps the map, no flatten).
GLOBAL_POOLS = ("avg", "max", "")


def make_global_pool(pool_type: str) -> nn.Module:
    if pool_type not in GLOBAL_POOLS:
        raise ValueError(f"global_pool must be one of {GLOBAL_POOLS} ('' = no pooling), got {pool_type!r}")
    if not pool_type:
        return nn.Identity()
    pool = nn.AdaptiveAvgPool2d(1) if pool_type == "avg" else nn.AdaptiveMaxPool2d(1)
    return nn.Sequential(pool, nn.Flatten(1))


def feature_info(config: ModelConfig) -> FeatureInfo:
    """One entry per stride level (B0: the ends of paper stages 2, 3, 4, 6, 8 at strides 2..32).

    Computed from the configuration, so it holds whatever norm layers the model is given later
    (torchvision's ``FrozenBatchNorm2d`` swap, for one).
    """
    specs = block_specs(config)
    return FeatureInfo(
        dict(num_chs=specs[i][-1].out_channels, reduction=stride, module=f"stages.{i}", stage=i)
        for i, stride in zip(feature_stage_indices(config), feature_strides(config), strict=True)
    )


class EfficientNet(FormsFollowMode):
    """An EfficientNet built from a :class:`~effnet.arch.config.ModelConfig`.

    ``num_classes=0`` drops the classifier so ``forward`` returns the pooled features;
    ``global_pool=''`` also drops the pooling (``forward`` returns the last feature map).
    """

    __jit_unused_properties__ = ["feature_channels", "default_cfg"]

    def __init__(self, config: ModelConfig | str, num_classes: int = 1000, in_chans: int = 3,
                 global_pool: str = "avg") -> None:
        super().__init__()
        config = get_config(config)
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 returns pooled features), got {num_classes}")
        if in_chans < 1:
            raise ValueError(f"in_chans must be >= 1, got {in_chans}")
        self.config = config
        self.in_chans = in_chans
        norm = dict(padding=config.padding, bn_eps=config.bn_eps, bn_momentum=config.bn_momentum)
        self.stem = ConvBNAct(
            in_chans, stem_channels(config), 3, STEM_STRIDE, activation=config.activation, **norm
        )
        self.stages = nn.Sequential(
            *(
                nn.Sequential(*(MBConv(spec, activation=config.activation, **norm) for spec in stage))
                for stage in block_specs(config)
            )
        )
        last_channels = block_specs(config)[-1][-1].out_channels
        self.num_features = self.head_hidden_size = head_channels(config)
        self.head = ConvBNAct(last_channels, self.num_features, 1, activation=config.activation, **norm)
        self.global_pool = global_pool
        self.pool = make_global_pool(global_pool)
        self.drop_rate = config.dropout
        self.dropout = nn.Dropout(config.dropout)
        self.num_classes = num_classes
        self.classifier: nn.Module = self._make_classifier(num_classes)
        self.feature_info = feature_info(config)
        self._feature_stages: list[int] = [f["stage"] for f in self.feature_info]
        # The paper's preprocessing; effnet.factory.create_model(weights=...) puts the weights' own in place.
        self.pretrained_cfg = timm_cfg(config, paper_preprocessing(config), num_classes)
        self._init_weights()
        self.train()  # the blocks' training forms

    def _make_classifier(self, num_classes: int) -> nn.Module:
        if num_classes == 0:
            return nn.Identity()
        if not self.global_pool:
            raise ValueError("a classifier needs pooled features: global_pool='' works only with num_classes=0")
        fc = nn.Linear(self.num_features, num_classes)
        bound = 1.0 / math.sqrt(num_classes)
        nn.init.uniform_(fc.weight, -bound, bound)
        nn.init.zeros_(fc.bias)
        return fc

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def default_cfg(self) -> dict[str, Any]:
        """timm's older name for :attr:`pretrained_cfg`."""
        return self.pretrained_cfg

    @default_cfg.setter
    def default_cfg(self, cfg: dict[str, Any]) -> None:
        self.pretrained_cfg = cfg

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool | str = True, stages: Iterable[int] | None = None) -> None:
        """Recompute MBConv activations in the backward pass: ``"full"`` (= True) or ``"selective"``,
        in every stage or only in ``stages`` (indices of ``self.stages``).

        See :func:`effnet.arch.memory_saving.set_grad_checkpointing` for what each keeps.
        """
        memory_saving.set_grad_checkpointing(self, enable, stages)

    @torch.jit.ignore
    def set_memory_efficient(self, enable: bool = True) -> None:
        """Train with effnet's memory-efficient Swish / SE autograd functions (default) or plain autograd ops."""
        memory_saving.set_memory_efficient(self, enable)

    @torch.jit.ignore
    def set_fast_eval(self, enable: bool = True, matmul_max_rows: int | None = None) -> None:
        """The eval fast path (BatchNorm folded, small 1x1 convs as matmuls, in-place SE and residual):
        on by default in eval mode without autograd; see :mod:`effnet.arch.fastpath`."""
        fastpath.set_fast_eval(self, enable, matmul_max_rows)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups for timm's layer-wise learning-rate decay: stem, each block (or stage), head."""
        return dict(
            stem=r"^stem",
            blocks=[(r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.(\d+)", None), (r"^head", (99999,))],
        )

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Parameter names to keep out of weight decay beyond timm's own 1-D rule (none, as timm's EfficientNet)."""
        return set()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes`` (0 removes it);
        ``global_pool`` (``'avg'``, ``'max'``, ``''``) replaces the pooling too."""
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        if global_pool is not None:
            self.pool = make_global_pool(global_pool)
            self.global_pool = global_pool
        device = next(self.parameters()).device
        self.num_classes = num_classes
        self.classifier = self._make_classifier(num_classes).to(device)

    def _check_input(self, x: torch.Tensor) -> None:
        check_image_batch(x, self.in_chans)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (after the head conv), before pooling."""
        if not torch.jit.is_scripting():
            check_image_batch(x, self.in_chans)
        return self.head(self.stages(self.stem(x)))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, then (unless ``pre_logits``) dropout and classifier."""
        x = self.pool(features)
        if pre_logits:
            return x
        return self.classifier(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.jit.ignore
    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """timm's intermediates: the maps at ``indices`` of :attr:`feature_info` (``None`` all, an
        int the last n), and unless ``intermediates_only`` the final features as from
        :meth:`forward_features`. ``stop_early`` skips the stages after the last one asked for
        (the final features are then that stage's output). ``norm`` has nothing to apply here.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        self._check_input(x)
        taken, deepest = take_indices(len(self.feature_info), indices)
        taps = {self._feature_stages[i] for i in taken}
        stages = list(self.stages)
        if stop_early:
            stages = stages[: self._feature_stages[deepest] + 1]
        x = self.stem(x)
        intermediates = []
        for i, stage in enumerate(stages):
            x = stage(x)
            if i in taps:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        if len(stages) == len(self.stages):
            x = self.head(x)
        return x, intermediates

    @torch.jit.ignore
    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop what the intermediates at ``indices`` do not need (timm's rule): the stages after
        the deepest one, and the head conv when stages went or ``prune_norm`` / ``prune_head``;
        ``prune_head`` also removes pooling and classifier. Returns the kept indices."""
        taken, deepest = take_indices(len(self.feature_info), indices)
        last_stage = self._feature_stages[deepest]
        prune_end = prune_norm or prune_head or last_stage < len(self.stages) - 1
        self.stages = self.stages[: last_stage + 1]
        self.feature_info = FeatureInfo(self.feature_info[: deepest + 1])
        self._feature_stages = self._feature_stages[: deepest + 1]
        if prune_end:
            self.head = nn.Identity()
            self.num_features = self.head_hidden_size = self.feature_info[-1]["num_chs"]
            self.reset_classifier(0, "")
        return taken

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Five maps at strides 2, 4, 8, 16, 32 (ends of paper stages 2, 3, 4, 6, 8)."""
        return self.forward_intermediates(x, intermediates_only=True)

    @property
    def feature_channels(self) -> list[int]:
        return self.feature_info.channels()
