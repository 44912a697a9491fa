"""The one inference pipeline (effnet.deploy.pipeline): real photos through the real Lite0 weights, in batches
decoded by worker processes, bad files reported in place, input order kept."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from skimage import data

from _images import bomb_png
from effnet.data.transforms import eval_transform
from effnet.deploy.pipeline import image_batches, load_classifier
from effnet.deploy.predict import Prediction, classify

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")
CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.fixture(scope="module")
def lite0():
    return load_classifier(None, "lite0")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Four real photos as JPEGs, a text file posing as a JPEG and a decompression bomb, in a known order."""
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for i, name in enumerate(PHOTOS):
        paths.append(folder / f"{i}_{name}.jpg")
        Image.fromarray(getattr(data, name)()).save(paths[-1])
    (folder / "9_notes.jpg").write_text("not an image")
    bomb_png(folder / "8_bomb.png")
    return [paths[0], folder / "9_notes.jpg", paths[1], paths[2], folder / "8_bomb.png", paths[3]]


def test_classifier_knows_its_weights(lite0):
    assert (lite0.name, lite0.image_size, lite0.backend, len(lite0.classes)) == ("lite0", 224, "eager", 1000)
    assert lite0.classes[967] == "espresso"
    x = lite0.preprocess(Image.fromarray(data.coffee()).convert("L"))  # any mode: made RGB first
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    top = lite0.classify_batch(x[None], topk=3)
    assert len(top) == 1 and len(top[0]) == 3 and isinstance(top[0][0], Prediction)
    assert top[0][0].label == "espresso" and top[0][0].index == 967 and 0.5 < top[0][0].score <= 1


def test_batches_keep_order_and_report_bad_files(lite0, photos):
    batches = list(image_batches(photos, lite0, batch_size=4, workers=2))
    assert [b.positions for b in batches] == [[0, 2, 3], [5]]
    failed = dict(f for b in batches for f in b.failed)
    assert set(failed) == {1, 4}
    assert "9_notes.jpg: not a readable image" in failed[1]
    assert "8_bomb.png: 20000x20000 is 400,000,000 pixels, over the limit" in failed[4]
    tops = [p[0].label for b in batches for p in lite0.classify_batch(b.images, topk=1)]
    assert tops[0] in CATS and tops[1] == "espresso" and tops[2] in {"missile", "projectile"}


def test_batched_equals_one_at_a_time(lite0, photos):
    """Batch of 4 in worker processes == the old batch-1 path in the main thread, to float rounding."""
    good = [p for p in photos if p.suffix == ".jpg" and "notes" not in p.name]
    batch = next(iter(image_batches(good, lite0, batch_size=8, workers=0)))
    batched = lite0.classify_batch(batch.images, topk=5)
    single = [classify(lite0.model, [Image.open(p)], eval_transform("lite0"), top=5)[0] for p in good]
    for b, s in zip(batched, single):
        assert [p.index for p in b] == [p.index for p in s]
        assert [p.score for p in b] == pytest.approx([p.score for p in s], abs=1e-5)
