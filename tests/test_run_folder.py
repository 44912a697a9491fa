"""A run folder holds one run: never overwritten unasked, locked against a second writer, resumed only
by the same model on the same classes; checkpoints that cannot be written keep the previous one."""

import errno
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _train_utils import tiny_kwargs, write_digits
from effnet.training import TrainConfig, train
from effnet.training.checkpoint import CheckpointWriteError, list_checkpoints, load_latest, save_checkpoint
from effnet.training.run_folder import RunFolder, RunFolderError

TESTS = str(Path(__file__).parent)


def _digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_digits(tmp_path_factory.mktemp("digits"))


def _cfg(data, out, **kw):
    return TrainConfig(**tiny_kwargs(data, out, **{"epochs": 1, "batch_size": 4, **kw}))


def test_second_run_into_a_used_folder_is_refused_and_changes_nothing(data, tmp_path):
    run = tmp_path / "run"
    train(_cfg(data, run))
    before = _digest(run)
    assert "model.safetensors" in before and "metrics.csv" in before
    with pytest.raises(RunFolderError, match=r"is not empty \(checkpoints, .*--resume.*--overwrite"):
        train(_cfg(data, run, seed=1))
    assert _digest(run) == before


def test_overwrite_replaces_the_old_run_and_keep_1_keeps_the_new_checkpoint(data, tmp_path):
    """The old run has the higher step numbers; --keep 1 used to delete the new run's checkpoint."""
    run = tmp_path / "run"
    train(_cfg(data, run, epochs=2, keep_checkpoints=1))  # ends at step 12
    (run / "notes.txt").write_text("mine")
    result = train(_cfg(data, run, epochs=1, keep_checkpoints=1, overwrite=True, seed=1))  # ends at step 6
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["ckpt-s000000006.pt"]
    assert result.checkpoint.name == "ckpt-s000000006.pt"
    assert (run / "notes.txt").read_text() == "mine"  # --overwrite removes the run's files only
    assert len((run / "metrics.csv").read_text().splitlines()) == 2  # header + the new run's one epoch
    state, _ = load_latest(run / "checkpoints")
    assert state["config"]["seed"] == 1


