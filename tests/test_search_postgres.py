"""Searches on a real PostgreSQL server (a throwaway cluster, tests/_postgres.py): commands on several
"machines" sharing one study, a worker killed mid-trial, the server restarted or gone while workers run.

Trials train for real (`effnet nas` on the embedded digits, one step of a quarter-size network at 32 px):
the point is the machinery between processes and the server, so each trial is as small as a trial gets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from _postgres import Cluster, find_bin_dir
from effnet.search import engine
from effnet.search.nas import run_nas
from effnet.search.space import SearchSpace

NAS = ("nas", "--data", "demo", "--max-steps", "1", "--batch-size", "8", "--epochs", "1", "--base-width", "0.25",
       "--base-depth", "0.25", "--threads", "1")
DONE = optuna.trial.TrialState.COMPLETE


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("psycopg", reason="pip install 'effnet[postgres]'")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql; .ci/run does)")
    c = Cluster(bin_dir)
    yield c
    c.close()


def start(args, env=None):
    return subprocess.Popen([sys.executable, "-m", "effnet", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)  # a hang guard, not a timing assertion
    return proc.returncode, out, err


def wait_for(condition, what, timeout=300):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


def trials(url, name):
    try:
        return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    except KeyError:  # not created yet
        return []


def assert_each_slot_done_once(url, name, n):
    done = sorted(t.user_attrs[engine.SLOT] for t in trials(url, name) if t.state == DONE)
    assert done == [f"t{i:03d}" for i in range(n)]


def test_two_commands_share_one_study_and_a_killed_worker_is_retried(cluster, tmp_path):
    """Two `effnet nas` commands (two machines) with two workers each; one worker is SIGKILLed mid-trial."""
    url = cluster.create_db("shared")
    args = [*NAS, "--storage", url, "--study", "mine", "--workers", "2", "--trials", "4", "--heartbeat", "1"]
    a, b = start([*args, "--out", tmp_path / "a"]), start([*args, "--out", tmp_path / "b"])
    commands = {a.pid, b.pid}

    def spawned_worker_mid_trial():  # a spawned worker (not a command's own process) with a RUNNING trial
        for t in trials(url, "mine"):
            pid = int(t.user_attrs.get(engine.WORKER, ":0").rsplit(":", 1)[1])
            if t.state == optuna.trial.TrialState.RUNNING and pid and pid not in commands:
                return t.number, pid
        return None

    number, pid = wait_for(spawned_worker_mid_trial, "a spawned worker running a trial")
    os.kill(pid, signal.SIGSTOP)  # frozen: it cannot finish the trial between our look and the kill
    state = next(t.state for t in trials(url, "mine") if t.number == number)
    os.kill(pid, signal.SIGKILL)
    assert state == optuna.trial.TrialState.RUNNING
    results = [finish(a), finish(b)]
    for code, _, err in results:
        assert code == 0 and "Traceback" not in err, err
    assert_each_slot_done_once(url, "mine", 4)
    all_trials = trials(url, "mine")
    assert [t.number for t in all_trials if t.state == optuna.trial.TrialState.FAIL] == [number]
    retry = next(t for t in all_trials if t.system_attrs.get("failed_trial") == number)
    # the retry keeps what the killed attempt had sampled (the sampler fills in the rest)
    assert retry.state == DONE and all_trials[number].params.items() <= retry.params.items()
    assert len(all_trials) == 5  # 4 slots + the killed attempt: no slot enqueued twice by the two commands
    workers = {t.user_attrs[engine.WORKER] for t in all_trials}
    assert len(workers) >= 3  # both commands' processes took part
    from effnet import create_model

    for out in ("a", "b"):  # each command saved the study's best, and it builds
        best = tmp_path / out / "best.json"
        assert create_model(str(best), num_classes=10).config.resolution == 32
    assert (tmp_path / "a" / "best.json").read_text() == (tmp_path / "b" / "best.json").read_text()
    assert "s3cret" not in results[0][1] + results[0][2]  # the password is never printed


def test_server_restart_while_workers_run_reconnects(cluster, tmp_path):
    """The server goes away for 3 s mid-search: workers say so in one line each, reconnect and finish."""
    url = cluster.create_db("restart")
    proc = start([*NAS, "--storage", url, "--study", "r", "--workers", "2", "--trials", "4", "--heartbeat", "3",
                  "--out", tmp_path / "o"])
    wait_for(lambda: any(t.state == optuna.trial.TrialState.RUNNING for t in trials(url, "r")), "a running trial")
    cluster.stop()  # "fast": the server closes every connection
    time.sleep(3)
    cluster.start()
    code, out, err = finish(proc)
    assert code == 0 and "Traceback" not in err, err
    lost = [line for line in err.splitlines() if "lost connection to study storage" in line]
    back = [line for line in err.splitlines() if "reconnected to study storage" in line]
    assert lost and back, err
    assert "postgresql://effnet:***@127.0.0.1" in lost[0] and "s3cret" not in err
    assert_each_slot_done_once(url, "r", 4)


def stop_the_server_in_t001(config, run_dir, settings):
    """Stands in for training; the database server goes away (for good) during slot t001."""
    if run_dir.name == "t001" and not (run_dir.parent / "stopped").exists():
        (run_dir.parent / "stopped").touch()
        CLUSTER[0].stop()
    return 42.0 + config.stages[0].channels / 100


CLUSTER = []


def test_server_gone_longer_than_the_window_exits_2_and_the_rerun_resumes(cluster, tmp_path, monkeypatch, capsys):
    from effnet.cli import _error_text

    url = cluster.create_db("gone")
    CLUSTER[:] = [cluster]
    monkeypatch.setenv("EFFNET_RECONNECT_S", "2")
    tiny = dict(trials=3, storage=url, study_name="g", heartbeat_s=1, log=print, plot=False)
    from effnet.search.grid import SearchSettings

    settings = SearchSettings(data="demo", resolution=32, width=0.25, depth=0.25, max_steps=1)
    with pytest.raises(ValueError) as lost:
        run_nas(settings, SearchSpace(), tmp_path, train_fn=stop_the_server_in_t001, **tiny)
    message = _error_text(lost.value)
    assert "unreachable for 2 s" in message and "rerun the same command" in message and "s3cret" not in message
    assert len(message.splitlines()) == 1
    cluster.start()
    result = run_nas(settings, SearchSpace(), tmp_path, train_fn=stop_the_server_in_t001, **tiny)
    assert sorted(r["slot"] for r in result.ranked) == ["t000", "t001", "t002"]
    assert_each_slot_done_once(url, "g", 3)


def test_wrong_password_is_one_line(cluster, tmp_path, capsys):
    from effnet.cli import main

    url = cluster.url("postgres", password="not-the-password")
    assert main([*NAS, "--storage", url, "--study", "x", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "password authentication failed" in err, err
    assert "check USER:PASSWORD" in err and "not-the-password" not in err and "effnet:***@" in err
    assert not (tmp_path / "o").exists() or not any(Path(tmp_path / "o").rglob("*.db"))
