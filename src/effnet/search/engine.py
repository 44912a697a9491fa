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
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

# The heartbeat API and its retry callback are marked experimental; Optuna's per-study INFO lines are noise here.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)

DEFAULT_HEARTBEAT_S = 20
MAX_RETRIES = 3
SLOT = "slot"
RECORD = "record"

Objective = Callable[[optuna.Trial], dict[str, Any]]


class JournalHeartbeatStorage(optuna.storages.JournalStorage, BaseHeartbeat):
    """Optuna's journal storage with the heartbeat its RDB storage has (Optuna 5 gives the journal none).

    The beat is a trial system attribute holding the writer's clock: workers on different machines need
    clocks in step to well within the grace period.
    """

    def __init__(self, path: str, interval: int, grace: int) -> None:
        super().__init__(optuna.storages.journal.JournalFileBackend(path))
        self._interval, self._grace = interval, grace
        self._callback = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, "heartbeat", time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        return [t._trial_id for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
                if now - t.system_attrs.get("heartbeat", t.datetime_start.timestamp()) > self._grace]

    def get_heartbeat_interval(self) -> int:
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None]:
        return self._callback


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

    def open_storage(self) -> optuna.storages.BaseStorage:
        if self.heartbeat_s < 1:
            raise ValueError(f"--heartbeat must be a whole number of seconds >= 1, got {self.heartbeat_s}")
        grace = 2 * self.heartbeat_s
        try:
            if self.storage.startswith("journal://"):
                path = self.storage.removeprefix("journal://")
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                return JournalHeartbeatStorage(path, self.heartbeat_s, grace)
            engine = {"connect_args": {"timeout": 60}} if self.storage.startswith("sqlite") else {}
            return optuna.storages.RDBStorage(
                self.storage, engine_kwargs=engine, heartbeat_interval=self.heartbeat_s, grace_period=grace,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES))
        except Exception as exc:  # noqa: BLE001 - drivers raise anything; the user needs one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"cannot open study storage {self.storage!r}: {first}; give a reachable database "
                             "URL (sqlite:///FILE, postgresql://..., mysql://...) or journal:///PATH") from None

    def make_sampler(self, trial_number: int = 0) -> optuna.samplers.BaseSampler:
        """The sampler for one trial, seeded with seed + trial number: whichever worker, on whatever machine,
        samples trial n draws the same random numbers, and no two trials share them (one seed per process
        would give two workers the same random startup trials)."""
        if self.sampler == "grid":
            return QueuedGridSampler(self.grid, seed=self.seed)
        # constant_liar: a running trial counts as a poor result, so parallel workers spread out.
        return optuna.samplers.TPESampler(multivariate=True, n_startup_trials=self.startup_trials,
                                          seed=self.seed + trial_number, constant_liar=True)

    def open(self) -> optuna.Study:
        return optuna.create_study(study_name=self.name, storage=self.open_storage(), direction="maximize",
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
    study = spec.open()
    settings = _json_normal(settings)
    stored = study.user_attrs.get("settings")
    if stored is None:
        study.set_user_attr("settings", settings)
    elif stored != settings:
        raise ValueError(f"study {spec.name!r} in {spec.storage} was made with different settings "
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
                return optuna.Trial(study, frozen._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Beat every ``heartbeat_interval`` seconds while the trial runs (Optuna's optimize loop does the same)."""
    storage = study._storage
    stop = threading.Event()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial._trial_id)
            if stop.wait(storage.get_heartbeat_interval()):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def work(spec: StudySpec, objective: Objective, worker: int = 0, log: Callable[[str], None] = print) -> int:
    """Run queued trials until none is queued or running; returns how many this worker completed.

    The objective returns the trial's record (a JSON-able dict with ``value``, the number maximised; NaN for a
    run that diverged, which is kept and ranked last). An exception fails the trial and re-enqueues it, then
    propagates (Ctrl-C included): the rerun retries it.
    """
    study = spec.open()
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
        trial.set_user_attr(RECORD, _json_normal(record))
        value = record["value"]
        study.tell(trial, -1e9 if math.isnan(value) else value)  # kept COMPLETE, ranked last; NaN would FAIL it
        done += 1
        log(f"  trial {trial.number} ({trial.user_attrs.get(SLOT)}): {value:.3f} in {record.get('seconds', 0):.0f} s")


def _fail_and_retry(study: optuna.Study, trial: optuna.Trial) -> None:
    study.tell(trial, state=TrialState.FAIL)
    RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)(study, study._storage.get_trial(trial._trial_id))


def _worker_main(spec: StudySpec, objective: Objective, worker: int) -> None:
    work(spec, objective, worker, log=lambda s: None)


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
