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
from pathlib import Path

import optuna
import pytest

from _postgres import Cluster, find_bin_dir
from _wait import wait_for
from effnet.search import shared_study
from effnet.search.grid import SearchSettings
from effnet.search.nas import run_nas
from effnet.search.space import SearchSpace
from effnet.search.storage import normalize_url

NAS = ("nas", "--data", "demo", "--max-steps", "1", "--batch-size", "8", "--epochs", "1", "--base-width", "0.25",
       "--base-depth", "0.25", "--threads", "1")
DONE = optuna.trial.TrialState.COMPLETE
SETTINGS = SearchSettings(data="demo", resolution=32, width=0.25, depth=0.25, max_steps=1)


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


_STORAGES = {}


def trials(url, name):
    """The study's trials, through one storage (one connection pool) per URL: polling opens no new connections."""
    if url not in _STORAGES:
        _STORAGES[url] = optuna.storages.RDBStorage(normalize_url(url))
    try:
        return optuna.load_study(study_name=name, storage=_STORAGES[url]).get_trials(deepcopy=False)
    except KeyError:  # not created yet
        return []


def assert_each_slot_done_once(url, name, n):
    done = sorted(t.user_attrs[shared_study.SLOT] for t in trials(url, name) if t.state == DONE)
    assert done == [f"t{i:03d}" for i in range(n)]


def test_two_commands_share_one_study_and_a_killed_worker_is_retried(cluster, tmp_path):
    """Two `effnet nas` commands (two machines) with two workers each; one worker is SIGKILLed mid-trial.

    The victim is whichever process runs a trial when we look: a spawned worker (its command carries on) or
    a command's own process (that "machine" is lost; the other command finishes the study).
    """
    url = cluster.create_db("shared")
    args = [*NAS, "--storage", url, "--study", "mine", "--workers", "2", "--trials", "4", "--heartbeat", "3"]
    commands = {"a": start([*args, "--out", tmp_path / "a"]), "b": start([*args, "--out", tmp_path / "b"])}

    def worker_mid_trial():
        assert all(p.poll() is None for p in commands.values()), "a command ended before any trial was seen"
        for t in trials(url, "mine"):
            if t.state == optuna.trial.TrialState.RUNNING and shared_study.WORKER in t.user_attrs:
                return t.number, int(t.user_attrs[shared_study.WORKER].rsplit(":", 1)[1])
        return None

    number, pid = wait_for(worker_mid_trial, "a worker running a trial")
    os.kill(pid, signal.SIGSTOP)  # frozen: it cannot finish the trial between our look and the kill
    state = next(t.state for t in trials(url, "mine") if t.number == number)
    os.kill(pid, signal.SIGKILL)
    assert state == optuna.trial.TrialState.RUNNING
    lost = [name for name, p in commands.items() if p.pid == pid]  # a command's own process, or none
    results = {name: finish(p) for name, p in commands.items()}
    for name, (code, out, err) in results.items():
        assert code == (-signal.SIGKILL if name in lost else 0) and "Traceback" not in err, err
        assert "s3cret" not in out + err  # the password is never printed
    assert_each_slot_done_once(url, "mine", 4)
    all_trials = trials(url, "mine")
    failed = [t.number for t in all_trials if t.state == optuna.trial.TrialState.FAIL]
    assert number in failed  # (on a machine loaded far past its cores a slow heartbeat can fail one more)
    killed = all_trials[number]
    done = next(t for t in all_trials if t.state == DONE and t.user_attrs[shared_study.SLOT] == killed.user_attrs[shared_study.SLOT])
    # the retry keeps what the killed attempt had sampled (the sampler fills in the rest)
    assert done.system_attrs.get("failed_trial") is not None and killed.params.items() <= done.params.items()
    assert len(all_trials) == 4 + len(failed)  # every extra trial is a retry: no slot enqueued twice by two commands
    from effnet import create_model

    saved = [(tmp_path / name / "best.json").read_text() for name in commands if name not in lost]
    assert saved and all(text == saved[0] for text in saved)  # every command ranks the one study the same
    best = tmp_path / [name for name in commands if name not in lost][0] / "best.json"
    assert create_model(str(best), num_classes=10).config.resolution == 32


