"""`effnet convert SRC DST --model NAME`: any supported weight file -> safetensors with effnet names."""

from __future__ import annotations

import argparse

from effnet.choices import SOURCE_FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert", help="convert torchvision/timm/lukemelas/Keras weights to an effnet safetensors file"
    )
    p.add_argument("src", help="weight file (.pth/.pt/.bin, .safetensors, Keras .h5) or registry tag")
    p.add_argument("dst", help="output .safetensors path (written atomically)")
    p.add_argument("--model", required=True, help="model name the weights belong to (b0..b7, lite0..lite4, ...)")
    p.add_argument("--source-format", default=None,
                   choices=SOURCE_FORMATS,
                   help="override the detected origin (e.g. timm_tf for a tf_efficientnet file with a plain name)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from effnet.weights import convert_file, read_weights

    out = convert_file(args.src, args.dst, args.model, source_format=args.source_format)
    sw = read_weights(out)
    print(f"wrote {out}: {len(sw.state)} tensors, effnet names, from {args.src} "
          f"(numerics: {sw.config_hints or 'model defaults'})")
    return 0
