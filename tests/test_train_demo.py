"""The `make demo` training run reaches a real accuracy on the held-out digits (slow: ~3 minutes)."""

import pytest

from effnet.training.demo import train_on_digits


@pytest.mark.slow
def test_demo_run_is_well_above_90_percent(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFNET_HOME", str(tmp_path / "cache"))
    result = train_on_digits(tmp_path / "run", threads=1)
    assert result.final_top1 > 90.0
    assert all(p.is_file() for p in result.plots) and len(result.plots) == 3
    assert (tmp_path / "run" / "tensorboard").is_dir()
