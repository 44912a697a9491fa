"""`effnet bench --accuracy DATA`: every path scored on real labelled photos in WordNet-id folders."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from effnet.bench.accuracy import imagenet_files, load_labelled, score
from effnet.cli import main

pytest.importorskip("skimage")

# Real photos bundled with scikit-image, filed under the ImageNet class a person would give them.
PHOTOS = {"chelsea": "n02123045", "coffee": "n07920052", "rocket": "n03773504"}  # tabby, espresso, missile


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory):
    import skimage.data as skdata

    root = tmp_path_factory.mktemp("imagenet")
    for name, wnid in PHOTOS.items():
        (root / wnid).mkdir()
        Image.fromarray(getattr(skdata, name)()).convert("RGB").save(root / wnid / f"{name}.jpg", quality=95)
    return root


def test_wnid_folders_get_the_standard_class_indices(labelled_folder, tmp_path):
    files = imagenet_files(labelled_folder)
    assert [label for _, label in files] == [281, 657, 967]  # tabby, missile, espresso in wnid order
    (tmp_path / "cats").mkdir()
    with pytest.raises(ValueError, match="not ImageNet-1k WordNet ids"):
        imagenet_files(tmp_path)


def test_calibration_images_are_set_aside_evenly(labelled_folder):
    data = load_labelled(labelled_folder, lambda im: torch.tensor(im.size, dtype=torch.float32), calibration=1)
    assert len(data.calibration) == 1 and data.labels.tolist() == [657, 967]
    with pytest.raises(ValueError, match="--calibration 3"):
        load_labelled(labelled_folder, lambda im: torch.zeros(1), calibration=3)


def test_score_counts_top1_top5_and_agreement():
    down, up = torch.arange(7.0, 0, -1), torch.arange(1.0, 8)
    logits = torch.stack([down, down, up])  # top-1: 0, 0, 6; image 2's top 5 are 6..2
    fp32 = torch.stack([down, down, torch.eye(7)[2]])  # fp32's top-1: 0, 0, 2
    got = score(logits, torch.tensor([0, 6, 2]), fp32_logits=fp32)
    assert (got.top1, got.top5, got.agreement, got.images) == (pytest.approx(100 / 3), pytest.approx(200 / 3),
                                                               pytest.approx(200 / 3), 3)


def test_bench_scores_real_lite0_on_real_photos(labelled_folder, capsys):
    from effnet import create_model
    from effnet.data.transforms import eval_transform, load_image

    args = ["bench", "--model", "lite0", "--backend", "eager,onnxruntime", "--compare", "none", "--batch", "2",
            "--accuracy", str(labelled_folder), "--calibration", "0", "--rounds", "1", "--iters", "1",
            "--no-latency", "--memory-in-process", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    scores = {row["backend"]: row["accuracy"] for row in result["rows"]}
    # The reference: the real Lite0 weights run here on the same photos, scored against the human labels.
    model = create_model("lite0", weights="lite0").eval()
    tf = eval_transform("lite0")
    files = imagenet_files(labelled_folder)
    with torch.no_grad():
        logits = model(torch.stack([tf(load_image(f)) for f, _ in files]))
    labels = torch.tensor([label for _, label in files])
    top1 = 100 * float((logits.argmax(1) == labels).float().mean())
    assert top1 == pytest.approx(200 / 3)  # the cat is a 'tiger cat' to Lite0, not a tabby
    for backend in ("eager", "onnxruntime"):
        assert scores[backend]["top1"] == pytest.approx(top1)
        assert scores[backend]["top5"] == pytest.approx(100.0)
        assert scores[backend]["agreement"] == pytest.approx(100.0)
        assert scores[backend]["images"] == 3
    assert result["machine"]["accuracy_data"]["calibration_images"] == 0
