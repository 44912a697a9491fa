"""benchmarks/transfer.py: runs end to end on a tiny CIFAR-10 subset, and skips cleanly without the data."""

import importlib.util
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CIFAR = Path(os.environ.get("EFFNET_SHARED", ROOT.parent / "shared")) / "data" / "cifar10"


def _benchmark():
    spec = importlib.util.spec_from_file_location("transfer_benchmark", ROOT / "benchmarks" / "transfer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_skips_cleanly_without_the_data(tmp_path, capsys):
    assert _benchmark().main([str(tmp_path / "no-cifar")]) == 0
    assert capsys.readouterr().out.startswith("skipped: ")


def test_subset_is_symlinks_to_the_first_files(tmp_path):
    source = tmp_path / "src"
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            (source / split / c).mkdir(parents=True)
            for i in range(5):
                (source / split / c / f"{i:04d}.jpg").write_bytes(b"x")
    out = _benchmark().make_subset(source, tmp_path / "subset", 3, 2, offset=1)
    train = sorted(p.name for p in (out / "train" / "cat").iterdir())
    assert train == ["0001.jpg", "0002.jpg", "0003.jpg"] and (out / "train" / "cat" / "0001.jpg").is_symlink()
    assert sorted(p.name for p in (out / "val" / "dog").iterdir()) == ["0001.jpg", "0002.jpg"]


@pytest.mark.skipif(not CIFAR.is_dir(), reason="needs ../shared/data/cifar10 (not part of the repository)")
def test_runs_on_a_tiny_cifar_subset(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    code = _benchmark().main([str(CIFAR), "--subset", "4,2", "--models", "lite0", "--runs",
                              "effnet default,plain,probe", "--epochs", "1", "--image-size", "32", "--batch-size", "8",
                              "--threads", "1", "--log", str(log)])
    assert code == 0
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["run"] for r in rows] == ["effnet default", "plain", "probe"]
    for r in rows:
        assert 0.0 <= r["top1"] <= 100.0 and r["top1"] == r["history"][-1]["val_top1"]
    out = capsys.readouterr().out
    assert "effnet default" in out and "probe" in out
