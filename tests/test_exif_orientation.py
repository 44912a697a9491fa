"""Photos as cameras store them: the EXIF orientation tag is applied wherever effnet reads an image.

A real photo (scikit-image's chelsea, a tabby) is stored with each orientation tag 1-8, its pixels
turned the way a camera would have stored them (EXIF 2.32, tag 0x0112: how to turn the stored rows
to show the photo upright). Every file must load upright and be classified like the upright photo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ORIENTATION = 0x0112

# Stored pixels for each tag, from the upright array (numpy only, independent of PIL's own table):
# 6 = "rotate 90 degrees clockwise to view", so the camera stored it turned counter-clockwise, etc.
STORED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # upside down
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, 1),  # turned 90 degrees counter-clockwise
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),  # mirrored along the anti-diagonal
    8: lambda a: np.rot90(a, -1),  # turned 90 degrees clockwise
}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, dict[int, Path]]:
    from skimage import data

    upright = data.chelsea()
    folder = tmp_path_factory.mktemp("exif")
    paths = {}
    for tag, turn in STORED.items():
        exif = Image.Exif()
        exif[ORIENTATION] = tag
        paths[tag] = folder / f"chelsea-orientation-{tag}.jpg"
        Image.fromarray(np.ascontiguousarray(turn(upright))).save(paths[tag], quality=100, subsampling=0, exif=exif)
    return upright, paths


def test_every_orientation_loads_upright(photos):
    from effnet.data.transforms import load_image

    upright, paths = photos
    for tag, path in paths.items():
        with Image.open(path) as raw:
            assert raw.getexif()[ORIENTATION] == tag
        image = np.asarray(load_image(path), dtype=np.float32)
        assert image.shape == upright.shape, tag
        assert np.abs(image - upright).mean() < 3, tag  # JPEG noise only; a wrong turn differs by tens


def test_every_orientation_classified_as_the_upright_photo(photos):
    """Through predict's file reader (train, eval, embed and calibration use the same ``load_image``)."""
    import effnet
    from effnet.deploy.pipeline import load_classifier, predict_files
    from effnet.deploy.predict import classify

    upright, paths = photos
    classifier = load_classifier(None, "lite0")
    model = classifier.model
    transform = effnet.eval_transform("lite0")
    expected = classify(model, [Image.fromarray(upright)], transform, top=1)[0][0]
    assert expected.label in ("tabby", "tiger cat")  # the photo is a tabby; Lite0 says tiger cat, 39%
    results = list(predict_files(classifier, [paths[tag] for tag in sorted(paths)], top=1, workers=0))
    assert all(error is None for _, _, error in results)
    assert [preds[0].label for _, preds, _ in results] == [expected.label] * 8
    with Image.open(paths[6]) as raw:  # the stored pixels alone are not the upright photo
        assert raw.size == (upright.shape[0], upright.shape[1])


def test_training_folders_read_upright(photos):
    from effnet.data.folders import ImageFiles

    upright, paths = photos
    images = ImageFiles([(str(paths[tag]), 0) for tag in sorted(paths)], transform=np.asarray)
    for i in range(len(paths)):
        image, label, error = images[i]
        assert error == "" and label == 0
        assert image.shape == upright.shape


def test_the_server_decodes_uploads_upright(photos):
    from effnet.serve.limits import decode_image

    upright, paths = photos
    for tag in (3, 6, 8):
        image = np.asarray(decode_image(paths[tag].read_bytes()), dtype=np.float32)
        assert image.shape == upright.shape and np.abs(image - upright).mean() < 3, tag
