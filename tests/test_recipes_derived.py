"""Fine-tune values the recipe derives from what it can see (issue 21): pure rules, no training."""

import pytest

from effnet.training import TrainConfig
from effnet.training.recipes import FINETUNE, LINEAR_PROBE_BELOW, fine_tune_batch_size, resolve


@pytest.mark.parametrize(("n_images", "batch"), [(300, 8), (100, 8), (1000, 16), (2000, 32), (2048, 64),
                                                  (3000, 64), (50000, 64)])
def test_batch_size_gives_an_epoch_at_least_32_steps(n_images, batch):
    assert fine_tune_batch_size(n_images) == batch
    assert n_images // batch >= 32 or batch == 8


def _folder(root, classes=2, per_class=150):
    """Empty image files under train/ and val/; ``per_class``: one count for every class, or a count per class."""
    counts = per_class if isinstance(per_class, tuple) else (per_class,) * classes
    for split in ("train", "val"):
        for c, n in enumerate(counts):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(n if split == "train" else 10):
                (folder / f"{i}.jpg").touch()  # counting looks at names only
    return root


def test_small_data_gets_a_smaller_batch_and_the_line_says_why(tmp_path):
    data = _folder(tmp_path)
    cfg, line = resolve(TrainConfig(data=str(data), weights="lite0"))
    assert cfg.batch_size == 8 and cfg.lr == pytest.approx(FINETUNE.lr_per_256 * 8 / 256)
    assert "batch 8, because 300 training images at 64 would make 4 steps an epoch (wanted >= 32)" in line

    cfg, line = resolve(TrainConfig(data=str(data), weights="lite0", batch_size=64))  # explicit wins
    assert cfg.batch_size == 64 and "derived: batch" not in line
    cfg, line = resolve(TrainConfig(data=str(data)))  # from scratch: the paper's batch
    assert cfg.batch_size == 64 and "derived:" not in line
    cfg, _ = resolve(TrainConfig(data=str(tmp_path / "missing"), weights="lite0"))  # the run reports the folder
    assert cfg.batch_size == 64


def test_below_the_weights_resolution_val_is_scored_on_the_whole_image(tmp_path):
    data = str(_images(tmp_path, LINEAR_PROBE_BELOW))  # enough images to fine-tune (fewer: the probe's view)
    cfg, line = resolve(TrainConfig(data=data, weights="lite0", image_size=32, batch_size=32))
    assert cfg.eval_crop_pct == 1.0
    assert "val scored on the whole image, because at 32 px the official centre crop would keep 50% of each side" in line
    assert resolve(TrainConfig(data=data, weights="lite0", image_size=224, batch_size=32))[0].eval_crop_pct is None
    assert resolve(TrainConfig(data=data, weights="lite0", batch_size=32))[0].eval_crop_pct is None  # the weights' own size
    assert resolve(TrainConfig(data=data, weights="lite0", image_size=32, batch_size=32, eval_crop_pct=0.5))[0].eval_crop_pct == 0.5
    assert resolve(TrainConfig(image_size=32, batch_size=32))[0].eval_crop_pct is None  # the paper recipe: unchanged


def test_one_epoch_trains_on_whole_images():
    cfg, line = resolve(TrainConfig(weights="lite0", epochs=1, batch_size=32))
    assert cfg.crop_scale == (1.0, 1.0) and "whole images, no random crops, because one epoch" in line
    assert resolve(TrainConfig(weights="lite0", epochs=3, batch_size=32))[0].crop_scale == FINETUNE.crop_scale
    assert resolve(TrainConfig(weights="lite0", epochs=1, max_steps=10, batch_size=32))[0].crop_scale == FINETUNE.crop_scale
    assert resolve(TrainConfig(weights="lite0", epochs=1, batch_size=32, crop_scale=(0.5, 1.0)))[0].crop_scale == (0.5, 1.0)


def test_adamw_rate_stops_growing_with_the_batch_above_32():
    cfg, line = resolve(TrainConfig(weights="lite0", batch_size=64))
    assert cfg.lr == pytest.approx(3e-3)
    assert "lr 0.003, because AdamW's step does not grow with the batch (0.024/256 x 64 would be 0.006)" in line
    for batch in (8, 32):  # at and below 32: linear, as measured on the subsets
        cfg, line = resolve(TrainConfig(weights="lite0", batch_size=batch))
        assert cfg.lr == pytest.approx(FINETUNE.lr_per_256 * batch / 256) and "lr 0" not in line
    assert resolve(TrainConfig(weights="lite0", batch_size=64, lr=6e-3))[0].lr == 6e-3  # explicit wins
    assert resolve(TrainConfig(batch_size=512))[0].lr == pytest.approx(0.032)  # the paper recipe: linear


