"""ONNX / TorchScript export: dynamic batch and image size (TF SAME padding too), checked files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from effnet.arch.layers import same_padding
from effnet.cli import main
from effnet.deploy.export import ExportCheckError, export_onnx, export_torchscript, onnx_session
from perf_util import tiny_model


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


def _saved_same_padding_model(tmp_path) -> tuple[torch.nn.Module, list[str]]:
    """A tiny SAME-padding model with O(1) outputs, saved as config JSON + weights: the CLI's inputs."""
    trained = tiny_model(padding="same", num_classes=1000)
    cfg_path, weights = tmp_path / "tiny.json", tmp_path / "tiny.pth"
    trained.config.save(cfg_path)
    torch.save(trained.state_dict(), weights)
    return trained, ["--model", str(cfg_path), "--weights", str(weights), "--dynamic", "--size", "64"]


# Odd sizes, where SAME padding is asymmetric, and batches the export never saw.
ODD_SHAPES = [(5, 3, 47, 71), (1, 3, 33, 200), (2, 3, 129, 96)]


def test_cli_onnx_dynamic_batch_and_size_with_same_padding_and_saved_weights(tmp_path, capsys):
    trained, args = _saved_same_padding_model(tmp_path)
    out = tmp_path / "tiny.onnx"
    assert main(["export", *args, "--format", "onnx", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "check vs PyTorch: max abs diff" in printed and out.is_file()
    for shape in ODD_SHAPES:
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = trained(x).numpy()
        assert np.abs(expected).max() > 0.05  # outputs are not vanishing
        np.testing.assert_allclose(run_onnx(out, x), expected, atol=1e-4, rtol=0)


def test_cli_torchscript_keeps_same_padding_dynamic_with_saved_weights(tmp_path, capsys):
    trained, args = _saved_same_padding_model(tmp_path)
    out = tmp_path / "tiny.pt"
    assert main(["export", *args, "--format", "torchscript", "-o", str(out)]) == 0
    assert "dynamic: batch, image size" in capsys.readouterr().out
    loaded = torch.jit.load(str(out))
    for shape in ODD_SHAPES[:2]:
        x = torch.randn(*shape)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), trained(x), atol=1e-4, rtol=0)


def test_api_result_and_failed_check_writes_nothing(tmp_path):
    """The check and atomic write are generic: a two-layer model keeps this test fast."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    good = tmp_path / "good.onnx"
    result = export_onnx(model, good, dynamic_batch=True, input_size=16)
    assert good.is_file() and result.checked and result.max_abs_diff <= 1e-4 and result.max_abs_logit > 0.05
    assert len(result.per_shape) == 3  # the example and two other batch sizes
    script = export_torchscript(model, tmp_path / "good.pt", dynamic_size=False, input_size=16)
    assert script.checked and script.max_abs_diff <= 1e-4
    bad = tmp_path / "bad.onnx"
    with pytest.raises(ExportCheckError, match="nothing was written"):
        export_onnx(model, bad, dynamic_batch=False, input_size=16, atol=-1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.onnx", "good.pt"]


def test_cli_rejects_unknown_model(capsys):
    assert main(["export", "--model", "b99", "--format", "torchscript"]) == 2
    assert "b99" in capsys.readouterr().err
