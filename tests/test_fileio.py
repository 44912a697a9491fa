"""Atomic writes: a failed write leaves the previous file and no temporary behind; written files get
the permissions open() would give; a killed writer's temporary is recognisable and cleaned up."""

import errno
import os
import signal
import stat
import subprocess
import sys

import pytest

from effnet.fileio import (
    TEMP_PREFIX,
    atomic_folder,
    atomic_path,
    atomic_write_text,
    effnet_home,
    remove_stale_temporaries,
)


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_failed_write_keeps_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer crashed")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_effnet_home_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFNET_HOME", str(tmp_path))
    assert effnet_home() == tmp_path
    monkeypatch.delenv("EFFNET_HOME")
    assert effnet_home().name == "effnet"


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_new_file_gets_the_umask_permissions_of_a_plain_open(tmp_path, umask_027):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() gives under this umask: 0640
    atomic_write_text(tmp_path / "atomic.txt", "x")
    assert stat.S_IMODE((tmp_path / "atomic.txt").stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o640


def test_replaced_file_keeps_its_mode(tmp_path, umask_027):
    target = tmp_path / "a.txt"
    target.write_text("old")
    for mode in (0o644, 0o600, 0o755):
        target.chmod(mode)
        atomic_write_text(target, "new")
        assert stat.S_IMODE(target.stat().st_mode) == mode


def test_mode_holds_when_the_writer_replaces_the_temporary(tmp_path, umask_027):
    # Some writers delete and recreate the path they are given (here: with mode 0600, as mkstemp would).
    target = tmp_path / "a.bin"
    with atomic_path(target) as tmp:
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"data")
        os.close(fd)
    assert target.read_bytes() == b"data" and stat.S_IMODE(target.stat().st_mode) == 0o640


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporary_is_named_after_destination_and_process(tmp_path):
    with atomic_path(tmp_path / "model.onnx", suffix=".onnx") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".onnx"
        assert tmp.name.startswith(f"{TEMP_PREFIX}model.onnx-{os.getpid()}-")
        tmp.write_text("x")


def test_temporary_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    """A writer SIGKILLed mid-write leaves its temporary; the next write to that path removes it."""
    target = tmp_path / "model.onnx"
    code = ("import os, signal, sys\n"
            "from effnet.fileio import atomic_path\n"
            "with atomic_path(sys.argv[1], suffix='.onnx') as tmp:\n"
            "    tmp.write_bytes(b'half an export')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(f"{TEMP_PREFIX}model.onnx-{proc.pid}-") and left.read_bytes() == b"half an export"
    atomic_write_text(target, "complete")
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"] and target.read_text() == "complete"


def test_only_dead_writers_temporaries_of_that_destination_are_removed(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    names = {
        f"{TEMP_PREFIX}a.txt-{dead}-0123abcd.tmp": False,  # this destination, writer gone: removed
        f"{TEMP_PREFIX}a.txt-{alive}-0123abcd.tmp": True,  # a writer that still runs
        f"{TEMP_PREFIX}a.txt-{os.getpid()}-0123abcd.tmp": True,  # this process (another thread's write)
        f"{TEMP_PREFIX}a.txt-{dead}-{dead}-0123abcd.tmp": True,  # the temporary of "a.txt-<digits>"
        f"{TEMP_PREFIX}b.txt-{dead}-0123abcd.tmp": True,  # another destination
        f".a.txt.{dead}.tmp": True,  # not ours
    }
    for name in names:
        (tmp_path / name).write_text("x")
    removed = remove_stale_temporaries(tmp_path / "a.txt")
    assert [p.name for p in removed] == [n for n, kept in names.items() if not kept]
    assert {p.name for p in tmp_path.iterdir()} == {n for n, kept in names.items() if kept}


def test_unwritable_folder_is_named_in_the_error(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    if os.geteuid() == 0:  # root writes into read-only folders: refuse the way the kernel would
        real_open = os.open

        def refuse_in_folder(name, *args, **kwargs):
            if os.path.dirname(name) == str(folder):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(name))
            return real_open(name, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse_in_folder)
    try:
        with pytest.raises(PermissionError) as info, atomic_path(folder / "a.txt"):
            pass
        assert info.value.filename == str(folder)
    finally:
        folder.chmod(0o700)


def test_a_name_at_the_length_limit_still_gets_a_temporary(tmp_path):
    target = tmp_path / ("n" * 250 + ".onnx")  # 255 bytes: the temporary's name must be shortened
    with atomic_path(target, suffix=".onnx") as tmp:
        assert len(tmp.name.encode()) <= 255
        tmp.write_text("x")
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    assert remove_stale_temporaries(target) == []


def test_write_error_names_the_destination_not_the_temporary(tmp_path):
    target = tmp_path / "a.txt"
    with pytest.raises(OSError, match="No space left") as info, atomic_path(target) as tmp:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []


def test_atomic_folder_appears_whole_with_umask_permissions(tmp_path, umask_027):
    target = tmp_path / "set"
    with atomic_folder(target) as tmp:
        (tmp / "a").mkdir()
        (tmp / "a" / "x.txt").write_text("x")
        assert not target.exists()
    assert (target / "a" / "x.txt").read_text() == "x"
    assert stat.S_IMODE(target.stat().st_mode) == 0o750  # mkdtemp gave 0700
    assert [p.name for p in tmp_path.iterdir()] == ["set"]


def test_atomic_folder_keeps_a_folder_another_process_finished_first_and_cleans_up_failures(tmp_path):
    target = tmp_path / "set"
    with atomic_folder(target) as tmp:
        (tmp / "mine.txt").write_text("mine")
        target.mkdir()
        (target / "theirs.txt").write_text("theirs")
    assert [p.name for p in target.iterdir()] == ["theirs.txt"]
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "other") as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("writer crashed")
    assert [p.name for p in tmp_path.iterdir()] == ["set"]


def test_killed_folder_writer_is_cleaned_up_by_the_next_one(tmp_path):
    stale = tmp_path / f"{TEMP_PREFIX}set-{_dead_pid()}-0123abcd"
    (stale / "train").mkdir(parents=True)
    (stale / "train" / "1.png").write_bytes(b"half")
    with atomic_folder(tmp_path / "set") as tmp:
        (tmp / "done").write_text("yes")
    assert [p.name for p in tmp_path.iterdir()] == ["set"]
