"""int8 export: a real quantized model (QDQ, int8 weights), and an honest agreement figure."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from PIL import Image

from effnet.cli import main
from effnet.data.transforms import eval_transform
from effnet.deploy.export import onnx_session
from effnet.deploy.predict import demo_photos
from effnet.deploy.quantize import folder_images


def _photo_folder(root):
    root.mkdir()
    for name, image in demo_photos():
        image.save(root / f"{name}.png")
        image.transpose(Image.FLIP_LEFT_RIGHT).save(root / f"{name}_flipped.png")
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    return root


def _logits(onnx_path, images):
    """Logits from an ONNX file, fed in its fixed batch size, or all at once (ONNX exports take any batch)."""
    session = onnx_session(onnx_path)
    first = session.get_inputs()[0]
    batch = first.shape[0] if isinstance(first.shape[0], int) else len(images)
    assert len(images) % batch == 0
    return np.concatenate([session.run(None, {first.name: images[i:i + batch].numpy()})[0]
                           for i in range(0, len(images), batch)])


def test_cli_int8_export_with_real_weights(tmp_path, capsys):
    photos = _photo_folder(tmp_path / "photos")
    out = tmp_path / "lite0.onnx"
    assert main(["export", "--model", "lite0", "--weights", "lite0", "--int8", str(photos), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "skipped unreadable image" in text and "broken.jpg" in text
    match = re.search(r"calibrated on (\d+) images\); top-1 agrees with fp32 on ([\d.]+)% of (\d+) held-out", text)
    assert match, text
    calibrated, agreement, checked = int(match[1]), float(match[2]), int(match[3])
    assert (calibrated, checked) == (6, 6)
    # Measured: all 6 held-out photos (the flipped ones) keep their fp32 top-1; allow one to change on another CPU.
    assert agreement >= 100 * 5 / 6 - 0.05, text

    int8 = out.with_suffix(".int8.onnx")
    held_out = folder_images(photos, eval_transform("lite0"))[0][1::2]
    fp32_logits, int8_logits = _logits(out, held_out), _logits(int8, held_out)
    assert (int8_logits.argmax(1) == fp32_logits.argmax(1)).mean() * 100 == pytest.approx(agreement, abs=0.05)
    # The int8 logits follow fp32's (measured: relative L2 error 0.06-0.16, correlation >= 0.989 per photo) ...
    rel_err = np.linalg.norm(int8_logits - fp32_logits, axis=1) / np.linalg.norm(fp32_logits, axis=1)
    assert rel_err.max() < 0.25, rel_err
    assert min(np.corrcoef(a, b)[0, 1] for a, b in zip(fp32_logits, int8_logits)) > 0.97
    # ... and every photo's fp32 top-1 class stays in its int8 top-5.
    int8_top5 = np.argsort(-int8_logits, axis=1)[:, :5]
    assert all(c in top5 for c, top5 in zip(fp32_logits.argmax(1), int8_top5))
    meta = {p.key: p.value for p in onnx.load(str(int8)).metadata_props}
    assert meta["model"] == "lite0" and meta["classes_source"] == "imagenet"  # self-describing, like the fp32 file
    graph = onnx.load(str(int8)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and np.prod(t.dims) > 1000]
    assert len(int8_weights) >= 30  # every sizeable conv weight is stored as int8
    assert int8.stat().st_size < 0.4 * out.stat().st_size


def test_int8_needs_images(tmp_path):
    (tmp_path / "one").mkdir()
    Image.new("RGB", (40, 40)).save(tmp_path / "one" / "a.png")
    with pytest.raises(ValueError, match="at least 2"):
        folder_images(tmp_path / "one", lambda im: im)
    with pytest.raises(ValueError, match="no images"):
        folder_images(tmp_path / "missing", lambda im: im)
