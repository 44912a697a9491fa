"""One engine for every search: an Optuna study that any number of worker processes and machines share.

Storage: an SQLite file in the run folder by default; ``--storage URL`` takes any database URL Optuna
accepts (``postgresql://...``, ``mysql://...``) or ``journal:///PATH``, Optuna's journal file on a shared
file system. ``--study NAME`` names the study, so workers on other machines join it.

Work is planned as *slots*: every slot is enqueued once as a WAITING trial (a grid point with its fixed
parameters, or an empty NAS trial whose parameters the sampler fills), and a worker claims one with the
storage's atomic WAITING -> RUNNING update, the same one ``Study.ask`` uses. Claiming only queued trials
(``ask`` would create a new trial when the queue is empty) is what makes the count exact: a study of N slots
ends with exactly one COMPLETE trial per slot, however many workers race for them. A running trial beats a
heartbeat into the storage; a worker that dies (kill -9, a lost machine) stops beating, and the next worker
to look fails its trial and re-enqueues it with the same parameters (Optuna's heartbeat with
``RetryHeartbeatStaleTrialCallback``). An interrupted study resumes: rerun the same command.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from effnet.search import storage
from effnet.search.storage import MAX_RETRIES

# The heartbeat API and its retry callback are marked experimental; Optuna's per-study INFO lines are noise here.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)

DEFAULT_HEARTBEAT_S = 20
SLOT = "slot"
RECORD = "record"
WORKER = "worker"

Objective = Callable[[optuna.Trial], dict[str, Any]]


class QueuedGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler for a grid whose points arrive as queued trials (one per slot).

    Its ``after_trial`` stops ``Study.optimize`` when the grid looks exhausted, reading a ``grid_id`` that
    queued trials do not carry; the workers here stop when the queue is empty instead, so it does nothing.
    """

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:  # noqa: ANN401
        return None


@dataclass(frozen=True)
class StudySpec:
    """Where a study lives and how it samples; picklable, so worker processes open it themselves."""

    name: str
    storage: str
    sampler: str = "tpe"  # "tpe" or "grid"
    seed: int = 0
    startup_trials: int = 10
    grid: dict[str, list[Any]] = field(default_factory=dict)
    heartbeat_s: int = DEFAULT_HEARTBEAT_S

    @property
    def where(self) -> str:
        """The storage URL for messages: its password, if any, replaced by ***."""
        return storage.redact(self.storage)

    def open_storage(self, wait: bool = False) -> optuna.storages.BaseStorage:
        return storage.open_storage(self.storage, self.heartbeat_s, wait=wait)

    def make_sampler(self, trial_number: int = 0) -> optuna.samplers.BaseSampler:
        """The sampler for one trial, seeded with seed + trial number: whichever worker, on whatever machine,
        samples trial n draws the same random numbers, and no two trials share them (one seed per process
        would give two workers the same random startup trials)."""
        if self.sampler == "grid":
            return QueuedGridSampler(self.grid, seed=self.seed)
        # constant_liar: a running trial counts as a poor result, so parallel workers spread out.
        return optuna.samplers.TPESampler(multivariate=True, n_startup_trials=self.startup_trials,
                                          seed=self.seed + trial_number, constant_liar=True)

    def open(self, wait: bool = False) -> optuna.Study:
        return optuna.create_study(study_name=self.name, storage=self.open_storage(wait), direction="maximize",
                                   sampler=self.make_sampler(), load_if_exists=True)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:  # noqa: ANN401
    if not isinstance(value, dict):
        return {prefix: value}
    return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}.{key}" if prefix else str(key)).items()}


def _differences(stored: Any, now: dict[str, Any], shown: int = 4) -> str:  # noqa: ANN401
    """``key: stored -> now`` for each setting that differs (nested keys dotted), the first ``shown`` of them."""
    old, new = _flat(stored), _flat(now)
    changed = [f"{k}: {old.get(k, '(unset)')!r} -> {new.get(k, '(unset)')!r}" for k in sorted(set(old) | set(new))
               if old.get(k) != new.get(k)]
    more = f"; and {len(changed) - shown} more" if len(changed) > shown else ""
    return "; ".join(changed[:shown]) + more


def prepare(spec: StudySpec, slots: list[tuple[str, dict[str, Any]]], settings: dict[str, Any]) -> optuna.Study:
    """Open (or create) the study, check it was made with ``settings``, and enqueue the slots it lacks.

    ``slots`` are ``(id, fixed parameters)``; a slot already in the study (in any state) is not enqueued
    again, so rerunning resumes and a larger plan extends the study.
    """
    with storage.exclusive(spec.storage, spec.name):  # two commands starting together enqueue each slot once
        return _prepare(spec, slots, settings)


