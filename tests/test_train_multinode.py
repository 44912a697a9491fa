"""Training across two "nodes": two separate `torchrun --nnodes 2` commands on loopback, as on two machines.

The same tiny run three ways: one plain process (the reference), two nodes of one rank each, and two
nodes where a rank is SIGKILLed mid-epoch under `--max-restarts 1`. BatchNorm runs on running statistics
(`--freeze-bn`, see test_train_ddp.py: per-rank batch statistics would legitimately differ from one
process) and the tiny model has no dropout, so the two-node runs must follow the reference's loss curve
and end at its weights up to float summation order (tolerance stated below).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from _train_utils import TINY, write_digits
from _wait import wait_for
from effnet.training import checkpoint

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds worker processes in /proc")

EPOCHS, STEPS_PER_EPOCH = 3, 3  # 24 training images, global batch 8


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("multinode")
    data = write_digits(root / "data")
    model = root / "tiny.json"
    TINY.save(model)
    args = ["train", str(data), "--model", str(model), "--epochs", str(EPOCHS), "--batch-size", "8",
            "--image-size", "16", "--lr", "0.05", "--warmup-epochs", "0", "--freeze-bn", "--device", "cpu",
            "--workers", "0", "--threads", "1", "--no-progress", "--seed", "0", "--augment", "randaugment"]
    reference = root / "one"
    proc = subprocess.run([sys.executable, "-m", "effnet", *args, "--out", str(reference)], capture_output=True,
                          text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr
    return root, args, _final(reference)


def _env():
    # The agents' rendezvous store is not handed to the workers: a restarted round builds a fresh one
    # (a shared store from the first round breaks the second rendezvous after a lost rank).
    return {**os.environ, "OMP_NUM_THREADS": "1", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}


def _final(run_dir):
    state, _ = checkpoint.load_latest(run_dir / "checkpoints")
    return state


def _node(port, args, out, *extra):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "effnet-test", *extra,
           "-m", "effnet", *args, "--out", str(out), "--resume"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _children(pid):
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _finish(procs):
    results = [p.communicate(timeout=600) for p in procs]  # a hang guard, not a timing assertion
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
    return "".join(out + err for out, err in results)


def _assert_same_run(state, reference):
    assert state["step"] == reference["step"] == EPOCHS * STEPS_PER_EPOCH
    assert [h["epoch"] for h in state["history"]] == list(range(1, EPOCHS + 1))  # none lost, none repeated
    assert state["world_size"] == 2
    for got, want in zip(state["history"], reference["history"]):  # the global mean loss of each epoch
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-4, abs=1e-6)
        assert got["val_top1"] == pytest.approx(want["val_top1"], abs=1e-6)
    moved = 0
    for key, want in reference["model"].items():
        if want.is_floating_point():
            err = (state["model"][key] - want).abs().max().item()
            assert err <= 1e-3 * want.abs().max().item() + 1e-5, (key, err)  # summation-order noise only
            moved += 1
    assert moved > 30


def test_two_nodes_train_like_one_process(setup, tmp_path):
    _, args, reference = setup
    port = _free_port()
    out = tmp_path / "two"
    printed = _finish([_node(port, args, out), _node(port, args, out)])
    assert "2 process(es)" in printed
    _assert_same_run(_final(out), reference)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (setup[0] / "one").iterdir())


def test_a_rank_killed_mid_epoch_restarts_from_the_last_checkpoint(setup, tmp_path):
    _, args, reference = setup
    port = _free_port()
    out = tmp_path / "elastic"
    nodes = [_node(port, [*args, "--checkpoint-every", "1"], out, "--max-restarts", "1") for _ in range(2)]
    ckpts = out / "checkpoints"

    def mid_epoch_checkpoint():
        assert all(n.poll() is None for n in nodes), "the job ended before epoch 2"
        steps = [checkpoint.checkpoint_step(p) for p in checkpoint.list_checkpoints(ckpts)]
        return [s for s in steps if STEPS_PER_EPOCH < s < 2 * STEPS_PER_EPOCH]

    wait_for(mid_epoch_checkpoint, "a checkpoint in epoch 2", guard_s=600)
    workers = [w for n in nodes for w in _children(n.pid)]
    victim = workers[-1]
    os.kill(victim, signal.SIGKILL)
    printed = _finish(nodes)
    assert "resumed from" in printed, printed
    state = _final(out)
    _assert_same_run(state, reference)
