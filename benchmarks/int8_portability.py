"""Does the int8 file give the same logits on every CPU? One file, run natively and under an emulated CPU.

    python benchmarks/int8_portability.py write OUT [--data DATA] [--images 8]
    python benchmarks/int8_portability.py run OUT native
    qemu-x86_64 -cpu Haswell .venv/bin/python benchmarks/int8_portability.py run OUT haswell
    qemu-x86_64 -cpu Nehalem .venv/bin/python benchmarks/int8_portability.py run OUT nehalem
    python benchmarks/int8_portability.py compare OUT

`write` exports Lite0 (real weights) to fp32 ONNX, to effnet's int8 (7-bit conv weights, see
effnet.deploy.quantize) and, for contrast, to ONNX Runtime's default static int8 (8-bit weights
everywhere), calibrated on real images (DATA, else the bundled photos), and saves a few other
images as the input. `run` needs only numpy and onnxruntime (quick under qemu-user): ONNX Runtime
picks its kernels from CPUID, which qemu emulates (Haswell: AVX2 without VNNI; Nehalem: SSE4 only),
so each CPU model runs the kernels a real CPU of that kind would. `compare` prints the relative L2
error of each int8 file's logits per CPU against fp32, and between CPUs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

FILES = ("fp32", "effnet_int8", "ort_default_int8")


def write(out: Path, data: str | None, n: int) -> None:
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from effnet import create_model
    from effnet.data.transforms import eval_transform
    from effnet.deploy.export import export_onnx
    from effnet.deploy.quantize import calibration_photos, folder_images, quantize_onnx_int8

    out.mkdir(parents=True, exist_ok=True)
    model = create_model("lite0", weights="lite0").eval()
    transform = eval_transform("lite0")
    if data:
        images = folder_images(data, transform, limit=10_000)[0]
        calibration, inputs = images[0::5][:100], images[1::50][:n]
    else:
        photos = calibration_photos(transform)
        calibration, inputs = photos, torch.flip(photos, dims=[3])[:n]
    export_onnx(model, out / "fp32.onnx", dynamic_batch=True, input_size=224)
    print(quantize_onnx_int8(out / "fp32.onnx", out / "effnet_int8.onnx", calibration, check=inputs).summary())

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"images": calibration[i:i + 8].numpy()} for i in range(0, len(calibration), 8)])

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    quantize_static(str(out / "fp32.onnx"), str(out / "ort_default_int8.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    np.save(out / "inputs.npy", inputs.numpy())
    print(f"wrote {', '.join(FILES)} and {len(inputs)} input images to {out}")


def run(out: Path, tag: str) -> None:
    import onnxruntime as ort

    inputs = np.load(out / "inputs.npy")
    for name in FILES:
        session = ort.InferenceSession(str(out / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        np.save(out / f"logits_{name}_{tag}.npy", session.run(None, {session.get_inputs()[0].name: inputs})[0])
    print(f"{tag}: logits of {len(inputs)} images saved")


def compare(out: Path) -> None:
    def rel(a: np.ndarray, b: np.ndarray) -> float:
        return float((np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)).max())

    tags = sorted({p.stem.rsplit("_", 1)[1] for p in out.glob("logits_fp32_*.npy")})
    print("| file | " + " | ".join(f"{t}: max rel. err vs fp32 | {t}: top-1 = fp32" for t in tags) + " |")
    for name in FILES[1:]:
        cells = []
        for t in tags:
            fp32, q = np.load(out / f"logits_fp32_{t}.npy"), np.load(out / f"logits_{name}_{t}.npy")
            cells += [f"{rel(q, fp32):.3f}", f"{int((q.argmax(1) == fp32.argmax(1)).sum())}/{len(q)}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    for name in FILES[1:]:
        base = np.load(out / f"logits_{name}_{tags[0]}.npy")
        for t in tags[1:]:
            print(f"{name}: {t} vs {tags[0]}: max rel. difference of logits {rel(np.load(out / f'logits_{name}_{t}.npy'), base):.2e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("write", "run", "compare"))
    parser.add_argument("out", type=Path)
    parser.add_argument("tag", nargs="?", default="native", help="run: a name for this CPU")
    parser.add_argument("--data", default=None, help="write: folder of real images (default: bundled photos)")
    parser.add_argument("--images", type=int, default=8, help="write: input images to compare on")
    args = parser.parse_args(argv)
    if args.action == "write":
        write(args.out, args.data, args.images)
    elif args.action == "run":
        run(args.out, args.tag)
    else:
        compare(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
