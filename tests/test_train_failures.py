"""A run that fails before its first checkpoint leaves nothing that blocks its rerun; a batch of one
image that would reach BatchNorm with one value per channel is refused before anything is written."""

from __future__ import annotations

import pytest

from _train_utils import tiny_kwargs, write_digits
from effnet.training import TrainConfig, loop, train


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_digits(tmp_path_factory.mktemp("digits"), per_class=4)


def _cfg(data, out, **kw):
    return TrainConfig(**tiny_kwargs(data, out, **{"epochs": 1, "batch_size": 4, "tensorboard": True, **kw}))


def fail_in_first_step(monkeypatch):
    def step(self, images, labels):
        raise RuntimeError("the first step failed")

    monkeypatch.setattr(loop.TrainingRun, "_train_step", step)


def test_batch_of_one_at_a_1x1_map_is_refused_before_anything_is_written(data, tmp_path):
    """It failed in the first step with PyTorch's "Expected more than 1 value per channel when training",
    leaving a run folder that refused the rerun."""
    run = tmp_path / "new" / "run"
    with pytest.raises(ValueError, match=r"^one image per step at 16 px leaves BatchNorm one value per channel.*"
                                         r"use --batch-size 2 or more, or --freeze-bn \(an incomplete last batch is "
                                         r"already dropped\)$"):
        train(_cfg(data, run, batch_size=1))
    assert not (tmp_path / "new").exists()
    # the way out it names works: frozen BatchNorm trains on one image per step
    assert train(_cfg(data, run, batch_size=1, freeze_bn=True, max_steps=2, tensorboard=False)).steps == 2


def test_a_larger_image_trains_one_image_per_step(data, tmp_path):
    """At 64 px the last map is 2x2: four values per channel, nothing to refuse."""
    result = train(_cfg(data, tmp_path / "run", batch_size=1, image_size=64, max_steps=1, tensorboard=False))
    assert result.steps == 1


def test_failure_before_the_first_checkpoint_removes_what_the_run_created(data, tmp_path, monkeypatch):
    fail_in_first_step(monkeypatch)
    run = tmp_path / "runs" / "a" / "run"
    with pytest.raises(RuntimeError, match="the first step failed"):
        train(_cfg(data, run))
    assert not (tmp_path / "runs").exists()  # the folders the run made, up to the first that existed

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    with pytest.raises(RuntimeError, match="the first step failed"):
        train(_cfg(data, mine, overwrite=True))
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]  # the user's folder and file stay

    monkeypatch.undo()
    assert train(_cfg(data, run, max_steps=1)).steps == 1  # the rerun is not refused as "not empty"


def test_ctrl_c_before_the_first_step_keeps_nothing_and_says_start_again(data, tmp_path, monkeypatch):
    def step(self, images, labels):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop.TrainingRun, "_train_step", step)
    with pytest.raises(KeyboardInterrupt, match="no checkpoint was written; rerun the same command to start again"):
        train(_cfg(data, tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_a_folder_holding_only_a_killed_runs_leftovers_is_taken(data, tmp_path):
    """A run killed (SIGKILL, power loss) in its first steps could not clean up: tensorboard/ and an empty
    checkpoints/ with a dead writer's temporary are its own leftovers, not another run."""
    run = tmp_path / "run"
    (run / "tensorboard").mkdir(parents=True)
    (run / "tensorboard" / "events.out.tfevents.1764745000.host.4242.0").write_bytes(b"\x00" * 40)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / ".effnet-tmp-ckpt-s000000006.pt-4242-0badcafe.tmp").write_bytes(b"PK half")
    assert train(_cfg(data, run, max_steps=1, tensorboard=False)).steps == 1
    assert not (run / "tensorboard").exists()

    other = tmp_path / "other"
    (other / "tensorboard").mkdir(parents=True)
    (other / "tensorboard" / "my-notes.txt").write_text("not a leftover")
    with pytest.raises(RuntimeError, match="is not empty"):
        train(_cfg(data, other, max_steps=1))


def test_a_fresh_search_trial_says_nothing_about_a_missing_checkpoint(data, tmp_path, capsys):
    """nas/search train every trial with resume=True, quiet=True: each new trial printed "no checkpoint ...
    starting from scratch". A user's own --resume of an empty folder is still told."""
    train(_cfg(data, tmp_path / "trial", resume=True, quiet=True, max_steps=1, tensorboard=False))
    assert "no checkpoint" not in capsys.readouterr().out
    train(_cfg(data, tmp_path / "mine", resume=True, quiet=False, max_steps=1, tensorboard=False))
    assert "no checkpoint in" in capsys.readouterr().out
