"""Misuse of `effnet embed` / `effnet probe`: exit code 2, one line on stderr naming the problem, no
traceback, nothing written or overwritten. One row per mistake."""

import pytest
from PIL import Image

from effnet.cli import main


def _setup(tmp):
    Image.new("RGB", (40, 40), (200, 30, 30)).save(tmp / "red.png")
    (tmp / "empty").mkdir()
    (tmp / "bad").mkdir()
    (tmp / "bad" / "x.jpg").write_bytes(b"not an image")
    (tmp / "noval" / "train" / "a").mkdir(parents=True)
    Image.new("RGB", (40, 40)).save(tmp / "noval" / "train" / "a" / "1.png")
    (tmp / "kept.npz").write_bytes(b"user data")


ROWS = [
    # (arguments, text the one line must contain)
    (["embed", "{t}/missing.jpg", "--out", "{t}/o.npz"], "missing.jpg"),
    (["embed", "{t}/empty", "--out", "{t}/o.npz"], "no image files found"),
    (["embed", "{t}/bad", "--out", "{t}/o.npz"], "no readable images among 1 file(s) (first: {t}/bad/x.jpg"),
    (["embed", "{t}/red.png", "--out", "{t}/o.txt"], "must end in .npz"),
    (["embed", "{t}/red.png", "--out", "{t}/kept.npz"], "already exists; pass --overwrite"),
    (["embed", "{t}/red.png", "--out", "{t}/o.npz", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["embed", "{t}/red.png", "--out", "{t}/o.npz", "--image-size", "8"], "--image-size must be at least 32"),
    (["embed", "{t}/red.png", "--out", "{t}/o.npz", "--weights", "{t}/nope.safetensors"], "nope.safetensors"),
    (["embed", "{t}/red.png", "--out", "{t}/o.npz", "--model", "b99"], "b99"),
    (["embed", "{t}/red.png"], "--out"),
    (["probe", "{t}/missing"], "does not exist"),
    (["probe", "{t}/noval"], "val-fraction"),
    (["probe", "{t}/noval", "--val-fraction", "1.5"], "between 0 and 1"),
]


@pytest.mark.parametrize("argv,expected", ROWS, ids=[" ".join(r[0][:2]) + f" #{i}" for i, r in enumerate(ROWS)])
def test_misuse_is_one_line_and_touches_nothing(tmp_path, capsys, argv, expected):
    _setup(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    try:
        code = main([a.format(t=tmp_path) for a in argv] + ["--no-progress"])
    except SystemExit as exc:  # argparse's own errors exit from inside parse_args
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and expected.format(t=tmp_path) in err, err
    assert "Traceback" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing new
    assert (tmp_path / "kept.npz").read_bytes() == b"user data"
