"""ExecuTorch export (XNNPACK delegate): the written program, run in ExecuTorch's own runtime, matches PyTorch.

Small models at small resolutions keep each export (torch.export + lowering) to seconds.
"""

from __future__ import annotations

import pytest
import torch

from effnet.cli import main
from perf_util import tiny_model

pytest.importorskip("executorch.exir", reason="needs the edge extra: pip install 'effnet[edge]'")

from effnet.deploy.executorch import executorch_runner, export_executorch, export_executorch_int8  # noqa: E402
from effnet.deploy.export import ExportCheckError  # noqa: E402


def test_cli_writes_a_checked_program_that_runs_in_the_executorch_runtime(tmp_path, capsys):
    trained = tiny_model(num_classes=1000)
    cfg, weights = tmp_path / "tiny.json", tmp_path / "tiny.pth"
    trained.config.save(cfg)
    torch.save(trained.state_dict(), weights)
    out = tmp_path / "tiny.pte"
    args = ["export", "--model", str(cfg), "--weights", str(weights), "--size", "64", "--format", "executorch"]
    assert main([*args, "-o", str(out)]) == 0
    assert "check vs PyTorch: max abs diff" in capsys.readouterr().out
    run = executorch_runner(out)
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))  # 3 calls of the batch-1 program
    with torch.no_grad():
        expected = trained(x)
    assert expected.abs().max() > 0.05
    torch.testing.assert_close(run(x), expected, atol=1e-4, rtol=0)


