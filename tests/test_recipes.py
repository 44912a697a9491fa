"""Recipe selection: the paper's from scratch, the fine-tune recipe with pretrained weights, user flags win."""

import math

import pytest
import torch

from _train_utils import TINY, tiny_kwargs, write_digits
from effnet.training import TrainConfig, train
from effnet.training.optim import build_optimizer
from effnet.training.recipes import FINETUNE, PAPER, resolve
from effnet.training.schedule import Schedule, StepScheduler


def test_recipe_follows_weights_and_says_why():
    cfg, line = resolve(TrainConfig(weights="lite0", batch_size=32))
    assert cfg.recipe == "finetune" and line.startswith("recipe: finetune, because --weights lite0 is pretrained")
    assert "--recipe paper" in line
    assert (cfg.optimizer, cfg.ema, cfg.augment, cfg.crop_scale) == ("adamw", False, "none", FINETUNE.crop_scale)
    assert cfg.lr == pytest.approx(FINETUNE.lr_per_256 * 32 / 256) and cfg.warmup_steps == FINETUNE.warmup_steps
    assert cfg.backbone_lr_scale == FINETUNE.backbone_lr_scale and cfg.bn_momentum == FINETUNE.bn_momentum

    cfg, line = resolve(TrainConfig(batch_size=512))
    assert cfg.recipe == "paper" and line.startswith("recipe: paper, because no --weights were given")
    assert (cfg.optimizer, cfg.ema, cfg.ema_decay, cfg.augment, cfg.crop_scale, cfg.schedule) == (
        "rmsprop_tf", True, 0.9999, "randaugment", (0.08, 1.0), "step")
    assert cfg.lr == pytest.approx(0.032) and cfg.warmup_steps is None and cfg.warmup_epochs is None
    assert cfg.bn_momentum is None and cfg.dropout is None  # the model's own values

    cfg, line = resolve(TrainConfig(weights="lite0", recipe="paper"))
    assert cfg.recipe == "paper" and line.startswith("recipe: paper (--recipe paper)")


def test_explicit_values_win_over_the_recipe_and_are_named():
    cfg, line = resolve(TrainConfig(weights="lite0", lr=0.05, optimizer="sgd", ema=True, crop_scale=(0.2, 1.0),
                                    warmup_epochs=1.0))
    assert (cfg.lr, cfg.optimizer, cfg.ema, cfg.crop_scale) == (0.05, "sgd", True, (0.2, 1.0))
    assert cfg.warmup_epochs == 1.0 and cfg.warmup_steps is None  # epochs given: the recipe's steps dropped
    assert cfg.ema_decay == FINETUNE.ema_decay and cfg.weight_decay == FINETUNE.weight_decay
    assert line.endswith("your --lr, --warmup-epochs, --optimizer, --ema, --crop-scale kept")
    cfg, _ = resolve(TrainConfig(recipe="paper", ema=False, augment="none"))
    assert (cfg.ema, cfg.augment, cfg.optimizer) == (False, "none", PAPER.optimizer)
    with pytest.raises(ValueError, match="unknown recipe 'fast'; choose paper or finetune"):
        resolve(TrainConfig(recipe="fast"))


def test_backbone_trains_at_a_fraction_of_the_head_lr():
    from effnet import EfficientNet

    model = EfficientNet(TINY, num_classes=3)
    opt = build_optimizer(model, "adamw", 1e-2, 0.05, backbone_lr_scale=0.1)
    sched = StepScheduler(opt, Schedule(1e-2, 10, 2, kind="cosine", warmup_steps=4))
    by_name = {g["name"]: g for g in opt.param_groups}
    assert set(by_name) == {"head_decay", "head_no_decay", "backbone_decay", "backbone_no_decay"}
    head_ids = {id(p) for p in model.classifier.parameters()}
    assert {id(p) for g in ("head_decay", "head_no_decay") for p in by_name[g]["params"]} == head_ids
    for _ in range(6):
        sched.step()
    assert by_name["head_decay"]["lr"] == pytest.approx(sched.schedule.lr_at(6))
    assert by_name["backbone_decay"]["lr"] == pytest.approx(0.1 * sched.schedule.lr_at(6))
    assert by_name["backbone_no_decay"]["weight_decay"] == 0.0
    # warm-up in steps: 4 steps whatever the epoch length, capped at half a short run
    assert [round(Schedule(1.0, 10, 2, kind="cosine", warmup_steps=4).lr_at(s), 3) for s in range(4)] == [
        0.25, 0.5, 0.75, 1.0]
    assert Schedule(1.0, 3, 2, kind="cosine", warmup_steps=50).warmup_step_count() == 3


