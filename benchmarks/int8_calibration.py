"""How many real images int8 calibration needs: held-out top-1 and agreement with fp32 per calibration size.

`python benchmarks/int8_calibration.py DATA [--model lite0] [--sizes 8,32,100] [--paths onnxruntime_int8]`.
DATA is split once: the even-numbered images (sorted by class) form the calibration pool, the
odd-numbered ones the held-out set every size is scored on; a calibration of size N takes N images
spread evenly over the pool, i.e. over the classes.
"""

from __future__ import annotations

import argparse
import sys

import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="folder of ImageNet WordNet-id folders")
    parser.add_argument("--model", default="lite0")
    parser.add_argument("--sizes", default="8,32,100")
    parser.add_argument("--paths", default="onnxruntime_int8,executorch_int8")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)
    from effnet import create_model
    from effnet.bench.accuracy import load_labelled, logits_of, score
    from effnet.bench.candidates import _infer_runner
    from effnet.data.transforms import eval_transform

    model = create_model(args.model, weights=args.model).eval()
    data = load_labelled(args.data, eval_transform(args.model), calibration=0)
    pool, held_out, labels = data.images[0::2], data.images[1::2], data.labels[1::2]
    fp32 = logits_of(model, held_out, args.batch)
    base = score(fp32, labels, fp32)
    print(f"{args.model}: {len(held_out)} held-out images; fp32 top-1 {base.top1:.1f}%, top-5 {base.top5:.1f}%\n")
    print("| path | calibration images | top-1 % | top-5 % | top-1 agreement with fp32 |")
    print("|---|---:|---:|---:|---:|")
    for size in map(int, args.sizes.split(",")):
        calibration = pool[torch.linspace(0, len(pool) - 1, size).long()]
        for path in args.paths.split(","):
            run, _ = _infer_runner("effnet", path, model, calibration)
            s = score(logits_of(run, held_out, args.batch), labels, fp32)
            print(f"| {path} | {size} | {s.top1:.1f} | {s.top5:.1f} | {s.agreement:.1f}% |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
