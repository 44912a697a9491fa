"""Found baseline vs B0 at the same MACs, same budget, on a test split (docs/search.md, section 2).

Usage: python benchmarks/search_compare.py prep 0; then python benchmarks/search_compare.py {best,b0} SEED
(paths below: the CIFAR-10 run of docs/search.md). Appends one JSON line per run to OUT/results.jsonl.
"""
import json
import sys
import time
from pathlib import Path

from effnet.arch.config import get_config
from effnet.arch.scaling import scaled_config
from effnet.search.nas import cost
from effnet.search.proxy import proxy_data
from effnet.training import TrainConfig, train

DATA = "../shared/data/cifar10"
BEST = "runs/nas/best.json"
OUT = Path("runs/compare")
which, seed = sys.argv[1], int(sys.argv[2])
best = get_config(BEST)
b0 = get_config("b0").replace(resolution=32, bn_momentum=0.1)
best_macs = cost(best, 10)[1]
if which in ("best", "prep"):
    config = best
else:
    if cost(b0, 10)[1] <= best_macs:
        phi = 0.0  # the largest phi (0.02 steps) whose 10-class MACs fit the found baseline's
        while cost(scaled_config(phi + 0.02, base=b0), 10)[1] <= best_macs:
            phi = round(phi + 0.02, 2)
        config = scaled_config(phi, base=b0).replace(name=f"b0-phi{phi:g}")
    else:  # phi < 0 does not exist: shrink B0's width until it fits
        w = 1.0
        while cost(b0.replace(width=w), 10)[1] > best_macs:
            w = round(w - 0.01, 2)
        config = b0.replace(name=f"b0-w{w:g}", width=w)
config.save(OUT / f"{which}.json")
folder = OUT / "data"
if which == "prep":
    data = Path(proxy_data(DATA, OUT, 4000, 10, seed=1))
    folder.mkdir(parents=True)
    (folder / "train").symlink_to(data / "train")
    (folder / "test").symlink_to(Path(DATA, "test").resolve())
    sys.exit(0)
p, m = cost(config, 10)
t = time.time()
res = train(TrainConfig(data=str(folder), model=config, epochs=2, batch_size=32, lr=0.002, optimizer="adamw",
                        image_size=config.resolution, out_dir=OUT / f"{which}-s{seed}", seed=seed, ema=False,
                        zero_head=True, augment="none", crop_scale=(0.5, 1.0), threads=1, progress=False,
                        tensorboard=False, plots=False, quiet=True))
row = dict(model=which, name=config.name, seed=seed, params=p, macs=m, resolution=config.resolution,
           test_top1=res.final_top1, seconds=round(time.time() - t))
print(json.dumps(row))
with open(OUT / "results.jsonl", "a") as f:
    f.write(json.dumps(row) + "\n")
