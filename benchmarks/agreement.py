"""Quality of every fast inference path on real in-distribution images: top-1/top-5 and agreement with fp32.

`python benchmarks/agreement.py DATA [--models lite0,lite1,lite2]`, DATA a folder of ImageNet
WordNet-id folders (e.g. a copy of ImageNet-val, or any subset of its classes). For each model with
real weights, ``--calibration`` images of DATA (evenly spaced) calibrate the int8 paths and every
path is scored on the others: top-1/top-5 against the labels and top-1 agreement with the plain fp32
model run with its BatchNorm layers unfused. The last column is a robustness row, not a quality
figure: agreement on 104 variants (flips, crops, a rotation) of 13 out-of-distribution scikit-image
photos, where the top-2 logits are often close and reduced precision flips predictions easily.
Timing lives in `effnet bench --accuracy DATA` (the same paths, the same scoring, plus images/s).
"""

from __future__ import annotations

import argparse
import sys

import torch

PATHS = "eager,channels_last,bf16,compile,onnxruntime,onnxruntime_int8,executorch,executorch_int8"
PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "cat", "hubble_deep_field", "immunohistochemistry",
          "retina", "colorwheel", "page", "camera", "coins", "horse"]


def photos(model_name: str) -> torch.Tensor:
    """The robustness set: 13 skimage photos x 8 variants, preprocessed for ``model_name``."""
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


def model_table(name: str, data_dir: str, paths: list[str], calibration: int, batch: int) -> list[str]:
    from effnet import create_model
    from effnet.arch import fastpath
    from effnet.bench.accuracy import load_labelled, logits_of, score
    from effnet.bench.candidates import _infer_runner
    from effnet.data.transforms import eval_transform

    model = create_model(name, weights=name).eval()
    data = load_labelled(data_dir, eval_transform(name), calibration)
    robust = photos(name)
    with fastpath.disabled(model):  # the reference: BatchNorm layers run as such
        ref, ref_robust = logits_of(model, data.images, batch), logits_of(model, robust, batch)
    lines = [f"{name}: {len(data.labels)} images scored, {len(data.calibration)} calibrate int8", "",
             "| path | top-1 % | top-5 % | top-1 agreement with fp32 | robustness: agreement on 104 OOD photo variants |",
             "|---|---:|---:|---:|---:|"]
    for path in paths:
        try:
            run, _ = _infer_runner("effnet", path, model, data.calibration if len(data.calibration) else None)
        except (ValueError, RuntimeError, ImportError) as exc:
            lines.append(f"| {path} | skipped: {str(exc).splitlines()[0][:120]} | | | |")
            continue
        s = score(logits_of(run, data.images, batch), data.labels, ref)
        robust_agree = 100 * float((logits_of(run, robust, batch).argmax(1) == ref_robust.argmax(1)).float().mean())
        agree_n = round(s.agreement * s.images / 100)
        lines.append(f"| {path} | {s.top1:.1f} | {s.top5:.1f} | {s.agreement:.1f}% ({agree_n}/{s.images}) | "
                     f"{robust_agree:.1f}% |")
        print(lines[-1], file=sys.stderr, flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="folder of ImageNet WordNet-id folders (n01440764/*.JPEG)")
    parser.add_argument("--models", default="lite0,lite1,lite2", help="models with offline real weights")
    parser.add_argument("--paths", default=PATHS)
    parser.add_argument("--calibration", type=int, default=100, help="images of DATA that calibrate int8 (default 100)")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)
    for name in args.models.split(","):
        print("\n".join(model_table(name, args.data, args.paths.split(","), args.calibration, args.batch)) + "\n",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
