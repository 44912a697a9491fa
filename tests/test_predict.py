"""Real photos through the real Lite0 weights; the `effnet predict` command."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from skimage import data

import effnet
from effnet.cli import main
from effnet.data.transforms import eval_transform
from effnet.deploy.predict import classify, demo_photos

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}  # ImageNet classes 281-285


@pytest.fixture(scope="module")
def lite0():
    torch.manual_seed(0)
    return effnet.create_model("lite0", weights="lite0").eval()


def test_real_photos_top1(lite0):
    images = [Image.fromarray(getattr(data, n)()) for n in ("chelsea", "coffee", "rocket")]
    cat, coffee, rocket = classify(lite0, images, eval_transform("lite0"), top=5)
    assert cat[0].label in CATS and cat[0].score > 0.3
    assert coffee[0].label == "espresso"
    assert rocket[0].label in {"missile", "projectile"}
    assert sum(p.score for p in cat) <= 1.0 + 1e-6


def test_matches_timm_with_the_same_file(lite0):
    """The real lukemelas-named file, zipped by position into timm's tf_efficientnet_lite0, agrees with effnet."""
    import timm

    from effnet.weights.registry import get_weight_set, local_package_file

    ref = timm.create_model("tf_efficientnet_lite0").eval()
    real = torch.load(local_package_file(get_weight_set("lite0")), weights_only=True)
    target = ref.state_dict()
    assert len(real) == len(target)
    mapped = {}
    for (key, value), (_, theirs) in zip(real.items(), target.items()):
        assert value.shape == theirs.shape, key
        mapped[_] = value
    ref.load_state_dict(mapped)
    x = torch.stack([eval_transform("lite0")(im) for _, im in demo_photos()[:3]])
    with torch.no_grad():
        diff = (lite0(x) - ref(x)).abs().max().item()
    print(f"real lite0 file, effnet vs timm: max abs logit diff {diff:.3g}")
    assert diff <= 1e-4


def test_cli_predict(tmp_path, capsys):
    cat = Image.fromarray(data.chelsea())
    folder = tmp_path / "photos"
    folder.mkdir()
    cat.convert("L").save(folder / "grey.png")
    cat.convert("RGBA").save(folder / "rgba.png")
    cat.convert("P").save(folder / "palette.png")
    cat.convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.jpg")
    (folder / "notes.jpg").write_text("this is not an image")
    code = main(["predict", str(folder), str(tmp_path / "coffee.jpg"), "--weights", "lite0", "--top", "3", "--json"])
    out, err = capsys.readouterr()
    assert code == 1  # one file failed
    assert err.count("error") == 1 and "notes.jpg" in err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 5 and all(len(r["top"]) == 3 for r in rows)
    by_name = {r["image"].rsplit("/", 1)[-1]: r["top"][0]["class"] for r in rows}
    assert by_name["coffee.jpg"] == "espresso"
    assert by_name["rgba.png"] in CATS and by_name["cmyk.jpg"] in CATS

    code = main(["predict", str(tmp_path / "coffee.jpg"), "--model", "lite0", "--weights", "lite0"])
    out, _ = capsys.readouterr()
    assert code == 0 and "espresso" in out.splitlines()[0]


def test_cli_convert(tmp_path, capsys):
    from effnet.weights.registry import get_weight_set, local_package_file

    src = local_package_file(get_weight_set("lite0"))
    assert main(["convert", str(src), str(tmp_path / "lite0.safetensors"), "--model", "lite0"]) == 0
    assert "wrote" in capsys.readouterr().out
    model = effnet.create_model("lite0", weights=str(tmp_path / "lite0.safetensors"))
    assert model.config.padding == "same"
    assert effnet.weights.read_weights(tmp_path / "lite0.safetensors").preprocessing.mean[0] == pytest.approx(127 / 255)
    assert main(["convert", str(src), str(tmp_path / "x.safetensors"), "--model", "b0"]) == 2
    assert "looks like lite0" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["lite1", "lite2"])
def test_real_lite1_lite2(tag):
    model = effnet.create_model(tag, weights=tag).eval()
    images = [Image.fromarray(getattr(data, n)()) for n in ("chelsea", "coffee")]
    cat, coffee = classify(model, images, eval_transform(tag), top=5)
    assert cat[0].label in CATS
    assert coffee[0].label == "espresso"
