"""Baseline search (effnet nas) and the Optuna engine both searches run on.

Architectures are built and counted on the meta device; the engine's mechanics (workers, heartbeat,
retry, resume) run with a cheap deterministic scorer in place of training, in real worker processes;
one test trains for real on the embedded digits through the CLI.
"""

import json
import multiprocessing
import os
import signal

import optuna
import pytest
import torch

from effnet import create_model
from effnet.arch.config import get_config
from effnet.arch.flops import count_macs, count_params, meta_model, model_cost
from effnet.arch.layers import MBConv, SqueezeExcite
from effnet.cli import main
from effnet.search import shared_study
from effnet.search.grid import Coefficients, SearchSettings, run_search
from effnet.search.nas import NasObjective, objective_value, run_nas
from effnet.search.space import SearchSpace, decode, encode, load_space, stage_choices, suggest
from effnet.search.tables import pareto_front

TINY = SearchSettings(data="demo", resolution=32, width=0.25, depth=0.25, max_steps=2)


def fake_top1(config, run_dir, settings):
    """Stands in for training: a deterministic accuracy from the architecture (wider and deeper is better)."""
    return 40.0 + sum(s.channels * s.layers for s in config.stages) / 100.0


def die_once_in_t001(config, run_dir, settings):
    """Kills its own process the first time slot t001 runs (a worker lost mid-trial), then behaves."""
    marker = run_dir.parent.parent / "killed-once"
    if run_dir.name == "t001" and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return fake_top1(config, run_dir, settings)


def sampled_params(space, n, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(suggest(trial, space))
        study.tell(trial, 0.0)
    return out


def test_every_sampled_architecture_builds_counts_and_has_its_choices():
    space = SearchSpace()
    base = space.base_config()
    for params in sampled_params(space, 12):
        config = decode(params, space).replace(resolution=32)
        model = meta_model(config, num_classes=10)
        n_params, macs = count_params(model), count_macs(model, 32)
        assert n_params > 0 and macs > 0
        for i, stage in enumerate(model.stages):
            blocks = list(stage)
            assert len(blocks) == base.stages[i].layers + params[f"s{i}_layers"]
            for block in blocks:
                assert isinstance(block, MBConv)
                assert block.dw.conv.kernel_size == (params[f"s{i}_kernel"],) * 2
                assert isinstance(block.expand, torch.nn.Identity) == (params[f"s{i}_expand"] == 1)
                assert isinstance(block.se, SqueezeExcite) == (params[f"s{i}_se_ratio"] > 0)
                if not params[f"s{i}_skip"]:
                    assert not block.has_shortcut
            assert blocks[-1].project.bn.num_features % 8 == 0  # channels rounded to 8 as in every EfficientNet


def test_encode_decode_round_trip_and_b0_is_in_the_space(tmp_path):
    space = SearchSpace()
    for params in sampled_params(space, 40, seed=1):
        config = decode(params, space)
        assert encode(config, space) == params
        path = tmp_path / "arch.json"
        config.save(path)
        assert encode(get_config(str(path)), space) == params
    b0 = get_config("b0")
    b0_params = encode(b0, space)
    assert b0_params["s0_expand"] == 1 and b0_params["s2_kernel"] == 5 and b0_params["s5_width"] == 1.0
    assert model_cost(decode(b0_params, space)) == model_cost(b0) == (5_288_548, model_cost(b0)[1])
    # One-layer stages cannot lose their layer, so no two parameter sets name the same network.
    assert stage_choices(space, 0)["layers"] == (0, 1) and stage_choices(space, 1)["layers"] == (-1, 0, 1)
    with pytest.raises(ValueError, match="not in the space"):
        encode(b0.replace(stages=(b0.stages[0].__class__(2, 3, 1, 16, 1),) + b0.stages[1:]), space)


def test_objective_against_hand_values():
    assert objective_value(80.0, 400e6, 400e6) == 80.0
    assert objective_value(80.0, 800e6, 400e6) == pytest.approx(80.0 * 0.952638, rel=1e-6)  # 2 ** -0.07
    assert objective_value(50.0, 200e6, 400e6, w=-0.15) == pytest.approx(50.0 * 1.109569, rel=1e-6)  # 0.5 ** -0.15
    assert objective_value(70.0, 1e6, 4e6, w=0.0) == 70.0
    with pytest.raises(ValueError, match="target-macs must be > 0"):
        objective_value(80.0, 1e6, 0.0)
    with pytest.raises(ValueError, match="w must be <= 0"):
        objective_value(80.0, 1e6, 1e6, w=0.1)


def test_pareto_front_keeps_only_undominated_trials():
    records = [dict(trial=i, top1=t, macs=m) for i, (t, m) in enumerate([(50, 10), (60, 20), (55, 25), (70, 30),
                                                                           (40, 5), (float("nan"), 1)])]
    assert [r["trial"] for r in pareto_front(records)] == [4, 0, 1, 3]


def slots(study):
    return [t.user_attrs[shared_study.SLOT] for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))]


