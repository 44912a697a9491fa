"""Where a study lives: an SQLite file, a database server (PostgreSQL, MySQL) or a journal file.

URLs: ``postgresql://USER:PASSWORD@HOST:PORT/DB`` runs on psycopg 3 (``pip install effnet[postgres]``;
SQLAlchemy's default PostgreSQL driver is psycopg2, which effnet does not install), ``postgres://`` is
read the same way, ``mysql://`` and ``sqlite:///FILE`` go to SQLAlchemy as given, ``journal:///PATH`` is
Optuna's journal file on a shared file system. A password never appears in a message: :func:`redact`.

A database server can go away while workers run (a restart, a failover, a network blip). The storage
then *reconnects*: every storage call that fails on a lost connection is retried, with growing pauses, for
``EFFNET_RECONNECT_S`` seconds (default 60), and the worker says so in one line on stderr (and one more when
it is back). A transaction the server did not commit was rolled back by it, so a retried call never leaves
half a write. Past that window the worker stops with :class:`StorageLostError` (one line, exit 2): the study
is intact, its running trials are retried by the heartbeat, and rerunning the same command resumes it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

MAX_RETRIES = 3  # a trial whose worker died is run again at most this often
DEFAULT_RECONNECT_S = 60
# The heartbeat and its retry callback are marked experimental; they are what makes lost workers safe here.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
URL_FORMS = "sqlite:///FILE, postgresql://USER:PASSWORD@HOST:PORT/DB, mysql://... or journal:///PATH"


class StorageLostError(ValueError):
    """The database server stayed unreachable for the whole reconnect window (a one-line CLI error)."""


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (for every message and printed line)."""
    if url.startswith("journal://"):
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy can parse: hide everything between :// and @
        scheme, sep, rest = url.partition("://")
        return f"{scheme}{sep}***@{rest.rpartition('@')[2]}" if "@" in rest else url


def normalize_url(url: str) -> str:
    """The URL SQLAlchemy should open: PostgreSQL on psycopg 3; refuses schemes that are no database."""
    if url.startswith("journal://"):
        return url
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError(f"--storage {redact(url)!r} is not a database URL; give {URL_FORMS}") from None
    backend = parsed.get_backend_name()
    if backend == "postgres":  # Heroku's and libpq's spelling; SQLAlchemy 1.4+ dropped the alias
        parsed, backend = parsed.set(drivername="postgresql"), "postgresql"
    if backend not in ("sqlite", "postgresql", "mysql", "mariadb", "oracle", "mssql"):
        raise ValueError(f"--storage {redact(url)!r}: unknown database {backend!r}; give {URL_FORMS}")
    if backend == "postgresql" and parsed.get_driver_name() in ("psycopg2", ""):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ValueError("--storage postgresql://... needs the psycopg driver: pip install 'effnet[postgres]'") \
                from None
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def first_line(exc: BaseException) -> str:
    """The driver's own first line (psycopg's 'connection refused', 'password authentication failed')."""
    orig = getattr(exc, "orig", None) or exc.__cause__ or exc
    orig = getattr(orig, "orig", None) or orig
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return lines[0] if lines else type(orig).__name__