def restart_the_server_in_t001(config, run_dir, settings):
    """Stands in for training; during slot t001 the database server goes away for 3 s and comes back."""
    from _postgres import restart_from_env

    if run_dir.name == "t001":
        restart_from_env(down_s=3)
    return 42.0 + config.stages[0].channels / 100


def test_server_restart_while_workers_run_reconnects(cluster, tmp_path, monkeypatch, capfd):
    """The server goes away for 3 s while two workers run: they say so in one line each, reconnect, finish."""
    url = cluster.create_db("restart")
    for key, value in cluster.env().items():
        monkeypatch.setenv(key, value)  # the spawned worker inherits it
    result = run_nas(SETTINGS, SearchSpace(), tmp_path, trials=4, workers=2, storage=url, study_name="r",
                     heartbeat_s=3, train_fn=restart_the_server_in_t001, log=print, plot=False)
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    lost = [line for line in err.splitlines() if "lost connection to study storage" in line]
    back = [line for line in err.splitlines() if "reconnected to study storage" in line]
    assert lost and len(back) == len(lost), err  # every worker that noticed came back
    assert "postgresql://effnet:***@127.0.0.1" in lost[0] and "s3cret" not in err
    assert sorted(r["slot"] for r in result.ranked) == ["t000", "t001", "t002", "t003"]
    assert_each_slot_done_once(url, "r", 4)


def stop_the_server_in_t001(config, run_dir, settings):
    """Stands in for training; the database server goes away (for good) during slot t001."""
    marker = run_dir.parent.parent / "stopped"
    if run_dir.name == "t001" and not marker.exists():
        marker.touch()
        CLUSTER[0].stop()
    return 42.0 + config.stages[0].channels / 100


CLUSTER = []


def test_server_gone_longer_than_the_window_exits_2_and_the_rerun_resumes(cluster, tmp_path, monkeypatch, capsys):
    from effnet.cli import _error_text

    url = cluster.create_db("gone")
    CLUSTER[:] = [cluster]
    monkeypatch.setenv("EFFNET_RECONNECT_S", "2")
    tiny = dict(trials=3, storage=url, study_name="g", heartbeat_s=1, log=print, plot=False)
    with pytest.raises(ValueError) as lost:
        run_nas(SETTINGS, SearchSpace(), tmp_path, train_fn=stop_the_server_in_t001, **tiny)
    message = _error_text(lost.value)
    assert "unreachable for 2 s" in message and "rerun the same command" in message and "s3cret" not in message
    assert len(message.splitlines()) == 1
    cluster.start()
    result = run_nas(SETTINGS, SearchSpace(), tmp_path, train_fn=stop_the_server_in_t001, **tiny)
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


def test_a_worker_joining_while_the_server_restarts_waits_for_it(cluster, monkeypatch):
    """A spawned worker opens the storage when the server happens to be down: it waits (one line), a first
    command (no ``wait``) still fails fast. CI caught the spawned worker's traceback once, when its start fell
    inside the restart test's 3 s outage."""
    import threading

    from effnet.search.storage import StorageLostError, open_storage

    url = cluster.create_db("joining")
    monkeypatch.setenv("EFFNET_RECONNECT_S", "60")
    lines: list[str] = []
    cluster.stop()
    back = threading.Timer(2.0, cluster.start)
    try:
        with pytest.raises(ValueError, match="cannot open study storage") as refused:
            open_storage(url, 3)
        assert not isinstance(refused.value, StorageLostError)
        back.start()
        storage = open_storage(url, 3, log=lines.append, wait=True)
    finally:
        if back.is_alive() or back.finished.is_set():
            back.join()
        else:
            cluster.start()
    assert len(lines) == 1 and "retrying for up to 60 s" in lines[0] and "***" in lines[0], lines
    optuna.create_study(study_name="joined", storage=storage)
    monkeypatch.setenv("EFFNET_RECONNECT_S", "1")
    cluster.stop()
    try:
        with pytest.raises(StorageLostError, match="unreachable for"):
            open_storage(url, 3, log=lines.append, wait=True)
    finally:
        cluster.start()
