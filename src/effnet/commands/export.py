"""``effnet export``: write an ONNX, TorchScript or ExecuTorch file, checked against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path

from effnet.choices import DEFAULT_OPSET, EXPORT_FORMATS, MIN_OPSET
from effnet.commands._args import int_at_least, positive_float, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a model to ONNX, TorchScript or ExecuTorch (checked against PyTorch)",
        description="Export a model; the written file is run on fresh inputs and compared with PyTorch "
        "(max abs diff of logits must be within --atol) before it is renamed into place.",
    )
    p.add_argument("--model", required=True, help="model name (b0..b7, lite0..) or a saved config JSON")
    p.add_argument("--weights", default=None, help="weight file or registry tag (default: random init)")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="onnx",
                   help="executorch: a .pte program with the XNNPACK delegate, batch 1 (needs effnet[edge])")
    p.add_argument("--dynamic", action="store_true",
                   help="dynamic batch and image size (33..8192 px; SAME padding stays dynamic)")
    p.add_argument("--size", type=positive_int, default=None, help="example image size (default: the model's resolution)")
    p.add_argument("--opset", type=int_at_least(MIN_OPSET), default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET} or newer (default {DEFAULT_OPSET})")
    p.add_argument("--num-classes", type=positive_int, default=1000)
    p.add_argument("--atol", type=positive_float, default=1e-4, help="check tolerance (default 1e-4)")
    p.add_argument("--no-check", action="store_true", help="skip the check against PyTorch")
    p.add_argument("--int8", type=Path, default=None, metavar="IMAGE_DIR",
                   help="also write MODEL.int8.onnx (or .int8.pte), calibrated on half of these images; prints its top-1 agreement "
                        "with fp32 on the other half (lossy: see docs/benchmarks.md)")
    p.add_argument("-o", "--output", type=Path, default=None, help="output file (default: MODEL.onnx / .pt / .pte)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from effnet.deploy.export import ExportCheckError, check_opset, export_onnx, export_torchscript
    from effnet.factory import create_model

    if args.int8 is not None and args.format == "torchscript":
        raise ValueError("--int8 quantizes the ONNX or ExecuTorch export; use it with --format onnx or executorch")
    if args.format == "onnx":
        check_opset(args.opset)
    model = create_model(args.model, weights=args.weights, num_classes=args.num_classes).eval()
    # Calibration images are read before anything is written: an empty or unreadable folder fails first.
    calibration = _calibration_images(args, model) if args.int8 is not None else None
    stem = Path(args.model).stem
    check = not args.no_check
    try:
        if args.format == "onnx":
            out = args.output or Path(f"{stem}.onnx")
            result = export_onnx(model, out, dynamic_batch=args.dynamic, dynamic_size=args.dynamic, opset=args.opset,
                                 check=check, input_size=args.size, atol=args.atol)
        elif args.format == "executorch":
            from effnet.deploy.executorch import export_executorch

            out = args.output or Path(f"{stem}.pte")
            result = export_executorch(model, out, input_size=args.size, check=check, atol=args.atol)
        else:
            out = args.output or Path(f"{stem}.pt")
            result = export_torchscript(model, out, dynamic_size=args.dynamic, check=check, input_size=args.size,
                                        atol=args.atol)
    except ExportCheckError as exc:
        print(f"effnet export: check FAILED: {exc}")
        return 1
    print(result.summary())
    if calibration is not None and args.format == "executorch":
        from effnet.deploy.executorch import export_executorch_int8

        print(export_executorch_int8(model, out.with_suffix(".int8.pte"), calibration, fp32_path=out).summary())
    elif calibration is not None:
        from effnet.deploy.quantize import quantize_onnx_int8

        print(quantize_onnx_int8(out, out.with_suffix(".int8.onnx"), calibration).summary())
    return 0


def _calibration_images(args: argparse.Namespace, model: object) -> object:
    from effnet.data.transforms import eval_transform
    from effnet.deploy.quantize import folder_images

    if not args.int8.is_dir():
        raise ValueError(f"--int8 {args.int8}: no such folder; give a folder of sample images to calibrate on")
    images, skipped = folder_images(args.int8, eval_transform(args.weights or model.config, args.size))
    for line in skipped:
        print(f"skipped unreadable image {line}")
    return images