def _prepare(spec: StudySpec, slots: list[tuple[str, dict[str, Any]]], settings: dict[str, Any]) -> optuna.Study:
    study = spec.open()
    settings = _json_normal(settings)
    stored = study.user_attrs.get("settings")
    if stored is None:
        study.set_user_attr("settings", settings)
    elif stored != settings:
        raise ValueError(f"study {spec.name!r} in {spec.where} was made with different settings "
                         f"({_differences(stored, settings)}); resume with the same options, or use another --out "
                         "folder or --study name")
    known = {t.user_attrs.get(SLOT) for t in study.get_trials(deepcopy=False)}
    for slot, params in slots:
        if slot not in known:
            study.enqueue_trial(params, user_attrs={SLOT: slot})
    return study


def _json_normal(value: Any) -> Any:  # noqa: ANN401
    import json

    return json.loads(json.dumps(value))


def claim(study: optuna.Study, spec: StudySpec) -> optuna.Trial | None:
    """A queued trial, now RUNNING in this worker; None when the queue is empty."""
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if study._storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                study.sampler = spec.make_sampler(frozen.number)
                trial = optuna.Trial(study, frozen._trial_id)
                trial.set_user_attr(WORKER, f"{socket.gethostname()}:{os.getpid()}")  # who runs it (dashboard, tests)
                return trial
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Beat every ``heartbeat_interval`` seconds while the trial runs (Optuna's optimize loop does the same)."""
    beats = study._storage
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                beats.record_heartbeat(trial._trial_id)
            except Exception:  # noqa: BLE001 - the server stayed away (said in one line); the trial's end reports it
                return
            if stop.wait(beats.get_heartbeat_interval()):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def work(spec: StudySpec, objective: Objective, worker: int = 0, log: Callable[[str], None] = print,
         joining: bool = False) -> int:
    """Run queued trials until none is queued or running; returns how many this worker completed.

    The objective returns the trial's record (a JSON-able dict with ``value``, the number maximised; NaN for a
    run that diverged, which is kept and ranked last). An exception fails the trial and re-enqueues it, then
    propagates (Ctrl-C included): the rerun retries it. A ``joining`` worker (spawned beside a running search)
    waits out a storage that refuses connections while it starts, as it would once running.
    """
    study = spec.open(wait=joining)
    done, waited = 0, False
    while True:
        fail_stale_trials(study)
        trial = claim(study, spec)
        if trial is None:
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not running:
                return done
            if not waited:
                log(f"worker {worker}: waiting for {len(running)} running trial(s) (other workers, or dead ones: "
                    f"retried once their heartbeat is {2 * spec.heartbeat_s} s old)")
                waited = True
            time.sleep(spec.heartbeat_s)
            continue
        waited = False
        with heartbeat(study, trial):
            try:
                record = objective(trial)
            except BaseException:
                _fail_and_retry(study, trial)
                raise
        value = record["value"]
        try:
            trial.set_user_attr(RECORD, _json_normal(record))
            study.tell(trial, -1e9 if math.isnan(value) else value)  # kept COMPLETE, ranked last; NaN would FAIL it
        except optuna.exceptions.UpdateFinishedTrialError:
            # Its heartbeat went stale (the database was away longer than the grace period) and another worker
            # failed and re-enqueued it: that copy is the slot's one result, this one is dropped.
            log(f"worker {worker}: trial {trial.number} was retried elsewhere while the storage was away; "
                "its result here is dropped")
            continue
        done += 1
        log(f"  trial {trial.number} ({trial.user_attrs.get(SLOT)}): {value:.3f} in {record.get('seconds', 0):.0f} s")


def _fail_and_retry(study: optuna.Study, trial: optuna.Trial) -> None:
    study.tell(trial, state=TrialState.FAIL)
    RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)(study, study._storage.get_trial(trial._trial_id))


def _worker_main(spec: StudySpec, objective: Objective, worker: int) -> None:
    try:
        work(spec, objective, worker, log=lambda s: None, joining=True)
    except storage.StorageLostError as exc:  # one line, like the main worker's, not a traceback
        print(f"effnet: worker {worker}: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


def run_workers(spec: StudySpec, objective: Objective, workers: int = 1, log: Callable[[str], None] = print) -> None:
    """This process is worker 0; ``workers - 1`` more run as spawned processes on the same storage."""
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(spec, objective, i), daemon=False) for i in range(1, workers)]
    for p in procs:
        p.start()
    try:
        work(spec, objective, 0, log)
    finally:
        for p in procs:
            p.join()


def completed(study: optuna.Study) -> list[dict[str, Any]]:
    """The record of every COMPLETE trial, with its trial number and slot."""
    return [dict(t.user_attrs[RECORD], trial=t.number, slot=t.user_attrs.get(SLOT))
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if RECORD in t.user_attrs]


def default_storage(out_dir: Path) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(out_dir / 'study.db').resolve()}"
