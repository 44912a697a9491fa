"""ONNX / TorchScript export: dynamic batch and image size (TF SAME padding too), checked files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from effnet import create_model
from effnet.cli import main
from effnet.export import ExportCheckError, export_onnx, export_torchscript, onnx_session
from effnet.layers import same_padding
from perf_util import lively, tiny_model


def tf_same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def test_same_padding_formula_equals_tensorflow_rule():
    for size in range(1, 80):
        for kernel in (1, 2, 3, 5, 7):
            for stride in (1, 2, 3, 4):
                for dilation in (1, 2):
                    assert same_padding(size, kernel, stride, dilation) == tf_same_padding(size, kernel, stride, dilation)


def run_onnx(path, x: torch.Tensor) -> np.ndarray:
    session = onnx_session(path)
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def test_onnx_dynamic_batch_and_size_with_same_padding(tmp_path):
    model = tiny_model(padding="same")
    out = tmp_path / "m.onnx"
    result = export_onnx(model, out, dynamic_batch=True, dynamic_size=True, input_size=64)
    assert out.is_file() and result.checked
    assert result.max_abs_diff <= 1e-4 and result.max_abs_logit > 0.05  # outputs are not vanishing
    assert len(result.per_shape) >= 4
    # Independently: odd sizes, where SAME padding is asymmetric, and a batch the export never saw.
    for shape in [(5, 3, 47, 71), (1, 3, 33, 200), (2, 3, 129, 96)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = model(x).numpy()
        np.testing.assert_allclose(run_onnx(out, x), expected, atol=1e-4, rtol=0)


def test_failed_check_writes_nothing(tmp_path):
    model = lively(create_model("b0", width=0.1, depth=0.1, num_classes=5, resolution=48))
    out = tmp_path / "bad.onnx"
    with pytest.raises(ExportCheckError, match="nothing was written"):
        export_onnx(model, out, dynamic_batch=False, atol=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_torchscript_keeps_same_padding_dynamic(tmp_path):
    model = tiny_model(padding="same")
    out = tmp_path / "m.pt"
    result = export_torchscript(model, out, input_size=64)
    assert result.max_abs_diff <= 1e-4 and result.max_abs_logit > 0.05
    loaded = torch.jit.load(str(out))
    for shape in [(3, 3, 47, 71), (1, 3, 96, 33)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), model(x), atol=1e-4, rtol=0)


def test_cli_exports_saved_weights(tmp_path, capsys):
    config = tiny_model().config
    cfg_path = tmp_path / "tiny.json"
    config.save(cfg_path)
    trained = tiny_model(num_classes=1000)
    weights = tmp_path / "tiny.pth"
    torch.save(trained.state_dict(), weights)
    out = tmp_path / "tiny.onnx"
    rc = main(["export", "--model", str(cfg_path), "--weights", str(weights), "--format", "onnx",
               "--size", "64", "-o", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "check vs PyTorch: max abs diff" in printed
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = trained(x).numpy()
    np.testing.assert_allclose(run_onnx(out, x), expected, atol=1e-4, rtol=0)


def test_cli_torchscript_without_weights(tmp_path, capsys):
    cfg_path = tmp_path / "tiny.json"
    tiny_model().config.save(cfg_path)
    out = tmp_path / "t.pt"
    rc = main(["export", "--model", str(cfg_path), "--format", "torchscript", "--dynamic", "--size", "48", "-o", str(out)])
    assert rc == 0
    assert "dynamic: batch, image size" in capsys.readouterr().out
    assert torch.jit.load(str(out))(torch.randn(3, 3, 50, 41)).shape == (3, 1000)


def test_cli_rejects_unknown_model(capsys):
    assert main(["export", "--model", "b99", "--format", "torchscript"]) == 2
    assert "b99" in capsys.readouterr().err
