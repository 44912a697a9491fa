"""`effnet scale` and `effnet search` on the command line."""

import json
import re

import pytest

from effnet import create_model
from effnet.arch.config import get_config
from effnet.arch.flops import count_params, model_cost
from effnet.arch.scaling import scaled_config, stage_table
from effnet.cli import main


def test_scale_phi_prints_config_costs_and_stage_table(capsys):
    assert main(["scale", "--phi", "2.5"]) == 0
    out = capsys.readouterr().out
    config = scaled_config(2.5)
    params, macs = model_cost(config)
    assert f"params {params:,}" in out and f"MACs {macs:,}" in out
    assert f"resolution {config.resolution}" in out
    # Every row of the scaled Table 1 is printed with its channels and layers.
    for row in stage_table(config):
        assert re.search(rf"^\s*{row['stage']}\s+{re.escape(str(row['operator']))}\s+\S+\s+{row['channels']}\s+"
                         rf"{row['layers']}\s*$", out, re.M), row


def test_scale_to_macs_budget_saves_a_config_that_create_model_accepts(tmp_path, capsys):
    path = tmp_path / "cfg.json"
    assert main(["scale", "--target-macs", "2e9", "--precision", "0.01", "--save", str(path)]) == 0
    out = capsys.readouterr().out
    phi = float(re.search(r"phi = ([\d.]+)", out).group(1))
    saved = get_config(str(path))
    assert saved.phi == pytest.approx(phi)
    params, macs = model_cost(saved)
    assert macs <= 2e9 < model_cost(scaled_config(phi + 0.01))[1]
    assert f"MACs {macs:,}" in out and "next step phi" in out
    assert json.loads(path.read_text())["resolution"] == saved.resolution
    assert count_params(create_model(str(path))) == params


def test_scale_to_params_budget_with_custom_coefficients(capsys):
    assert main(["scale", "--target-params", "10e6", "--alpha", "1.1", "--beta", "1.2", "--gamma", "1.1",
                 "--precision", "0.02"]) == 0
    out = capsys.readouterr().out
    phi = float(re.search(r"phi = ([\d.]+)", out).group(1))
    assert model_cost(scaled_config(phi, 1.1, 1.2, 1.1))[0] <= 10e6 < model_cost(scaled_config(phi + 0.02, 1.1, 1.2,
                                                                                                  1.1))[0]


def test_scale_to_latency_budget_passes_the_measurement_settings_and_reports_the_fit(tmp_path, capsys, monkeypatch):
    # The latency source is replaced by a deterministic one (MACs / 1e6 ms): the test checks the CLI's
    # wiring and its answer, not this machine's speed (that belongs in benchmarks).
    import effnet.search.budget

    calls = []

    def fake_latency_ms(config, batch, backend, num_classes, threads=None):
        calls.append((batch, backend, num_classes, threads))
        return model_cost(config)[1] * batch / 1e6

    monkeypatch.setattr(effnet.search.budget, "measure_latency_ms", fake_latency_ms)
    tiny = tmp_path / "tiny.json"
    base = get_config("b0").replace(name="tiny", resolution=32, width=0.25, depth=0.25)
    base.save(tiny)
    target = 3 * model_cost(base)[1] * 2 / 1e6
    assert main(["scale", "--model", str(tiny), "--target-latency-ms", f"{target:.6f}", "--threads", "1",
                 "--batch", "2", "--backend", "channels_last", "--precision", "0.1", "--phi-max", "3"]) == 0
    out = capsys.readouterr().out
    assert calls and set(calls) == {(2, "channels_last", 1000, 1)}
    phi = float(re.search(r"phi = ([\d.]+)", out).group(1))
    ms = lambda p: model_cost(scaled_config(p, base=base))[1] * 2 / 1e6  # noqa: E731
    assert 0 < phi < 3 and ms(phi) <= target < ms(round(phi + 0.1, 12))
    assert f"ms <= {float(f'{target:.6f}'):g}" in out and "next step phi" in out
    assert "batch-2 forward pass, channels_last, 1 thread(s)" in out


def test_scale_errors_are_one_line(capsys, tmp_path):
    assert main(["scale", "--target-macs", "1e8"]) == 2
    assert "below the unscaled baseline b0" in capsys.readouterr().err
    assert main(["scale", "--phi", "1", "--save", str(tmp_path / "cfg.txt")]) == 2
    assert "needs a .json path" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["scale", "--phi", "1", "--target-macs", "1e9"])


def test_search_cli_runs_resumes_and_emits_the_family(tmp_path, capsys, monkeypatch):
    import effnet.search.grid

    calls = []

    def fake_train(config, run_dir, settings):
        calls.append(config.name)
        return 50.0 + 10 * config.depth - config.resolution / 100

    monkeypatch.setattr(effnet.search.grid, "train_and_score", fake_train)
    args = ["search", "--data", "demo", "--out", str(tmp_path), "--base-width", "0.25", "--base-depth", "0.25",
            "--max-candidates", "3", "--family", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert len(calls) == 3
    assert "best: alpha" in out and (tmp_path / "search.png").exists()
    family = sorted((tmp_path / "family").iterdir())
    assert [get_config(str(p)).phi for p in family] == [1.0, 2.0]
    assert "x prev" in out
    assert main(args) == 0  # rerun: everything is resumed from the study (OUT/study.db)
    assert len(calls) == 3
    assert main(["search", "--out", str(tmp_path)]) == 2
    assert "no data" in capsys.readouterr().err


def test_search_cli_study_single_vs_compound(tmp_path, capsys, monkeypatch):
    import effnet.search.grid

    calls = []
    monkeypatch.setattr(effnet.search.grid, "train_and_score", lambda c, d, s: calls.append(c.name) or 42.0)
    assert main(["search", "demo", "--study", "single-vs-compound", "--levels", "1", "--out", str(tmp_path),
                 "--base-width", "0.25", "--base-depth", "0.25"]) == 0
    out = capsys.readouterr().out
    assert len(calls) == 5  # baseline, then compound, width, depth, resolution at phi = 1
    for method in ("baseline", "compound", "width", "depth", "resolution"):
        assert re.search(rf"^{method}\s", out, re.M), method
    assert (tmp_path / "study.png").exists() and (tmp_path / "study.db").exists()


def test_saved_config_trains_with_the_engine(tmp_path, capsys, one_thread):
    from effnet.training import TrainConfig, train

    tiny = tmp_path / "tiny.json"
    get_config("b0").replace(name="tiny", resolution=32, width=0.25, depth=0.25).save(tiny)
    cfg = tmp_path / "scaled.json"
    assert main(["scale", "--model", str(tiny), "--phi", "1", "--save", str(cfg)]) == 0
    result = train(TrainConfig(data="demo", model=str(cfg), epochs=1, max_steps=2, batch_size=16,
                               out_dir=tmp_path / "run", progress=False, tensorboard=False, plots=False, quiet=True))
    assert result.steps == 2
    saved = get_config(str(cfg))
    assert saved.resolution == 40  # 32 * 1.15 = 36.8, rounded to a multiple of 8
    assert result.model.config.replace(name=saved.name) == saved.replace(name=saved.name)  # the scaled network
    assert count_params(result.model) == count_params(create_model(str(cfg), num_classes=len(result.classes)))