def test_failed_check_writes_nothing(tmp_path):
    model = tiny_model(num_classes=10)
    with pytest.raises(ExportCheckError, match="nothing was written"):
        export_executorch(model, tmp_path / "bad.pte", input_size=64, atol=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_bench_builds_a_dynamic_batch_program_that_runs_any_batch_in_one_call():
    """`effnet bench`'s ExecuTorch candidate: a program taking any batch up to the bench batch."""
    from effnet.bench.candidates import _infer_runner

    model = tiny_model(num_classes=10)
    run, _ = _infer_runner("effnet", "executorch", model, max_batch=4, resolution=64)
    assert run.dynamic_batch and run.max_batch == 4
    x = torch.randn(7, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(run(x[:4]), model(x[:4]), atol=1e-4, rtol=0)
        assert run.calls == 1  # the bench batch in one call
        torch.testing.assert_close(run(x), model(x), atol=1e-4, rtol=0)
        assert run.calls == 3  # a call of 4, then one of 3 (unpadded)


def test_int8_program_is_calibrated_on_real_photos_and_close_to_fp32(tmp_path):
    """The real Lite0 weights (ReLU6, no SE: the int8-friendly family) at 128 px, calibrated on real photos,
    as a dynamic-batch program (the held-out photos run in one call)."""
    from effnet import create_model
    from effnet.cpu import features_line
    from effnet.data.transforms import eval_transform
    from effnet.deploy.quantize import calibration_photos

    model = create_model("lite0", weights="lite0").eval()
    photos = calibration_photos(eval_transform("lite0", resolution=128))
    result = export_executorch_int8(model, tmp_path / "m.int8.pte", photos, max_batch=8)
    assert result.calibration_images == (len(photos) + 1) // 2 and result.checked_images == len(photos) // 2
    held_out = photos[1::2]
    with torch.no_grad():
        fp32 = model(held_out)
    got = executorch_runner(result.path)(held_out)
    # int8 logits follow the fp32 ones (not merely the quantized graph's)
    corr = torch.corrcoef(torch.stack([got.flatten(), fp32.flatten()]))[0, 1]
    print(f"int8 vs fp32 logits: correlation {corr:.4f}, agreement {result.top1_agreement}")
    assert corr > 0.98, f"{corr} on {features_line()}"  # measured 0.995 on an AVX2-only CPU
    assert (got.argmax(1) == fp32.argmax(1)).float().mean() == result.top1_agreement
    # what the user is told: the fp32 islands, and no claim about ONNX Runtime's VNNI-free weights
    assert "kept in fp32: first conv, classifier" in result.summary() and "VNNI" not in result.summary()



def test_int8_lite0_runs_whole_in_xnnpack_with_pads_kept_int8(tmp_path):
    """Every quantized op is delegated, and each SAME pad between int8 ops keeps its input's int8 parameters,
    so XNNPACK runs it int8, folded into the conv (else: int8 -> fp32 convert, fp32 pad, convert back).
    What XNNPACK runs is read from its own per-operator profile (ETDump)."""
    from executorch.devtools.backend_debug import get_delegation_info

    from effnet import create_model
    from effnet.data.transforms import eval_transform
    from effnet.deploy.executorch import lower_to_edge, quantize_pt2e, xnnpack_op_events
    from effnet.deploy.quantize import calibration_photos

    photos = calibration_photos(eval_transform("lite0", resolution=64))
    quantized = quantize_pt2e(create_model("lite0", weights="lite0").eval(), photos)
    pads = [n for n in quantized.graph.nodes if "pad" in str(n.target) and "dequantize" in str(n.args[0].target)]
    assert len(pads) == 4  # before the stride-2 depthwise convs after the stem (whose own pad is fp32)
    for pad in pads:
        dq, (q,) = pad.args[0], list(pad.users)
        assert "quantize_per_tensor" in str(q.target)
        assert dq.args[1:3] == q.args[1:3], f"{pad}: scale/zero point {dq.args[1:3]} -> {q.args[1:3]}"
    edge = lower_to_edge(quantized, photos[:1])
    info = get_delegation_info(edge.exported_program().graph_module)
    left = info.get_operator_delegation_dataframe()
    left = left[left.occurrences_in_non_delegated_graphs > 0].op_type.tolist()
    assert not [op for op in left if "quantize" in op], left
    program = edge.to_executorch().buffer  # the runtime reads this buffer in place: keep it alive
    ops = [e.name for e in xnnpack_op_events(program, photos[:1], tmp_path / "run.etdp")]
    assert any("QC8" in op for op in ops), ops  # int8 kernels ran
    assert not [op for op in ops if "Constant Pad" in op], ops
    assert sum("Convert" in op for op in ops) <= 4, ops  # into int8 after the stem, out before the classifier


def test_bench_b0_int8_program_passes_its_check():
    """`effnet bench --model b0 --backend executorch_int8` on random weights: the program XNNPACK runs matches the
    quantized PyTorch graph within the export check. With BatchNorm statistics of white noise, the int8 grids
    (calibrated on real photos, whose activations those statistics let grow to thousands) left the check's
    inputs within a few int8 steps of zero, and rounding alone moved the logits by most of their size."""
    from types import SimpleNamespace

    from effnet.bench.candidates import build_candidates

    cfg = SimpleNamespace(model="b0", resolution=96, batch=2, compare=(), backends=("executorch_int8",), mode="infer",
                          weights=None, num_classes=1000)
    cands, skipped = build_candidates(cfg, log=lambda line: None)
    assert not skipped, skipped
    (cand,) = cands
    assert cand.run.dynamic_batch and cand.run.max_batch == 2


def test_sequential_bias_correction_leaves_little_to_correct():
    """Each int8 conv's bias is moved so that its output's per-channel mean on the calibration photos is the
    fp32 model's, measured with the corrections upstream already applied: a second pass over the corrected
    graph finds the first convs exact and little left further down (there, float rounding of the new biases
    flips some int8 roundings, and the flips add up over the layers: measured, 1e-7 at the first conv, up to
    0.09 at the last ones against the first pass's 0.40). A wrong sign would find twice the first shifts."""
    from effnet import create_model
    from effnet.data.transforms import eval_transform
    from effnet.deploy.bias_correction import correct_biases
    from effnet.deploy.executorch import quantize_pt2e
    from effnet.deploy.quantize import calibration_photos

    model = create_model("lite0", weights="lite0").eval()
    photos = calibration_photos(eval_transform("lite0", resolution=128))
    quantized = quantize_pt2e(model, photos)
    first = correct_biases(quantized, model, photos)
    again = correct_biases(quantized, model, photos)
    print(f"largest bias change: first pass {max(first.values()):.4g}, second {max(again.values()):.4g}")
    # every conv but the fp32 stem: 16 blocks (the first without expansion) and the head conv
    assert len(first) == 2 + 3 * 15 + 1 and "stem.conv" not in first
    assert max(first.values()) > 0.05
    assert max(list(again.values())[:4]) < 1e-3  # measured 1e-5 at most
    assert sum(again.values()) < 0.4 * sum(first.values())


def test_int8_export_corrects_biases_from_ten_calibration_images(tmp_path, monkeypatch):
    """From BIAS_CORRECTION_MIN_IMAGES calibration images the int8 export runs the sequential bias correction
    (Lite0 on five folds: 98.55% agreement against 97.90% without) and says so; with fewer it does not, since a
    per-channel mean over a handful of images is mostly noise. The corrected graph is the one lowered and checked."""
    import effnet.deploy.bias_correction as bc
    from effnet.deploy.executorch import BIAS_CORRECTION_MIN_IMAGES

    shifts = []
    real = bc.correct_biases
    monkeypatch.setattr(bc, "correct_biases", lambda *a: shifts.append(real(*a)) or shifts[-1])
    model = tiny_model(num_classes=10)
    images = torch.rand(2 * BIAS_CORRECTION_MIN_IMAGES, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    result = export_executorch_int8(model, tmp_path / "m.int8.pte", images)
    assert result.calibration_images == BIAS_CORRECTION_MIN_IMAGES and len(shifts) == 1
    assert shifts[0] and max(shifts[0].values()) > 0  # some int8 conv's bias moved
    assert f"calibrated on {BIAS_CORRECTION_MIN_IMAGES} images, biases corrected on them)" in result.summary()
    fewer = export_executorch_int8(model, tmp_path / "few.int8.pte", images[: 2 * BIAS_CORRECTION_MIN_IMAGES - 2])
    assert len(shifts) == 1 and "biases corrected" not in fewer.summary()
