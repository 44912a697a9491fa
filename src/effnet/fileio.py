"""Files that are never half-written, and where effnet keeps its cache."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def effnet_home() -> Path:
    """``$EFFNET_HOME`` when set, else the platform's user cache folder for effnet."""
    env = os.environ.get("EFFNET_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("effnet"))


TEMP_PREFIX = ".effnet-tmp-"  # temporaries are named TEMP_PREFIX + "<destination name>-<pid>-<8 hex>" + suffix


def _temp_stem(path: Path) -> str:
    """TEMP_PREFIX and the destination's name, cut to 200 bytes so that the temporary's name fits in 255."""
    return TEMP_PREFIX + path.name.encode()[:200].decode(errors="ignore") + "-"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporaries of writes to ``path`` whose process is gone (killed mid-write); return them.

    Only names of the exact form ``atomic_path`` gives are considered, and only for this destination;
    a temporary whose process still runs (a concurrent writer) is left alone.
    """
    path = Path(path)
    pattern = re.compile(r"(\d+)-[0-9a-f]{8}(\.[^-]*)?")  # pid, token, suffix: nothing of a longer name fits
    prefix = _temp_stem(path)
    removed = []
    try:
        names = [n for n in os.listdir(path.parent) if n.startswith(prefix)]
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name[len(prefix):])
        if match and int(match[1]) != os.getpid() and not _pid_is_alive(int(match[1])):
            stale = path.parent / name
            with contextlib.suppress(FileNotFoundError):
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale)
                else:
                    stale.unlink()
                removed.append(stale)
    return removed


def _create_temporary(path: Path, suffix: str, folder: bool = False) -> Path:
    """A new empty file (or folder) beside ``path``, created as ``open()`` (``mkdir``) would: mode 0666
    (0777) less the umask."""
    while True:
        tmp = path.parent / f"{_temp_stem(path)}{os.getpid()}-{secrets.token_hex(4)}{suffix}"
        try:
            if folder:
                os.mkdir(tmp, 0o777)
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:  # name the folder that cannot be written, not the temporary
            raise type(exc)(exc.errno, exc.strerror, str(path.parent)) from exc


def _mode_for(path: Path, tmp: Path) -> int:
    """The permissions the written file gets: those of the file it replaces, else the new temporary's
    (created with 0666, the kernel took the umask off: no need to read the process-wide umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return stat.S_IMODE(os.stat(tmp).st_mode)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, move it into place.

    The temporary file is fsynced, renamed over ``path`` (atomic on POSIX) and the folder fsynced,
    so a crash leaves either the old file or the complete new one. If the block raises, the
    temporary file is removed and ``path`` is untouched. Keep ``suffix`` when a writer picks its
    format from the file name (``.png``, ``.onnx``).

    The result has the permissions a plain ``open(path, "w")`` gives: a replaced file keeps its
    mode, a new one gets 0666 less the umask. Temporaries are named ``.effnet-tmp-NAME-PID-XXXXXXXX``
    so they can be recognised; those left by a killed process are removed by the next write to
    the same ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = _create_temporary(path, suffix)
    mode = _mode_for(path, tmp)
    try:
        try:
            yield tmp
        except OSError as exc:
            if str(exc.filename) != str(tmp):
                raise
            # "out.onnx: no space left on device", not the temporary's name
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        os.chmod(tmp, mode)  # also when the writer replaced the temporary with a file of its own
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync(path.parent)


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a new empty folder beside ``path`` to fill; when the block succeeds, rename it to ``path``.

    If ``path`` already holds a folder by then (another process finished first), that one is kept and
    the new one dropped. A failed block leaves nothing; a killed one leaves a temporary folder that the
    next ``atomic_folder(path)`` removes, as :func:`atomic_path` does for files.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = _create_temporary(path, "", folder=True)
    try:
        yield tmp
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.is_dir():
                raise
        else:
            _fsync(path.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:  # noqa: ANN401 - a matplotlib Figure
    """Write a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
