"""`effnet predict` on hostile or empty input: a decompression bomb is skipped unread (the rest classified,
exit 1), the pixel limit is adjustable, an empty folder and a non-run folder are named, Ctrl-C is one line."""

import os
import subprocess
import sys

import pytest
from PIL import Image
from skimage import data

from _images import bomb_png
from effnet.choices import MAX_PIXELS
from effnet.cli import main
from effnet.deploy.predict import load_image_limited


def test_a_decompression_bomb_is_skipped_and_the_rest_classified(tmp_path, capsys):
    bomb = bomb_png(tmp_path / "a_bomb.png")
    assert bomb.stat().st_size < 100_000
    Image.fromarray(data.coffee()).save(tmp_path / "b_coffee.jpg")
    assert main(["predict", str(tmp_path), "--weights", "lite0", "--top", "1"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [line for line in out.splitlines() if "b_coffee.jpg" in line] and "espresso" in out
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"a_bomb.png: 20000x20000 is 400,000,000 pixels, over the limit of {MAX_PIXELS:,}" in err
    assert "--max-pixels" in err


def test_the_pixel_limit_is_adjustable(tmp_path, capsys):
    photo = tmp_path / "coffee.jpg"
    Image.fromarray(data.coffee()).save(photo)  # 600x400
    assert main(["predict", str(photo), "--weights", "lite0", "--max-pixels", "200000"]) == 1
    assert "600x400 is 240,000 pixels, over the limit of 200,000" in capsys.readouterr().err
    assert main(["predict", str(photo), "--weights", "lite0", "--max-pixels", "240000", "--top", "1"]) == 0
    assert "espresso" in capsys.readouterr().out
    with pytest.raises(ValueError, match="over the limit of 239,999"):
        load_image_limited(photo, 239_999)
    assert load_image_limited(photo, 240_000).size == (600, 400)


def test_an_empty_folder_is_named_and_fails(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    assert main(["predict", str(tmp_path / "empty"), "--weights", "lite0"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "empty: no images in this folder" in err


def test_weights_folder_that_is_not_a_run(tmp_path, capsys):
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.jpg")
    (tmp_path / "weights").mkdir()
    assert main(["predict", str(tmp_path / "coffee.jpg"), "--weights", str(tmp_path / "weights")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a folder without model.safetensors, so not an effnet run folder" in err


CTRL_C_DURING_PREDICT = """
import os, signal, sys
from effnet.cli import main
from effnet.deploy.pipeline import Classifier

# A shell starts background jobs (CI scripts, `cmd &`) with SIGINT ignored, and Python then keeps it
# ignored; a terminal's Ctrl-C reaches a foreground process with Python's handler, which is the case tested.
signal.signal(signal.SIGINT, signal.default_int_handler)

classify = Classifier.classify_batch
calls = []

def ctrl_c_at_the_second_image(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGINT)
    return classify(*args, **kwargs)

Classifier.classify_batch = ctrl_c_at_the_second_image
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_is_one_line_and_exit_130(tmp_path):
    for name in ("coffee", "chelsea"):
        Image.fromarray(getattr(data, name)()).save(tmp_path / f"{name}.png")
    proc = subprocess.run([sys.executable, "-c", CTRL_C_DURING_PREDICT, "predict", str(tmp_path), "--weights", "lite0",
                           "--top", "1", "--batch-size", "1", "--workers", "0"], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == "effnet predict: interrupted" and "Traceback" not in proc.stderr
    assert proc.stdout.count("\n") == 1 and "chelsea.png" in proc.stdout  # the first image's answer was printed
