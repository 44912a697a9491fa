"""`effnet embed` and the linear probe on real photos (skimage.data) with the real Lite0 weights."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from _train_utils import write_digits
from effnet import create_model
from effnet.cli import main
from effnet.data.transforms import eval_transform, load_image
from effnet.deploy.embed import embed_files, fit_linear_head, linear_probe

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


@pytest.fixture()
def photo_dir(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(PHOTOS):
        target = folder / "sub" if i == 3 else folder
        Image.fromarray(getattr(skdata, name)()).save(target / f"{i}_{name}.jpg")
    (folder / "2_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def test_embed_matches_the_models_pooled_features_in_file_order(photo_dir, tmp_path, capsys):
    out = tmp_path / "feats.npz"
    code = main(["embed", str(photo_dir), "--weights", "lite0", "--image-size", "96", "--batch-size", "2",
                 "--out", str(out), "--no-progress", "--threads", "1"])
    captured = capsys.readouterr()
    assert code == 1  # a file was skipped: the exit code says so
    assert captured.err.count("\n") == 1 and "skipped" in captured.err and "2_broken.jpg" in captured.err
    saved = np.load(out)
    expected_files = sorted(str(p) for p in photo_dir.rglob("*.jpg") if "broken" not in p.name)
    assert list(saved["files"]) == expected_files  # sorted, recursive, the broken one left out
    assert saved["features"].shape == (3 + 1, 1280) and saved["features"].dtype == np.float32
    net = create_model("lite0", weights="lite0", num_classes=0).eval()
    transform = eval_transform("lite0", resolution=96)
    with torch.no_grad():
        want = net(torch.stack([transform(load_image(f)) for f in expected_files])).numpy()
    np.testing.assert_allclose(saved["features"], want, rtol=1e-4, atol=1e-4)
    assert "4 images" in captured.out and "skipped 1 unreadable" in captured.out


def test_embed_never_overwrites_without_being_asked(photo_dir, tmp_path, capsys):
    out = tmp_path / "mine.npz"
    out.write_bytes(b"precious")
    args = ["embed", str(photo_dir / "0_astronaut.jpg"), "--image-size", "64", "--out", str(out), "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"precious"
    assert main([*args, "--overwrite"]) == 0
    assert np.load(out)["features"].shape == (1, 1280)


def test_embed_files_api_keeps_input_order(photo_dir):
    files = [photo_dir / "1_coffee.jpg", photo_dir / "0_astronaut.jpg"]
    emb = embed_files(files, "lite0", "lite0", image_size=64, batch_size=1, progress=False)
    assert emb.files == [str(f) for f in files] and emb.features.shape == (2, 1280) and emb.skipped == []


def test_embed_backend_onnxruntime_gives_the_eager_features(photo_dir, tmp_path):
    """--backend runs the headless backbone in ONNX Runtime, like predict's; the features agree with eager."""
    files = [photo_dir / "1_coffee.jpg", photo_dir / "0_astronaut.jpg"]
    eager = embed_files(files, "lite0", "lite0", image_size=64, batch_size=2, progress=False, workers=0)
    out = tmp_path / "ort.npz"
    assert main(["embed", *map(str, files), "--weights", "lite0", "--image-size", "64", "--backend", "onnxruntime",
                 "--out", str(out), "--no-progress", "--workers", "0"]) == 0
    saved = np.load(out)
    assert list(saved["files"]) == [str(f) for f in files]
    np.testing.assert_allclose(saved["features"], eager.features, rtol=1e-4, atol=1e-4)


def test_linear_head_fit_separates_real_features(tmp_path):
    """Digits through the real Lite0 features: the probe must beat chance by far on held-out images."""
    data = write_digits(tmp_path / "digits", classes=(0, 1, 7), per_class=12, size=32)
    result = linear_probe(data, "lite0", "lite0", image_size=64, batch_size=16, progress=False)
    assert (result.n_train, result.n_val) == (36, 36) and result.classes == ["0", "1", "7"]
    assert result.top1 >= 80.0 and result.train_top1 == 100.0


def test_fit_linear_head_recovers_a_linear_rule():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)).astype(np.float32) * 5 + 3
    y = (x @ rng.normal(size=(8, 3))).argmax(1)  # a linear rule on raw (unstandardised) features
    state = torch.random.get_rng_state()
    head, loss = fit_linear_head(x, y, 3, weight_decay=1e-4)
    assert torch.equal(torch.random.get_rng_state(), state)  # a probe inside other code shifts none of its draws
    pred = head(torch.from_numpy(x)).argmax(1).numpy()  # the standardisation is folded into the head
    assert (pred == y).mean() > 0.97 and loss < 0.3
