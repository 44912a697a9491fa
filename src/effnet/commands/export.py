"""``effnet export``: write an ONNX, TorchScript or ExecuTorch file, checked against PyTorch.

``--weights RUN`` exports a run of ``effnet train`` as it is: its model, classes and image size. ONNX
and ExecuTorch files carry the class names and preprocessing (:mod:`effnet.deploy.artifacts`), so
``effnet predict model.onnx photo.jpg`` needs nothing else.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from effnet.choices import DEFAULT_OPSET, EXPORT_FORMATS, MIN_OPSET
from effnet.commands._args import int_at_least, positive_float, positive_int

SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "executorch": ".pte"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a model to ONNX, TorchScript or ExecuTorch (checked against PyTorch)",
        description="Export a model; the written file is run on fresh inputs and compared with PyTorch "
        "(max abs diff of logits must be within --atol) before it is renamed into place. ONNX and ExecuTorch "
        "files carry the class names and preprocessing: effnet predict and eval take them as weights.",
    )
    p.add_argument("--model", default=None,
                   help="model name (b0..b7, lite0..) or a saved config JSON (default: what the weights say)")
    p.add_argument("--weights", default=None,
                   help="an effnet train run folder (its model, classes and image size are used), its "
                        "model.safetensors, a weights file or a registry tag")
    p.add_argument("--allow-random-head", action="store_true",
                   help="export even though the classifier is left randomly initialised (no --weights, or a "
                        "--num-classes the weights do not have): for benchmarks, not for predictions")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="onnx",
                   help="executorch: a .pte program with the XNNPACK delegate, batch 1 (needs effnet[edge])")
    p.add_argument("--dynamic", action="store_true",
                   help="dynamic image size (33..8192 px; SAME padding is then computed per call, and ONNX "
                        "Runtime cannot fold those pads into the convs: Lite0 ran 1.3x slower in fp32, 1.55x in "
                        "int8, docs/benchmarks.md); ONNX and TorchScript always take any batch size")
    p.add_argument("--size", type=positive_int, default=None,
                   help="image size (default: the run's or the weights' own; a run's cannot be changed)")
    p.add_argument("--opset", type=int_at_least(MIN_OPSET), default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET} or newer (default {DEFAULT_OPSET})")
    p.add_argument("--num-classes", type=positive_int, default=None,
                   help="classifier size (default: the weights'; another needs --allow-random-head)")
    p.add_argument("--atol", type=positive_float, default=1e-4, help="check tolerance (default 1e-4)")
    p.add_argument("--no-check", action="store_true", help="skip the check against PyTorch")
    p.add_argument("--int8", type=Path, default=None, metavar="IMAGE_DIR",
                   help="also write MODEL.int8.onnx (or .int8.pte), calibrated on half of these images; prints its top-1 agreement "
                        "with fp32 on the other half (lossy: see docs/benchmarks.md)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="output file, or an existing folder to write MODEL.onnx / .pt / .pte into (default: here)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


def destinations(args: argparse.Namespace, name: str) -> list[Path]:
    """The files the export writes (the model, then its int8 copy); existing ones refused without --overwrite."""
    suffix = SUFFIXES[args.format]
    out = args.output
    if out is None or out.is_dir() or str(out).endswith(("/", "\\")):
        out = (out or Path()) / f"{name}{suffix}"
    paths = [out]
    if args.int8 is not None:
        paths.append(out.with_suffix(".int8" + suffix))
    for path in paths:
        if path.is_dir():
            raise ValueError(f"{path} is a folder; pass -o FOLDER to write {name}{suffix} into it, or another file name")
        if path.exists() and not args.overwrite:
            raise ValueError(f"{path} already exists; pass --overwrite to replace it, or -o another file")
    return paths


def run(args: argparse.Namespace) -> int:
    from effnet.deploy.export import ExportCheckError, check_opset, export_onnx, export_torchscript
    from effnet.deploy.model_spec import export_metadata, spec_for_export

    if args.int8 is not None and args.format == "torchscript":
        raise ValueError("--int8 quantizes the ONNX or ExecuTorch export; use it with --format onnx or executorch")
    if args.format == "onnx":
        check_opset(args.opset)
    spec = spec_for_export(args.weights, args.model, args.num_classes, args.size, args.allow_random_head)
    out, *int8_out = destinations(args, Path(args.model).stem if args.model else spec.config.name)
    size = spec.preprocessing.resolution
    # Calibration images are read before anything is written: an empty or unreadable folder fails first.
    calibration = _calibration_images(args, spec) if args.int8 is not None else None
    model = spec.build()
    metadata = export_metadata(spec, size)
    check = not args.no_check
    try:
        if args.format == "onnx":
            result = export_onnx(model, out, dynamic_batch=True, dynamic_size=args.dynamic, opset=args.opset,
                                 check=check, input_size=size, atol=args.atol, metadata=metadata)
        elif args.format == "executorch":
            from effnet.deploy.executorch import export_executorch

            result = export_executorch(model, out, input_size=size, check=check, atol=args.atol, metadata=metadata)
        else:
            result = export_torchscript(model, out, dynamic_size=args.dynamic, check=check, input_size=size,
                                        atol=args.atol)
    except ExportCheckError as exc:
        print(f"effnet export: check FAILED: {exc}")
        return 1
    print(result.summary())
    if calibration is not None and args.format == "executorch":
        from effnet.deploy.executorch import export_executorch_int8

        print(export_executorch_int8(model, int8_out[0], calibration, fp32_path=out, metadata=metadata).summary())
    elif calibration is not None:
        from effnet.deploy.export import set_onnx_metadata
        from effnet.deploy.quantize import quantize_onnx_int8

        int8 = quantize_onnx_int8(out, int8_out[0], calibration)
        set_onnx_metadata(int8.path, metadata)
        print(int8.summary())
    return 0


def _calibration_images(args: argparse.Namespace, spec: object) -> object:
    from effnet.data.transforms import eval_transform
    from effnet.deploy.quantize import folder_images

    if not args.int8.is_dir():
        raise ValueError(f"--int8 {args.int8}: no such folder; give a folder of sample images to calibrate on")
    images, skipped = folder_images(args.int8, eval_transform(spec.preprocessing))
    for line in skipped:
        print(f"skipped unreadable image {line}")
    return images
