"""Downloads against a loopback HTTP server: verified into the cache, or nothing left behind."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from effnet.weights import hub
from effnet.weights.registry import Preprocessing, WeightSet

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        if self.path.startswith("/cut"):
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection drops mid-file
            return
        self.wfile.write(PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def weight_set(url, **hashes):
    return WeightSet("test/w", "b0", "timm", Preprocessing(224, 0.875), url=url, filename="w-1234.pth", **hashes)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFNET_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "weights"


def test_good_file_lands_in_cache_verified(server, cache):
    path = hub.fetch_weight_set(weight_set(f"{server}/w.pth", sha256=SHA), progress=False)
    assert path == cache / "w-1234.pth"
    assert path.read_bytes() == PAYLOAD
    assert list(cache.iterdir()) == [path]
    # the prefix form (torchvision/timm file names) verifies too, and a second call uses the cache
    assert hub.fetch_weight_set(weight_set(f"{server}/gone", sha256_prefix=SHA[:8]), progress=False) == path


def test_wrong_hash_is_rejected_and_nothing_kept(server, cache):
    with pytest.raises(hub.DownloadError, match="expected 00000000"):
        hub.fetch_weight_set(weight_set(f"{server}/w.pth", sha256_prefix="00000000"), progress=False)
    assert list(cache.iterdir()) == []


def test_cut_connection_is_an_error_and_nothing_kept(server, cache):
    with pytest.raises(hub.DownloadError):
        hub.fetch_weight_set(weight_set(f"{server}/cut", sha256=SHA), progress=False)
    assert list(cache.iterdir()) == []


def test_offline_says_where_to_put_the_file(cache):
    import socket

    # A port held bound but not listening: connecting is refused, and no other process can take the port
    # meanwhile (a port closed before the request could be reused by a parallel test's server).
    with socket.socket() as s, pytest.raises(hub.DownloadError) as info:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        hub.fetch_weight_set(weight_set(f"http://127.0.0.1:{port}/w.pth", sha256=SHA), progress=False)
    assert str(cache / "w-1234.pth") in str(info.value)
    assert list(cache.iterdir()) == []


def test_hand_placed_file_is_checked(cache):
    cache.mkdir(parents=True)
    (cache / "w-1234.pth").write_bytes(b"something else")
    with pytest.raises(hub.DownloadError, match="cached file"):
        hub.fetch_weight_set(weight_set("http://127.0.0.1:9/w.pth", sha256=SHA), progress=False)


def test_effnet_home_that_is_a_file_is_named(tmp_path, monkeypatch):
    (tmp_path / "home").write_text("not a folder")
    monkeypatch.setenv("EFFNET_HOME", str(tmp_path / "home"))
    with pytest.raises(NotADirectoryError) as info:
        hub.fetch_weight_set(weight_set("http://127.0.0.1:9/w.pth", sha256=SHA), progress=False)
    assert info.value.filename == str(tmp_path / "home") and "EFFNET_HOME" in info.value.strerror
    assert (tmp_path / "home").read_text() == "not a folder"


def test_full_disk_is_a_disk_error_not_a_download_error(server, cache, monkeypatch):
    """ENOSPC while saving is reported as the OSError it is (the CLI prints 'PATH: no space left on device'),
    not as a network failure, and the partial file is gone."""
    import errno
    import os

    def stream_to(response, tmp, algorithm, progress, total):
        tmp.write_bytes(PAYLOAD[:1000])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    monkeypatch.setattr(hub, "_stream_to", stream_to)
    with pytest.raises(OSError) as info:
        hub.fetch_weight_set(weight_set(f"{server}/w.pth", sha256=SHA), progress=False)
    assert info.value.errno == errno.ENOSPC and not isinstance(info.value, hub.DownloadError)
    assert list(cache.iterdir()) == []
