"""`--backend` of effnet predict / eval: every way of running the model gives the eager model's answers."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from effnet.cli import main
from effnet.deploy.backends import with_backend

pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    import skimage.data as skdata

    root = tmp_path_factory.mktemp("photos")
    for name, wnid in {"chelsea": "n02123045", "coffee": "n07920052", "rocket": "n03773504"}.items():
        (root / wnid).mkdir()
        Image.fromarray(getattr(skdata, name)()).convert("RGB").save(root / wnid / f"{name}.png")
    return root


def _predictions(capsys, folder, backend):
    assert main(["predict", str(folder), "--weights", "lite0", "--top", "3", "--json", "--backend", backend]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_predict_backends_agree_with_eager_on_real_photos(photo_folder, capsys):
    eager = _predictions(capsys, photo_folder, "eager")
    assert [p["top"][0]["class"] for p in eager] == ["tiger cat", "missile", "espresso"]
    for backend in ("channels_last", "onnxruntime"):
        got = _predictions(capsys, photo_folder, backend)
        assert [[t["index"] for t in p["top"]] for p in got] == [[t["index"] for t in p["top"]] for p in eager]
        for g, e in zip(got, eager):
            assert g["top"][0]["probability"] == pytest.approx(e["top"][0]["probability"], abs=1e-4)


def test_eval_backend_scores_like_eager(photo_folder, capsys):
    scores = {}
    for backend in ("eager", "onnxruntime"):
        assert main(["eval", str(photo_folder), "--weights", "lite0", "--json", "--workers", "0",
                     "--backend", backend]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["backend"] == backend
        scores[backend] = (result["top1"], result["top5"], result["images"])
    assert scores["eager"] == pytest.approx((200 / 3, 100.0, 3))  # Lite0 calls the tabby a tiger cat
    assert scores["onnxruntime"] == pytest.approx(scores["eager"])


def test_openvino_backend_predicts_like_eager(photo_folder, capsys):
    pytest.importorskip("openvino")
    eager = _predictions(capsys, photo_folder, "eager")
    got = _predictions(capsys, photo_folder, "openvino")
    assert [[t["index"] for t in p["top"]] for p in got] == [[t["index"] for t in p["top"]] for p in eager]
    for g, e in zip(got, eager):
        assert g["top"][0]["probability"] == pytest.approx(e["top"][0]["probability"], abs=1e-4)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend 'tflite'"):
        with_backend(torch.nn.Linear(2, 2), "tflite")