def test_train_prints_the_recipe_and_freezes_stages(tmp_path, capsys):
    from effnet.cli import main

    data = write_digits(tmp_path / "data")
    source = train(TrainConfig(**tiny_kwargs(data, tmp_path / "src", epochs=1)))
    code = main(["train", str(data), "--model", str(source.run_dir / "model_config.json"), "--weights",
                 str(source.weights_file), "--image-size", "16", "--epochs", "1", "--batch-size", "8",
                 "--workers", "0", "--out", str(tmp_path / "ft"), "--no-progress", "--threads", "1",
                 "--freeze-stages", "2"])
    assert code == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"recipe: finetune, because --weights {source.weights_file} is pretrained")
    code = main(["train", str(data), "--model", str(source.run_dir / "model_config.json"), "--image-size", "16",
                 "--epochs", "1", "--batch-size", "8", "--workers", "0", "--out", str(tmp_path / "scratch"),
                 "--no-progress", "--threads", "1", "--no-ema"])
    assert code == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("recipe: paper, because no --weights were given") and line.endswith("your --ema kept")


def test_freeze_stages_keeps_the_stem_and_early_stages(tmp_path):
    data = write_digits(tmp_path / "data")
    source = train(TrainConfig(**tiny_kwargs(data, tmp_path / "src", epochs=1)))
    result = train(TrainConfig(**tiny_kwargs(data, tmp_path / "ft", epochs=1, weights=str(source.weights_file),
                                             freeze_stages=2)))
    from safetensors.torch import load_file

    before, after = load_file(str(source.weights_file)), result.model.state_dict()
    frozen = [k for k in before if k.startswith(("stem.", "stages.0.", "stages.1."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # BN statistics included
    assert not torch.equal(before["stages.2.0.project.conv.weight"], after["stages.2.0.project.conv.weight"])
    with pytest.raises(ValueError, match="freeze_stages must be between 0 and 7"):
        train(TrainConfig(**tiny_kwargs(data, tmp_path / "bad", epochs=1, weights=str(source.weights_file),
                                        freeze_stages=9)))


def test_lite0_finetune_lowers_the_loss_in_the_first_epoch(tmp_path):
    """The failure the issue reports: one epoch of the paper's recipe left val loss far above ln(classes).

    A zero classifier on the pretrained features scores exactly ln(classes); the fine-tune default must
    end its first epoch below that, on real images (scikit-learn's digits) with the real Lite0 weights.
    """
    data = write_digits(tmp_path / "data", classes=(0, 1, 2, 3), per_class=24, size=32)
    cfg = TrainConfig(**{**tiny_kwargs(data, tmp_path / "ft", epochs=1, batch_size=8, image_size=64),
                         "model": "lite0", "weights": "lite0", "warmup_epochs": None, "augment": None,
                         # the fine-tune itself: on this few images the recipe's default is the probe's model
                         # (tested in test_finetune_head_init.py)
                         "freeze_backbone": False})
    with pytest.warns(UserWarning, match="classifier"):
        result = train(cfg)
    assert result.history[0]["val_loss"] < math.log(4)
    assert result.history[0]["train_loss"] < math.log(4) + 0.1  # with label smoothing, mean over the epoch
