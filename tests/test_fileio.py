"""Atomic writes: a failed write leaves the previous file and no temporary behind."""

import pytest

from effnet.fileio import atomic_path, atomic_write_text, effnet_home


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
