"""EfficientNet as a detection backbone: torchvision's FasterRCNN + FPN on it, DDP, FrozenBatchNorm2d."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.ops.misc import FrozenBatchNorm2d

import effnet
from effnet.backbone import Backbone, backbone_with_fpn


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """The usual detection recipe: every BatchNorm2d becomes torchvision's FrozenBatchNorm2d."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batch_norm(child)
    return module


def test_named_maps_out_channels_and_no_head():
    backbone = Backbone("b0")
    x = torch.randn(2, 3, 96, 128)
    maps = backbone(x)
    assert list(maps) == ["0", "1", "2", "3"] and backbone.out_channels == [24, 40, 112, 320]
    assert [tuple(m.shape) for m in maps.values()] == [(2, 24, 24, 32), (2, 40, 12, 16), (2, 112, 6, 8), (2, 320, 3, 4)]
    assert all(m.is_contiguous() for m in maps.values())
    assert maps["3"].view(2, -1).shape == (2, 320 * 12)  # standard layout: view works
    names = {n.split(".")[0] for n, _ in backbone.named_parameters()}
    assert names == {"stem", "stages"}  # no head conv, no classifier
    nhwc = Backbone("b0", channels_last=True)(x)
    assert all(m.is_contiguous(memory_format=torch.channels_last) for m in nhwc.values())


def test_backbone_keeps_the_weights_and_matches_the_full_model():
    model = effnet.create_model("lite0").eval()
    backbone = Backbone(model, out_indices=(2, 4)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        _, maps = model.forward_intermediates(x, indices=[2, 4])
        ours = backbone(x)
    assert all(torch.equal(a, b) for a, b in zip(ours.values(), maps, strict=True))
    with pytest.raises(TypeError, match="need a model name"):
        Backbone(model, weights="lite0")


def test_frozen_batch_norm_swap_keeps_working():
    backbone = freeze_batch_norm(Backbone("b0", out_indices=(3, 4)))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in backbone.modules())
    assert backbone.out_channels == [112, 320]
    model = freeze_batch_norm(effnet.create_model("b0"))
    assert model.feature_channels == [16, 24, 40, 112, 320]
    maps = backbone(torch.randn(1, 3, 64, 64))
    assert [m.shape[1] for m in maps.values()] == [112, 320]


def test_ddp_without_find_unused_parameters(tmp_path):
    """DDP's default (find_unused_parameters=False) fails on iteration 2 when a parameter gets no gradient."""
    import torch.distributed as dist

    class WholeModelMaps(nn.Module):  # the hand-made wrapper: the model's head and classifier stay unused
        def __init__(self) -> None:
            super().__init__()
            self.model = effnet.create_model("lite0", num_classes=0)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return dict(enumerate(self.model.forward_intermediates(x, indices=(1, 2), intermediates_only=True)))

    def train_steps(module: nn.Module) -> nn.Module:
        model = nn.parallel.DistributedDataParallel(module)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        for _ in range(3):
            loss = sum(m.mean() for m in model(torch.randn(2, 3, 64, 64)).values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return model

    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        model = train_steps(Backbone("lite0", out_indices=(1, 2)))
        assert all(p.grad is not None for p in model.parameters())
        with pytest.raises(RuntimeError, match="parameters that were not used"):
            train_steps(WholeModelMaps())
    finally:
        dist.destroy_process_group()


def test_faster_rcnn_with_fpn_trains_and_predicts():
    torch.manual_seed(0)
    backbone = backbone_with_fpn("b0", fpn_channels=64)
    assert backbone.out_channels == 64
    detector = FasterRCNN(backbone, num_classes=3, min_size=128, max_size=160,
                          rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=100,
                          rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50, box_batch_size_per_image=64)
    images = [torch.rand(3, 120, 150), torch.rand(3, 128, 128)]
    targets = [{"boxes": torch.tensor([[10.0, 20.0, 70.0, 90.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.tensor([[5.0, 5.0, 60.0, 40.0], [50.0, 60.0, 120.0, 120.0]]),
                "labels": torch.tensor([2, 1])}]
    optimizer = torch.optim.SGD(detector.parameters(), lr=0.01, momentum=0.9)
    detector.train()
    losses = detector(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    optimizer.zero_grad()
    total.backward()
    assert all(p.grad is not None for p in backbone.body.parameters())  # the whole backbone learns
    before = backbone.body.stem.conv.weight.detach().clone()
    optimizer.step()
    assert not torch.equal(before, backbone.body.stem.conv.weight)
    detector.eval()
    with torch.no_grad():
        detections = detector(images)
    assert len(detections) == 2
    for det in detections:
        assert set(det) == {"boxes", "labels", "scores"} and det["boxes"].shape[1] == 4
        assert det["boxes"].shape[0] <= 100