def test_two_worker_processes_complete_every_trial_once(tmp_path):
    result = run_nas(TINY, SearchSpace(), tmp_path, trials=6, workers=2, heartbeat_s=1, train_fn=fake_top1,
                     log=lambda s: None, plot=False)
    study = optuna.load_study(study_name="nas", storage=shared_study.default_storage(tmp_path))
    assert sorted(slots(study)) == [f"t{i:03d}" for i in range(6)]  # no duplicate, no loss
    assert len(study.trials) == 6 and len(result.ranked) == 6
    values = [r["value"] for r in result.ranked]
    assert values == sorted(values, reverse=True)
    for r in result.ranked:
        config = get_config("b0").replace(**{k: v for k, v in r["config"].items() if k != "stages"})
        assert r["value"] == pytest.approx(objective_value(r["top1"], r["macs"], result.target))
        assert r["top1"] == fake_top1(decode(r["arch"], SearchSpace()), None, None) and config.resolution == 32
    # Rerunning finds everything done; asking for more trials extends the study by exactly that many.
    again = run_nas(TINY, SearchSpace(), tmp_path, trials=8, heartbeat_s=1, train_fn=fake_top1, log=lambda s: None,
                    plot=False)
    assert len(again.ranked) == 8 and sorted(slots(study)) == [f"t{i:03d}" for i in range(8)]


def test_a_killed_worker_trial_is_detected_by_heartbeat_and_retried(tmp_path):
    run_nas(TINY, SearchSpace(), tmp_path, trials=1, heartbeat_s=1, train_fn=fake_top1, log=lambda s: None,
            plot=False)  # creates the study; t000 done
    spec = shared_study.StudySpec(name="nas", storage=shared_study.default_storage(tmp_path), heartbeat_s=1)
    shared_study.prepare(spec, [(f"t{i:03d}", {}) for i in range(4)], optuna.load_study(
        study_name="nas", storage=spec.storage).user_attrs["settings"])
    objective = NasObjective(TINY, SearchSpace(), 1e6, -0.07, 10, tmp_path, die_once_in_t001)
    worker = multiprocessing.get_context("spawn").Process(target=shared_study._worker_main, args=(spec, objective, 1))
    worker.start()
    worker.join()
    assert worker.exitcode == -signal.SIGKILL
    study = optuna.load_study(study_name="nas", storage=spec.storage)
    dead = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert [t.user_attrs[shared_study.SLOT] for t in dead] == ["t001"]

    result = run_nas(TINY, SearchSpace(), tmp_path, trials=4, heartbeat_s=1, train_fn=fake_top1, log=lambda s: None,
                     plot=False)
    assert sorted(slots(study)) == ["t000", "t001", "t002", "t003"] and len(result.ranked) == 4
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert [t.number for t in failed] == [dead[0].number]
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == dead[0].number)
    assert retry.state == optuna.trial.TrialState.COMPLETE and retry.params == dead[0].params


