"""`effnet eval` / `effnet predict` use the weights' own classes, model and image size: a trained run's
class names, ImageNet WordNet-id folders mapped to the standard indices, and a one-line refusal when the
folder's classes are not the weights' classes (it used to report 0% top-1)."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from skimage import data as skdata

from _train_utils import TINY, write_digits
from effnet.cli import main
from effnet.data.imagenet import imagenet_classes, wnid_index
from effnet.data.imagenet_wnids import WNIDS
from effnet.deploy.evaluate import evaluate_folder

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample"
# Real photos and the ImageNet class Lite0 gives each (checked by eye: a tabby-like cat, an espresso, a missile).
PHOTOS = {"n02123159": "chelsea", "n07920052": "coffee", "n03773504": "rocket"}


def test_wnid_list_is_the_standard_order():
    assert len(WNIDS) == 1000 and list(WNIDS) == sorted(WNIDS)
    assert WNIDS[0] == "n01440764" and imagenet_classes()[0] == "tench"
    assert imagenet_classes()[wnid_index()["n07920052"]] == "espresso"
    assert imagenet_classes()[wnid_index()["n02123045"]] == "tabby"


def _wnid_folder(root):
    for wnid, photo in PHOTOS.items():
        (root / wnid).mkdir(parents=True)
        Image.fromarray(getattr(skdata, photo)()).save(root / wnid / f"{photo}.png")
    return root


def test_wnid_subset_is_mapped_to_imagenet_indices(tmp_path):
    folder = _wnid_folder(tmp_path / "val")
    result = evaluate_folder(str(tmp_path), None, "lite0", batch_size=3, workers=0)
    # A plain ImageFolder numbering (0, 1, 2) would score 0% here.
    assert result["classes_matched_by"] == "ImageNet WordNet ids"
    assert result["images"] == 3 and result["top1"] == 100.0
    assert result["per_class"] == {wnid: 100.0 for wnid in PHOTOS}
    assert result["data"] == str(folder) and result["image_size"] == 224


def test_folder_of_other_classes_is_refused_in_one_line(tmp_path, capsys):
    for name, photo in (("cat", "chelsea"), ("coffee", "coffee")):
        (tmp_path / name).mkdir()
        Image.fromarray(getattr(skdata, photo)()).save(tmp_path / name / "a.png")
    assert main(["eval", str(tmp_path), "--weights", "lite0", "--workers", "0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "class folder(s) cat, coffee are not ImageNet-1k WordNet ids" in captured.err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny model trained by `effnet train` on digits 0-2 at 16 px."""
    root = tmp_path_factory.mktemp("trained")
    digits = write_digits(root / "digits")
    TINY.save(root / "tiny.json")
    out = root / "run"
    assert main(["train", str(digits), "--model", str(root / "tiny.json"), "--image-size", "16", "--epochs", "3",
                 "--batch-size", "8", "--workers", "0", "--out", str(out), "--no-progress", "--threads", "1",
                 "--lr", "0.05", "--no-ema"]) == 0
    return out, digits


def test_eval_takes_the_runs_classes_model_and_image_size(run, capsys):
    out, digits = run
    capsys.readouterr()
    assert main(["eval", str(digits), "--weights", str(out), "--workers", "0", "--json", "--per-class"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["image_size"] == 16  # not 224: the size the run trained at
    assert result["model"] == "tiny" and result["classes_matched_by"] == "class names"
    assert result["images"] == 24 and set(result["per_class"]) == {"0", "1", "2"}
    history = (out / "metrics.csv").read_text().splitlines()
    top1_column = history[0].split(",").index("val_top1")
    assert result["top1"] == pytest.approx(float(history[-1].split(",")[top1_column]))


def test_eval_of_a_subset_of_the_runs_classes_and_refusal_of_others(run, tmp_path, capsys):
    out, _ = run
    subset = write_digits(tmp_path / "subset", classes=(2, 0), splits=("",), start=30)
    result = evaluate_folder(str(subset), None, str(out / "model.safetensors"), batch_size=8, workers=0)
    assert set(result["per_class"]) == {"0", "2"} and result["images"] == 16
    other = write_digits(tmp_path / "other", classes=(0, 7), splits=("",))
    assert main(["eval", str(other), "--weights", str(out), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "class folder(s) the weights were not trained on: 7" in err


def test_predict_uses_the_runs_class_names(run, capsys):
    out, digits = run
    for weights in (out, out / "model.safetensors"):
        capsys.readouterr()
        assert main(["predict", str(digits / "val" / "1"), "--weights", str(weights), "--top", "3", "--json"]) == 0
        captured = capsys.readouterr()
        assert captured.err == ""  # no "classifier keeps its fresh initialisation" warning
        rows = [json.loads(line) for line in captured.out.splitlines()]
        assert len(rows) == 8
        assert all({p["class"] for p in r["top"]} == {"0", "1", "2"} for r in rows)
        assert all(p["class"] == str(p["index"]) for r in rows for p in r["top"])


def test_a_run_saved_before_the_metadata_uses_the_files_beside_it(run, tmp_path, capsys):
    """Runs written before the weights carried their config: model_config.json / classes.json / image_size."""
    from safetensors.torch import load_file, save_file

    out, digits = run
    old = tmp_path / "old-run"
    old.mkdir()
    for name in ("model_config.json", "classes.json"):
        (old / name).write_text((out / name).read_text())
    save_file(load_file(out / "model.safetensors"), old / "model.safetensors",
              metadata={"format": "effnet", "classes": json.dumps(["0", "1", "2"]), "image_size": "16"})
    new = evaluate_folder(str(digits), None, str(out), workers=0)
    was = evaluate_folder(str(digits), None, str(old), workers=0)
    assert was["image_size"] == 16 and was["model"] == "tiny"
    assert (was["top1"], was["loss"]) == (new["top1"], new["loss"])


def test_predict_refuses_a_model_that_does_not_fit_the_runs_weights(run, capsys):
    out, digits = run
    assert main(["predict", str(digits / "val" / "1"), "--weights", str(out), "--model", "b0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "Traceback" not in captured.err


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="needs ../shared/data/imagenet-sample (not part of the repo)")
def test_lite0_on_the_imagenet_sample(one_thread):
    torch.manual_seed(0)
    result = evaluate_folder(str(SAMPLE), None, "lite0", batch_size=50, workers=0)
    print(f"Lite0 on the 500-class ImageNet sample: top-1 {result['top1']:.1f}%, top-5 {result['top5']:.1f}%")
    assert result["images"] == 500 and result["classes_matched_by"] == "ImageNet WordNet ids"
    assert result["top1"] > 80.0  # 88.4% measured; a wrong class map scores about 0.1%
