"""int8 export: a real quantized model (QDQ, int8 weights), and an honest agreement figure."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from PIL import Image

from effnet.cli import main
from effnet.deploy.predict import demo_photos


def _photo_folder(root):
    root.mkdir()
    for name, image in demo_photos():
        image.save(root / f"{name}.png")
        image.transpose(Image.FLIP_LEFT_RIGHT).save(root / f"{name}_flipped.png")
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    return root


def test_cli_int8_export_with_real_weights(tmp_path, capsys):
    photos = _photo_folder(tmp_path / "photos")
    out = tmp_path / "lite0.onnx"
    assert main(["export", "--model", "lite0", "--weights", "lite0", "--int8", str(photos), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "skipped unreadable image" in text and "broken.jpg" in text
    match = re.search(r"calibrated on (\d+) images\); top-1 agrees with fp32 on ([\d.]+)% of (\d+) held-out", text)
    assert match, text
    calibrated, agreement, checked = int(match[1]), float(match[2]), int(match[3])
    assert calibrated + checked == 12 and 0 <= agreement <= 100

    int8 = out.with_suffix(".int8.onnx")
    graph = onnx.load(str(int8)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and np.prod(t.dims) > 1000]
    assert len(int8_weights) >= 30  # every sizeable conv weight is stored as int8
    assert int8.stat().st_size < 0.4 * out.stat().st_size


def test_int8_needs_images(tmp_path):
    from effnet.deploy.quantize import folder_images

    (tmp_path / "one").mkdir()
    Image.new("RGB", (40, 40)).save(tmp_path / "one" / "a.png")
    with pytest.raises(ValueError, match="at least 2"):
        folder_images(tmp_path / "one", lambda im: im)
    with pytest.raises(ValueError, match="no images"):
        folder_images(tmp_path / "missing", lambda im: im)
