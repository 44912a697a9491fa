"""Top-1 agreement of effnet's fast inference paths with the plain fp32 model on real photos.

Real Lite0 weights (the only pretrained effnet weights bundled offline) on the skimage.data
photos, each in 8 variants (flips, crops, a rotation) so that a 99% target is measurable:
with 104 samples one flipped prediction is 99.04%. Prints agreement as k/n per path and the
largest absolute logit difference.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "cat", "hubble_deep_field", "immunohistochemistry",
          "retina", "colorwheel", "page", "camera", "coins", "horse"]


def photos(model_name: str = "lite0") -> torch.Tensor:
    import skimage.data as skdata
    from PIL import Image

    from effnet.data.transforms import eval_transform

    tf = eval_transform(model_name)
    out = []
    for name in PHOTOS:
        img = Image.fromarray(getattr(skdata, name)()).convert("RGB")
        w, h = img.size
        variants = [img, img.transpose(Image.FLIP_LEFT_RIGHT), img.transpose(Image.FLIP_TOP_BOTTOM),
                    img.crop((0, 0, w * 3 // 4, h)), img.crop((w // 4, 0, w, h)), img.crop((0, h // 4, w, h)),
                    img.crop((w // 4, h // 4, w * 3 // 4, h * 3 // 4)), img.rotate(90, expand=True)]
        out += [tf(v) for v in variants]
    return torch.stack(out)


CALIBRATION = ["brick", "clock", "grass", "gravel", "moon", "text", "logo", "microaneurysms", "cell"]


def calibration_images(model_name: str = "lite0") -> torch.Tensor:
    """Real images *not* in the test set: other skimage images, scikit-learn's two photos, 20 LFW faces."""
    import numpy as np
    import skimage.data as skdata
    from PIL import Image
    from sklearn.datasets import load_sample_images

    from effnet.data.transforms import eval_transform, to_rgb

    arrays = [getattr(skdata, name)() for name in CALIBRATION] + list(load_sample_images().images)
    arrays += [(face * 255).astype(np.uint8) for face in skdata.lfw_subset()[:20]]
    tf = eval_transform(model_name)
    return torch.stack([tf(to_rgb(Image.fromarray(a if a.dtype == np.uint8 else (a > 0).astype(np.uint8) * 255)))
                        for a in arrays])


def paths(model: torch.nn.Module, which: list[str]) -> dict[str, object]:
    from effnet.deploy.export import export_onnx, onnx_session
    from effnet.deploy.inference import optimize_for_inference

    made: dict[str, object] = {}
    for name in which:
        if name == "fp32_folded_nhwc":
            made[name] = optimize_for_inference(model)
        elif name == "bf16":
            made[name] = optimize_for_inference(model, dtype=torch.bfloat16)
        elif name == "compile":
            made[name] = optimize_for_inference(model, compile=True)
        elif name in ("onnxruntime", "onnxruntime_int8"):
            path = Path(tempfile.mkdtemp(prefix="effnet-agree-")) / "m.onnx"
            export_onnx(model, path, dynamic_batch=True, input_size=model.config.resolution)
            if name == "onnxruntime_int8":
                from effnet.deploy.quantize import quantize_onnx_int8

                images = photos(model.config.name)
                path = quantize_onnx_int8(path, path.with_suffix(".int8.onnx"), calibration_images(model.config.name),
                                          check=images).path
            session = onnx_session(path)
            inp = session.get_inputs()[0].name
            made[name] = lambda x, s=session, i=inp: torch.from_numpy(s.run(None, {i: x.numpy()})[0])
        else:
            raise ValueError(f"unknown path {name!r}")
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", default="fp32_folded_nhwc,bf16,compile,onnxruntime,onnxruntime_int8")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)
    from effnet import create_model

    model = create_model("lite0", weights="lite0").eval()
    images = photos("lite0")
    from effnet.arch import fastpath

    # the reference is the model with its BatchNorm layers run as such
    with fastpath.disabled(model), torch.inference_mode():
        ref = torch.cat([model(images[i:i + args.batch]) for i in range(0, len(images), args.batch)])
    print(f"{len(images)} samples ({len(PHOTOS)} skimage photos x 8 variants), real Lite0 weights\n")
    print("| path | top-1 agreement | agree / n | max abs logit diff |")
    print("|---|---:|---:|---:|")
    print("| eager (BN folded on the fly) | ", end="")
    with torch.inference_mode():
        eager = torch.cat([model(images[i:i + args.batch]) for i in range(0, len(images), args.batch)])
    agree = int((eager.argmax(1) == ref.argmax(1)).sum())
    print(f"{100 * agree / len(images):.2f}% | {agree}/{len(images)} | {(eager - ref).abs().max().item():.2e} |")
    for name, run in paths(model, args.paths.split(",")).items():
        with torch.inference_mode():
            got = torch.cat([run(images[i:i + args.batch]).float() for i in range(0, len(images), args.batch)])
        agree = int((got.argmax(1) == ref.argmax(1)).sum())
        print(f"| {name} | {100 * agree / len(images):.2f}% | {agree}/{len(images)} | "
              f"{(got - ref).abs().max().item():.2e} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