def test_the_fine_tune_starts_its_new_head_at_zero_unless_asked_to_fit_it_by_probe(tmp_path):
    data = str(_images(tmp_path, LINEAR_PROBE_BELOW))  # fewer images: the head is the probe's (tests below)
    # LP-FT lost on the small set it was meant for (docs/transfer.md, issue 21): the default stays a zero head.
    cfg, line = resolve(TrainConfig(data=data, weights="lite0", batch_size=32))
    assert cfg.head_init == "random" and cfg.zero_head
    assert "the new head not fitted by probe first (LP-FT scored 4 points lower on 300 images; --head-init probe)" in line
    cfg, line = resolve(TrainConfig(data=data, weights="lite0", batch_size=32, head_init="probe"))
    assert cfg.head_init == "probe" and line.endswith("your --head-init kept")
    assert resolve(TrainConfig(batch_size=32))[0].head_init is None  # from scratch: nothing to probe
    with pytest.raises(ValueError, match="--head-init probe needs pretrained --weights"):
        TrainConfig(head_init="probe")
    with pytest.raises(ValueError, match="head_init must be one of probe, random"):
        TrainConfig(weights="lite0", head_init="linear")


def _images(root, n):
    """A folder of ``n`` training images in two classes."""
    return _folder(root, per_class=(n // 2, n - n // 2))


def test_few_images_give_the_probes_model_and_the_line_says_why(tmp_path):
    n = LINEAR_PROBE_BELOW - 1
    data = _images(tmp_path, n)
    cfg, line = resolve(TrainConfig(data=str(data), weights="lite0", image_size=64, epochs=2))
    assert cfg.freeze_backbone and cfg.head_init == "probe" and cfg.label_smoothing == 0.0
    assert cfg.eval_crop_pct is None  # the probe's view, the official centre crop, not the derived whole image
    assert (f"backbone kept as pretrained (BN on ImageNet statistics) and the head fitted by the probe, val on the "
            f"official centre crop, no label smoothing, as `effnet probe` does, because {n} training images < "
            f"{LINEAR_PROBE_BELOW} (a fine-tune of 1-3 epochs trailed the probe on every set of 300-2,000 images measured") in line
    assert "val scored on the whole image" not in line
    cfg, line = resolve(TrainConfig(data=str(data), weights="lite0", label_smoothing=0.1, eval_crop_pct=0.5))
    assert cfg.freeze_backbone and (cfg.label_smoothing, cfg.eval_crop_pct) == (0.1, 0.5)  # given values kept
    assert "the head fitted by the probe, as `effnet probe` does" in line


def test_from_the_threshold_up_the_backbone_is_fine_tuned(tmp_path):
    cfg, line = resolve(TrainConfig(data=str(_images(tmp_path, LINEAR_PROBE_BELOW)), weights="lite0", image_size=64, epochs=2))
    assert cfg.freeze_backbone is False and cfg.head_init == "random" and cfg.label_smoothing == 0.1
    assert cfg.eval_crop_pct == 1.0 and "backbone kept as pretrained" not in line


@pytest.mark.parametrize("flag", [{"head_init": "random"}, {"head_init": "probe"}, {"freeze_backbone": False},
                                  {"freeze_stages": 3}, {"backbone_lr_scale": 0.5}])
def test_a_flag_about_the_backbone_wins_over_the_derived_probe(tmp_path, flag):
    data = _folder(tmp_path)  # 300 images
    cfg, line = resolve(TrainConfig(data=str(data), weights="lite0", image_size=64, **flag))
    assert "backbone kept as pretrained" not in line and cfg.freeze_backbone is False and cfg.label_smoothing == 0.1
    assert cfg.head_init == flag.get("head_init", "random") and cfg.eval_crop_pct == 1.0
    cfg, line = resolve(TrainConfig(data=str(data), weights="lite0", recipe="paper"))  # the paper's: no probe
    assert cfg.freeze_backbone is False and "backbone kept as pretrained" not in line
