"""Nothing lost: SIGKILL mid-epoch then --resume gives the uninterrupted run's weights;
corrupt checkpoints are skipped by name; a NaN loss stops the run and keeps the last good checkpoint."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _train_utils import tiny_kwargs, write_digits
from effnet.training import TrainConfig, TrainingDiverged, train
from effnet.training.checkpoint import list_checkpoints, load_checkpoint, load_latest, save_checkpoint

STEPS_PER_EPOCH = 6  # 3 classes x 8 images / batch 4
KILL_BEFORE_SAVING = STEPS_PER_EPOCH + 3  # step 9 is trained, then the process dies before it is saved
RUN = """
import json, os, signal, sys
sys.path.insert(0, {tests!r})
from _train_utils import tiny_kwargs
from effnet.training import TrainConfig, checkpoint, train

save = checkpoint.save_checkpoint

def save_or_die(state, folder, step, *args, **kwargs):
    if step == {kill_step}:  # the trainer calls this after every step (checkpoint_every_steps=1)
        os.kill(os.getpid(), signal.SIGKILL)
    return save(state, folder, step, *args, **kwargs)

checkpoint.save_checkpoint = save_or_die
kw = json.loads(sys.argv[1])
train(TrainConfig(**tiny_kwargs(kw.pop("data"), kw.pop("out"), **kw)))
"""


def _kwargs(data, out, **kw):
    return dict(data=str(data), out=str(out), epochs=3, batch_size=4, checkpoint_every_steps=1, keep_checkpoints=2,
                drop_connect=0.2, dropout=0.2, **kw)


def _final_state(run_dir):
    state = load_checkpoint(list_checkpoints(Path(run_dir) / "checkpoints")[-1])
    return state


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    data = write_digits(tmp_path / "data")
    script = RUN.format(tests=str(Path(__file__).parent), kill_step=KILL_BEFORE_SAVING)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    kill_dir = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(_kwargs(data, kill_dir))], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    resume_from, path = load_latest(kill_dir / "checkpoints")
    # The killed run had trained step 9 in memory; the newest checkpoint is step 8, mid-way through epoch 2.
    assert path.name == f"ckpt-s{KILL_BEFORE_SAVING - 1:09d}.pt"
    assert (resume_from["epoch"], resume_from["batch_in_epoch"]) == (1, KILL_BEFORE_SAVING - 1 - STEPS_PER_EPOCH)

    kw = _kwargs(data, kill_dir, resume=True)
    resumed = train(TrainConfig(**tiny_kwargs(kw.pop("data"), kw.pop("out"), **kw)))
    kw = _kwargs(data, tmp_path / "straight")
    straight = train(TrainConfig(**tiny_kwargs(kw.pop("data"), kw.pop("out"), **kw)))

    assert resumed.steps == straight.steps == 3 * STEPS_PER_EPOCH
    a, b = _final_state(kill_dir), _final_state(tmp_path / "straight")
    for key in b["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in b["ema"]["module"]:
        assert torch.equal(a["ema"]["module"][key], b["ema"]["module"][key]), key
    assert resumed.final_top1 == straight.final_top1
    assert len(list_checkpoints(kill_dir / "checkpoints")) == 2  # keep_checkpoints


def test_corrupt_checkpoint_is_reported_and_previous_used(tmp_path):
    folder = tmp_path / "ckpts"
    for step in (1, 2, 3):
        save_checkpoint({"model": {"w": torch.full((3,), float(step))}, "step": step}, folder, step, keep=2)
    assert [p.name for p in list_checkpoints(folder)] == ["ckpt-s000000002.pt", "ckpt-s000000003.pt"]
    newest = list_checkpoints(folder)[-1]
    newest.write_bytes(newest.read_bytes()[:40])  # truncated, as by a crash during a copy
    with pytest.warns(UserWarning, match=r"ckpt-s000000003\.pt is corrupt or truncated"):
        state, path = load_latest(folder)
    assert path.name == "ckpt-s000000002.pt" and state["step"] == 2
    assert not list(folder.glob("*.tmp"))


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    data = write_digits(tmp_path / "data")
    # An absurd learning rate makes the weights overflow within a few steps.
    cfg = TrainConfig(**tiny_kwargs(data, tmp_path / "run", epochs=3, batch_size=4, lr=1e30, warmup_epochs=0,
                                    checkpoint_every_steps=1, keep_checkpoints=3, ema=False))
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf).*last good checkpoint is .*ckpt-s0000000\d\d\.pt"):
        train(cfg)
    state, path = load_latest(tmp_path / "run" / "checkpoints")
    assert state["step"] >= 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_worker_processes_do_not_change_the_result(tmp_path):
    """Augmentation is seeded per sample, so loading in 2 worker processes gives the same weights."""
    data = write_digits(tmp_path / "data")
    (data / "train" / "1" / "bad.png").write_bytes(b"not a png")
    a = train(TrainConfig(**tiny_kwargs(data, tmp_path / "a", workers=2)))
    b = train(TrainConfig(**tiny_kwargs(data, tmp_path / "b", workers=0)))
    assert a.skipped_files == b.skipped_files and "bad.png" in a.skipped_files[0]
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sb)