def is_connection_error(exc: BaseException) -> bool:
    """A lost or refused connection, anywhere in the exception's chain (Optuna wraps SQLAlchemy's errors)."""
    import sqlalchemy.exc as sa

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (sa.OperationalError, sa.InterfaceError)):
            return True
        if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
            return True
        if type(exc).__module__.startswith("psycopg") and type(exc).__name__ in ("OperationalError", "InterfaceError"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _reconnecting(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: ReconnectingRDBStorage, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        if getattr(self._depth, "n", 0):  # an inner call: the outermost one retries the whole operation
            return method(self, *args, **kwargs)
        self._depth.n = 1
        try:
            return self._retry(method, args, kwargs)
        finally:
            self._depth.n = 0

    return call


class ReconnectingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage whose calls survive a database server restart (see the module docstring)."""

    def __init__(self, url: str, *, reconnect_s: float, log: Callable[[str], None], **kwargs: Any) -> None:  # noqa: ANN401
        self._reconnect_s, self._log, self._depth = reconnect_s, log, threading.local()
        self._lost_since: float | None = None
        self._lost_lock = threading.Lock()
        super().__init__(url, **kwargs)

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        for key in ("_depth", "_lost_lock", "_log"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        state.update(_depth=threading.local(), _lost_lock=threading.Lock(), _log=_stderr_line)
        super().__setstate__(state)

    def _retry(self, method: Callable[..., Any], args: tuple, kwargs: dict) -> Any:  # noqa: ANN401
        pause = 0.5
        while True:
            try:
                result = method(self, *args, **kwargs)
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                with self._lost_lock:
                    if self._lost_since is None:
                        self._lost_since = time.monotonic()
                        self._log(f"effnet: lost connection to study storage {redact(self.url)} ({first_line(exc)}); "
                                  f"reconnecting for up to {self._reconnect_s:g} s")
                    waited = time.monotonic() - self._lost_since
                if waited >= self._reconnect_s:
                    raise StorageLostError(
                        f"study storage {redact(self.url)} unreachable for {waited:.0f} s ({first_line(exc)}); the "
                        "study is intact: rerun the same command once the server is back to resume it") from None
                time.sleep(min(pause, max(0.0, self._reconnect_s - waited)))
                pause = min(2 * pause, 2.0)
                continue
            if self._lost_since is not None:
                with self._lost_lock:
                    if self._lost_since is not None:
                        self._log(f"effnet: reconnected to study storage {redact(self.url)} after "
                                  f"{time.monotonic() - self._lost_since:.0f} s")
                        self._lost_since = None
            return result


# Every operation that talks to the database: the public ones and the private ones Optuna's cache layer calls
# (``_set_trial_param``, ``_get_trials`` ...); helpers handed an open session run inside one of those.
for _name, _method in list(vars(optuna.storages.RDBStorage).items()):
    if (inspect.isfunction(_method) and not _name.startswith("__")
            and "session" not in inspect.signature(_method).parameters):
        setattr(ReconnectingRDBStorage, _name, _reconnecting(_method))


class JournalHeartbeatStorage(optuna.storages.JournalStorage, BaseHeartbeat):
    """Optuna's journal storage with the heartbeat its RDB storage has (Optuna 5 gives the journal none).

    The beat is a trial system attribute holding the writer's clock: workers on different machines need
    clocks in step to well within the grace period.
    """

    def __init__(self, path: str, interval: int, grace: int,
                 callback: Callable[[optuna.Study, FrozenTrial], None]) -> None:
        super().__init__(optuna.storages.journal.JournalFileBackend(path))
        self._interval, self._grace, self._callback = interval, grace, callback

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


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def reconnect_window() -> float:
    value = os.environ.get("EFFNET_RECONNECT_S", str(DEFAULT_RECONNECT_S))
    try:
        return max(0.0, float(value))
    except ValueError:
        raise ValueError(f"EFFNET_RECONNECT_S must be a number of seconds, got {value!r}") from None


def open_storage(url: str, heartbeat_s: int, log: Callable[[str], None] = _stderr_line,
                 wait: bool = False) -> optuna.storages.BaseStorage:
    """The storage behind ``url`` with a heartbeat every ``heartbeat_s`` s (a trial silent for 2x that is retried).

    Opening fails fast (one line naming the URL without its password): a wrong host or password at the start
    is the user's to fix, not a blip to wait out. ``wait`` is for a worker joining a search that is already
    running: a refused connection there is the server restarting, waited out like a lost one.
    """
    started, said = time.monotonic(), False
    while True:
        try:
            return _open_storage(url, heartbeat_s, log)
        except ValueError as exc:
            cause = exc.__context__
            if not (wait and cause is not None and is_connection_error(cause)):
                raise
            waited = time.monotonic() - started
            if waited >= reconnect_window():
                raise StorageLostError(f"study storage {redact(url)} unreachable for {waited:.0f} s "
                                       f"({first_line(cause)}); the study is intact: rerun the same command once "
                                       "the server is back to resume it") from None
            if not said:
                log(f"effnet: cannot reach study storage {redact(url)} ({first_line(cause)}); "
                    f"retrying for up to {reconnect_window():g} s")
                said = True
            time.sleep(1.0)


def _open_storage(url: str, heartbeat_s: int, log: Callable[[str], None]) -> optuna.storages.BaseStorage:
    if heartbeat_s < 1:
        raise ValueError(f"--heartbeat must be a whole number of seconds >= 1, got {heartbeat_s}")
    grace = 2 * heartbeat_s
    callback = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)
    target = normalize_url(url)
    try:
        if target.startswith("journal://"):
            path = target.removeprefix("journal://")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            return JournalHeartbeatStorage(path, heartbeat_s, grace, callback)
        common = dict(heartbeat_interval=heartbeat_s, grace_period=grace, heartbeat_stale_trial_callback=callback)
        if target.startswith("sqlite"):
            return optuna.storages.RDBStorage(target, engine_kwargs={"connect_args": {"timeout": 60}}, **common)
        engine = {"pool_pre_ping": True}  # a connection the server dropped is replaced on checkout
        if target.startswith("postgresql"):
            engine["connect_args"] = {"connect_timeout": 10}  # an unreachable host fails in seconds, not minutes
        return ReconnectingRDBStorage(target, reconnect_s=reconnect_window(), log=log, engine_kwargs=engine, **common)
    except Exception as exc:  # noqa: BLE001 - drivers raise anything; the user needs one line
        raise open_error(url, exc) from None


def open_error(url: str, exc: BaseException) -> ValueError:
    """One line: the URL without its password, the driver's reason, the fix."""
    reason = first_line(exc)
    fix = ("check USER:PASSWORD in the URL" if "authentication failed" in reason else
           f"give a reachable database URL ({URL_FORMS})")
    return ValueError(f"cannot open study storage {redact(url)!r}: {reason}; {fix}")


@contextlib.contextmanager
def exclusive(url: str, name: str) -> Iterator[None]:
    """One process at a time, on any machine, between enter and exit (for a study's check-then-enqueue).

    Two commands started together on two machines would otherwise both find a slot missing and both
    enqueue it. A database server holds the lock (PostgreSQL's advisory lock, MySQL's GET_LOCK; released
    by the server if the holder dies); an SQLite or journal file is locked with flock.
    """
    target = normalize_url(url)
    if target.startswith(("postgresql", "mysql", "mariadb")):
        import zlib

        import sqlalchemy

        key = zlib.crc32(f"effnet-study:{name}".encode())
        connect_args = {"connect_timeout": 10} if target.startswith("postgresql") else {}
        engine = sqlalchemy.create_engine(target, poolclass=sqlalchemy.pool.NullPool, connect_args=connect_args)
        try:
            conn = engine.connect()
        except Exception as exc:  # noqa: BLE001 - the same one line as opening the storage
            raise open_error(url, exc) from None
        postgres = target.startswith("postgresql")
        try:
            lock = "SELECT pg_advisory_lock(:k)" if postgres else "SELECT GET_LOCK(:n, 600)"
            conn.execute(sqlalchemy.text(lock), dict(k=key, n=str(key)))
            conn.commit()
            yield
        finally:
            with contextlib.suppress(Exception):  # a lost connection released the lock already
                unlock = "SELECT pg_advisory_unlock(:k)" if postgres else "SELECT RELEASE_LOCK(:n)"
                conn.execute(sqlalchemy.text(unlock), dict(k=key, n=str(key)))
            conn.close()
            engine.dispose()
        return
    path = target.removeprefix("journal://") if target.startswith("journal://") else _sqlite_path(target)
    if path is None or not Path(path).parent.is_dir():
        yield  # in memory, or a folder that does not exist: opening the storage will say so
        return
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # SQLite and the journal both take an empty file as new
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def _sqlite_path(target: str) -> str | None:
    from sqlalchemy.engine import make_url

    database = make_url(target).database
    return None if not database or database == ":memory:" else database