def test_saving_an_earlier_step_removes_the_abandoned_later_checkpoints(tmp_path):
    for step in (5, 6, 7):
        save_checkpoint({"model": {}, "step": step}, tmp_path, step, keep=3)
    save_checkpoint({"model": {}, "step": 3}, tmp_path, 3, keep=1)  # resumed from an earlier checkpoint
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-s000000003.pt"]
    assert load_latest(tmp_path)[0]["step"] == 3


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(data, tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from effnet.training.run_folder import RunFolder; "
         f"RunFolder({str(run)!r}).claim(False, False); print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(RunFolderError, match=r"in use by another effnet train; wait for it"):
            train(_cfg(data, run))
        assert not (run / "checkpoints").exists()
    finally:
        holder.stdin.close()
        holder.wait(60)
    RunFolder(run).claim(False, False).release()  # free again once the holder is gone


def test_a_killed_run_leaves_no_stale_lock(tmp_path):
    run = tmp_path / "run"
    code = ("import os, signal; from effnet.training.run_folder import RunFolder; "
            f"RunFolder({str(run)!r}).claim(False, False); os.kill(os.getpid(), signal.SIGKILL)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == -signal.SIGKILL
    RunFolder(run).claim(False, False).release()  # the kernel dropped the dead process's lock


def test_resume_refuses_another_model_or_other_classes_in_one_short_line(data, tmp_path):
    run = tmp_path / "run"
    train(_cfg(data, run))
    with pytest.raises(ValueError, match=r"another model \(dropout 0\.0 -> 0\.3\)") as info:
        train(_cfg(data, run, resume=True, dropout=0.3))
    assert len(str(info.value)) < 300
    more = write_digits(tmp_path / "more", classes=(0, 1, 2, 3))
    with pytest.raises(ValueError, match=r"trained on 3 classes, the data has 4 \(new 3\)") as info:
        train(_cfg(more, run, resume=True))
    assert len(str(info.value)) < 300


def test_missing_resume_file_is_called_missing_not_corrupt(data, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pt: no such file"):
        train(_cfg(data, tmp_path / "run", resume=str(tmp_path / "nope.pt")))


def test_out_that_is_a_file_is_refused(data, tmp_path):
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(RunFolderError, match=r"taken is a file, not a folder"):
        train(_cfg(data, tmp_path / "taken" / "run"))
    assert (tmp_path / "taken").read_text() == "a file"


def test_a_checkpoint_that_cannot_be_written_keeps_the_previous_one(data, tmp_path, monkeypatch):
    """A full disk at step 3: the error names the reason and the kept checkpoint; resuming finishes the run."""
    run = tmp_path / "run"
    real_save = torch.save

    def save_until_disk_full(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("step") == 3:
            f.write(b"PK\x03\x04 partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_disk_full)
    with pytest.raises(CheckpointWriteError, match=r"ckpt-s000000003\.pt \(no space left on device\); the previous "
                       r"one, .*ckpt-s000000002\.pt, is kept\. .*--out .*run --resume"):
        train(_cfg(data, run, checkpoint_every_steps=1, keep_checkpoints=2))
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["ckpt-s000000001.pt", "ckpt-s000000002.pt"]
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]  # no temporary left
    monkeypatch.setattr(torch, "save", real_save)
    resumed = train(_cfg(data, run, checkpoint_every_steps=1, keep_checkpoints=2, resume=True))
    assert resumed.steps == 6


def test_weights_that_cannot_be_written_at_the_end_point_to_the_checkpoint(data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    write_bytes = Path.write_bytes

    def disk_full_for_the_weights(self, payload):
        if "model.safetensors" in self.name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_bytes(self, payload)

    monkeypatch.setattr(Path, "write_bytes", disk_full_for_the_weights)
    with pytest.raises(RuntimeError, match=r"could not write the weights to .*run \(no space left on device\); the "
                       r"checkpoint .*ckpt-s000000006\.pt holds the trained run; .*--resume"):
        train(_cfg(data, run))
    assert not (run / "model.safetensors").exists()
    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    resumed = train(_cfg(data, run, resume=True))
    assert resumed.steps == 6 and resumed.weights_file.is_file() and len(resumed.history) == 1


SIGINT_AT_STEP = """
import os, signal, sys
from effnet.cli import main
from effnet.training import loop

# A shell starts background jobs (CI scripts, `cmd &`) with SIGINT ignored, and Python then keeps it
# ignored; a terminal's Ctrl-C reaches a foreground process with Python's handler, which is the case tested.
signal.signal(signal.SIGINT, signal.default_int_handler)

step = loop.TrainingRun._train_step

def step_then_ctrl_c(self, images, labels):
    loss = step(self, images, labels)
    if self.progress.step == 2:  # Ctrl-C arrives while step 3 trains
        os.kill(os.getpid(), signal.SIGINT)
    return loss

loop.TrainingRun._train_step = step_then_ctrl_c
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_saves_at_the_step_says_how_to_resume_and_resumes_exactly(data, tmp_path):
    model = tmp_path / "tiny.json"
    from _train_utils import TINY

    TINY.save(model)
    argv = ["train", str(data), "--model", str(model), "--image-size", "16", "--epochs", "2", "--batch-size", "4",
            "--workers", "0", "--no-progress", "--threads", "1", "--seed", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", SIGINT_AT_STEP, *argv, "--out", str(run)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 130, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("effnet")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"interrupted at epoch 1, step 3; checkpoint {run}/checkpoints/ckpt-s000000003.pt saved; rerun the same " \
           f"command with --out {run} --resume" in lines[0]
    assert not (run / "model.safetensors").exists()

    from effnet.cli import main

    assert main([*argv, "--out", str(run), "--resume"]) == 0
    assert main([*argv, "--out", str(tmp_path / "straight")]) == 0
    from safetensors.torch import load_file

    a, b = load_file(run / "model.safetensors"), load_file(tmp_path / "straight" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in b)


@pytest.mark.parametrize("field,value,message", [
    ("epochs", 0, "epochs must be a whole number >= 1, got 0"),
    ("epochs", -3, "epochs must be a whole number >= 1, got -3"),
    ("image_size", 0, "image_size must be a whole number >= 1, got 0; leave it out"),
    ("batch_size", 0, "batch_size must be a whole number >= 1"),
    ("batch_size", -8, "batch_size must be a whole number >= 1"),
    ("max_steps", 0, "max_steps must be a whole number >= 1"),
    ("checkpoint_every_steps", 0, "checkpoint_every_steps must be a whole number >= 1"),
    ("keep_checkpoints", -1, "keep_checkpoints must be a whole number >= 0"),
    ("lr", 0.0, "lr must be > 0"),
    ("overwrite", True, "resume and overwrite contradict"),
])
def test_nonsense_settings_are_refused_by_the_api(field, value, message):
    extra = {"resume": True} if field == "overwrite" else {}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**{field: value, **extra})


def test_one_class_data_is_refused(tmp_path):
    one = write_digits(tmp_path / "one", classes=(4,))
    with pytest.raises(ValueError, match=r"has one class \(4\): a classifier needs at least two"):
        train(_cfg(one, tmp_path / "run"))
    assert not (tmp_path / "run").exists()