def test_interrupted_nas_resumes_and_different_settings_are_refused(tmp_path):
    calls = []

    def interrupt_third(config, run_dir, settings):
        calls.append(run_dir.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fake_top1(config, run_dir, settings)

    with pytest.raises(KeyboardInterrupt):
        run_nas(TINY, SearchSpace(), tmp_path, trials=4, train_fn=interrupt_third, log=lambda s: None, plot=False)
    result = run_nas(TINY, SearchSpace(), tmp_path, trials=4, train_fn=interrupt_third, log=lambda s: None)
    assert calls == ["t000", "t001", "t002", "t003", "t002"]  # the interrupted trial is retried, nothing else
    assert len(result.ranked) == 4 and result.plot_path.read_bytes()[:4] == b"\x89PNG"
    changed = SearchSettings(**{**TINY.__dict__, "max_steps": 3})
    with pytest.raises(ValueError, match="different settings"):
        run_nas(changed, SearchSpace(), tmp_path, trials=4, train_fn=fake_top1, log=lambda s: None, plot=False)


def test_journal_storage_shares_a_study(tmp_path):
    storage = f"journal://{tmp_path / 'shared' / 'journal.log'}"
    run_nas(TINY, SearchSpace(), tmp_path / "a", trials=2, storage=storage, study_name="s", train_fn=fake_top1,
            log=lambda s: None, plot=False)
    joined = run_nas(TINY, SearchSpace(), tmp_path / "b", trials=3, storage=storage, study_name="s",
                     train_fn=fake_top1, log=lambda s: None, plot=False)
    assert sorted(r["slot"] for r in joined.ranked) == ["t000", "t001", "t002"]


def test_nas_demo_end_to_end_and_the_best_is_a_first_class_model(tmp_path, one_thread, capsys):
    out = tmp_path / "nas"
    assert main(["nas", "--data", "demo", "--out", str(out), "--trials", "2", "--max-steps", "2",
                 "--base-width", "0.25", "--base-depth", "0.25"]) == 0
    printed = capsys.readouterr().out
    assert "objective" in printed and "pareto" in printed
    best = out / "best.json"
    assert (out / "nas.png").read_bytes()[:4] == b"\x89PNG"
    config = get_config(str(best))
    model = create_model(str(best), num_classes=10)
    assert model.config == config and config.resolution == 32
    assert main(["train", "--data", "demo", "--model", str(best), "--epochs", "1", "--max-steps", "1", "--batch-size",
                 "8", "--no-progress", "--threads", "1", "--workers", "0", "--out", str(tmp_path / "train")]) == 0
    assert "final top-1" in capsys.readouterr().out
    assert main(["info", str(best), "--stages"]) == 0
    assert "MBConv" in capsys.readouterr().out
    assert main(["scale", "--model", str(best), "--phi", "1", "--save", str(tmp_path / "scaled.json")]) == 0
    scaled = get_config(str(tmp_path / "scaled.json"))
    assert scaled.stages == config.stages and scaled.depth > config.depth and scaled.resolution > 32
    result = run_search(SearchSettings(data="demo", model=str(best)), tmp_path / "abg",
                        [Coefficients(1.2, 1.1, 1.15), Coefficients(1.0, 1.0, 1.4)],
                        train_fn=fake_top1, log=lambda s: None, plot=False)
    assert {r["key"] for r in result.ranked} == {"a1.2-b1.1-g1.15", "a1-b1-g1.4"}
    assert all(r["config"]["stages"][0]["skip"] == config.stages[0].skip for r in result.ranked)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # Unknown space keys, T <= 0, w > 0, an unreachable storage and an empty folder: tests/test_misuse.py.
        (["--space", "SPACE"], "unknown key(s) ['kernels']"),
        (["--workers", "0"], "--trials and --workers must be >= 1"),
        (["--trials", "0"], "--trials and --workers must be >= 1"),
    ],
)
def test_bad_nas_input_is_one_line(tmp_path, capsys, extra, message):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"kernels": [3]}))
    args = ["nas", "--data", "demo", "--out", str(tmp_path / "o"), "--max-steps", "1"]
    assert main(args + [str(space) if a == "SPACE" else a for a in extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_space_file_overrides_and_rejects(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"kernel": [3], "expand": [6], "base": "b0"}))
    space = load_space(path)
    assert space.choices["kernel"] == (3,) and space.choices["se_ratio"] == (0.0, 0.25)
    assert all(v in (6,) for k, v in sampled_params(space, 3)[0].items() if k.endswith("_expand"))
    path.write_text(json.dumps({"kernel": []}))
    with pytest.raises(ValueError, match="non-empty list"):
        load_space(path)


def test_a_seeded_search_is_reproducible(tmp_path):
    runs = [run_nas(TINY, SearchSpace(), tmp_path / name, trials=5, train_fn=fake_top1, log=lambda s: None,
                    plot=False) for name in ("a", "b")]
    archs = [[r["arch"] for r in sorted(run.ranked, key=lambda r: r["trial"])] for run in runs]
    assert archs[0] == archs[1] and len({json.dumps(a, sort_keys=True) for a in archs[0]}) == 5


def test_a_test_split_is_read_as_the_held_out_split(tmp_path):
    """CIFAR-10's layout (train/ and test/, no val/): the final comparisons evaluate on test/."""
    from PIL import Image

    from effnet.data.folders import find_splits

    for split in ("train", "test"):
        for label in ("cat", "dog"):
            (tmp_path / split / label).mkdir(parents=True)
            Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / split / label / "0.png")
    splits = find_splits(tmp_path)
    assert splits.classes == ["cat", "dog"]
    assert [p for p, _ in splits.val] == [str(tmp_path / "test" / c / "0.png") for c in ("cat", "dog")]
