"""A trained model travels intact (issue 22): fine-tune -> export ONNX and ExecuTorch -> predict and eval
with the exported files give the run's own classes and the run's own top-5.

One module fixture fine-tunes the real Lite0 weights on two classes of real photos (one step at
64 px) and exports it once per format; every test shares it (ExecuTorch lowering takes a while).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from effnet.cli import main
from effnet.deploy.artifacts import read_metadata


def _write_photos(root: Path) -> None:
    """root/{train,val}/{cat,coffee}/*.jpg: crops of scikit-image's real photos of a cat and a cup of coffee."""
    from skimage import data

    for name, pixels in (("cat", data.chelsea()), ("coffee", data.coffee())):
        photo = Image.fromarray(pixels)
        w, h = photo.size
        boxes = [(0, 0, w, h), (0, 0, w * 3 // 4, h), (w // 4, 0, w, h), (0, h // 4, w, h),
                 (w // 8, h // 8, w * 7 // 8, h * 7 // 8), (0, 0, w * 2 // 3, h * 2 // 3)]
        for i, box in enumerate(boxes):
            split = "train" if i < 4 else "val"
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            photo.crop(box).resize((96, 72)).save(folder / f"{name}{i}.jpg")


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ship")
    _write_photos(root / "photos")
    run, exports = root / "run", root / "exports"
    exports.mkdir()
    assert main(["train", str(root / "photos"), "--model", "lite0", "--weights", "lite0", "--image-size", "64",
                 "--epochs", "1", "--max-steps", "1", "--batch-size", "8", "--no-ema", "--workers", "0",
                 "--out", str(run), "--no-progress", "--threads", "1"]) == 0
    assert main(["export", "--weights", str(run), "-o", str(exports)]) == 0  # a folder: FOLDER/MODEL.onnx
    assert main(["export", "--weights", str(run / "model.safetensors"), "--format", "executorch",
                 "-o", str(exports / "model.pte")]) == 0
    return {"run": run, "photos": root / "photos", "onnx": exports / "lite0.onnx", "pte": exports / "model.pte"}


def _predict(capsys: pytest.CaptureFixture, *argv: str) -> list[dict]:
    capsys.readouterr()
    assert main(["predict", *argv, "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_exported_files_carry_the_runs_classes_and_preprocessing(shipped):
    from effnet import __version__
    from effnet.deploy.model_spec import model_spec

    run = model_spec(str(shipped["run"]))
    for fmt in ("onnx", "pte"):
        meta = read_metadata(shipped[fmt])
        assert json.loads(meta["classes"]) == ["cat", "coffee"] and meta["classes_source"] == "weights"
        assert json.loads(meta["input_size"]) == [64, 64] and meta["model"] == "lite0"
        assert tuple(json.loads(meta["mean"])) == run.preprocessing.mean
        assert tuple(json.loads(meta["std"])) == run.preprocessing.std
        assert json.loads(meta["crop_pct"]) == run.preprocessing.crop_pct
        assert meta["interpolation"] == run.preprocessing.interpolation and meta["effnet_version"] == __version__


def test_onnx_export_takes_any_batch(shipped):
    from effnet.deploy.export import onnx_session

    batch, *chw = onnx_session(shipped["onnx"]).get_inputs()[0].shape
    assert isinstance(batch, str) and chw == [3, 64, 64]


def test_predict_with_exported_files_gives_the_runs_top5(shipped, capsys):
    """The issue's "done when": `effnet predict model.onnx photo.jpg` = `effnet predict --weights RUN photo.jpg`."""
    images = str(shipped["photos"] / "val")
    expected = _predict(capsys, images, "--weights", str(shipped["run"]))
    assert len(expected) == 4
    for fmt in ("onnx", "pte"):
        got = _predict(capsys, str(shipped[fmt]), images)  # the exported file first, as the weights
        assert [r["image"] for r in got] == [r["image"] for r in expected]
        for g, e in zip(got, expected):
            assert [p["class"] for p in g["top"]] == [p["class"] for p in e["top"]], fmt
            for gp, ep in zip(g["top"], e["top"]):
                assert gp["probability"] == pytest.approx(ep["probability"], abs=1e-4), fmt
    capsys.readouterr()
    assert main(["predict", str(shipped["onnx"]), images]) == 0
    printed = capsys.readouterr().out
    assert printed.count("cat (") == 4 and printed.count("coffee (") == 4  # the run's names, not "class 0"


def test_eval_with_exported_files_equals_the_run(shipped, capsys):
    def top1(weights: Path) -> float:
        capsys.readouterr()
        assert main(["eval", str(shipped["photos"]), "--weights", str(weights), "--workers", "0", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["classes_matched_by"] == "class names" and result["image_size"] == 64
        return result["top1"]

    assert top1(shipped["onnx"]) == top1(shipped["pte"]) == top1(shipped["run"])


def test_export_refuses_an_existing_file_and_flags_that_contradict_the_run(shipped, capsys):
    folder = shipped["onnx"].parent
    before = shipped["onnx"].read_bytes()
    capsys.readouterr()
    assert main(["export", "--weights", str(shipped["run"]), "-o", str(folder)]) == 2
    assert f"{shipped['onnx']} already exists; pass --overwrite" in capsys.readouterr().err
    assert shipped["onnx"].read_bytes() == before
    assert main(["predict", str(shipped["onnx"]), str(shipped["photos"]), "--backend", "compile"]) == 2
    assert "drop --backend" in capsys.readouterr().err


def test_the_serving_pipeline_loads_exported_files(shipped):
    from effnet.deploy.pipeline import load_classifier
    from effnet.deploy.predict import expand_paths

    images = expand_paths([shipped["photos"] / "val"])
    run = load_classifier(None, str(shipped["run"]))
    batch = torch.stack([run.preprocess(Image.open(p)) for p in images])
    expected = run.classify_batch(batch)
    for fmt in ("onnx", "pte"):
        exported = load_classifier(None, str(shipped[fmt]))
        assert exported.classes == ["cat", "coffee"] and exported.image_size == 64
        for got, want in zip(exported.classify_batch(batch), expected):
            assert [p.label for p in got] == [p.label for p in want]
            assert [p.score for p in got] == pytest.approx([p.score for p in want], abs=1e-4)
