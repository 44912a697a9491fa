"""Shared by the serve tests: a server in a thread or a subprocess, and a tiny HTTP client (stdlib only)."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from _wait import wait_for

SERVE_ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "http_proxy": "http://127.0.0.1:9",
             "https_proxy": "http://127.0.0.1:9", "PYTHONUNBUFFERED": "1"}


def photos() -> dict[str, bytes]:
    """Real photos as a client sends them: JPEG and PNG bytes."""
    from skimage import data

    out = {}
    for name, fmt in (("chelsea", "JPEG"), ("coffee", "PNG"), ("rocket", "JPEG")):
        buf = io.BytesIO()
        Image.fromarray(getattr(data, name)()).save(buf, fmt)
        out[f"{name}.{fmt.lower()}"] = buf.getvalue()
    return out


class Client:
    def __init__(self, port: int, timeout: float = 60) -> None:
        self.port = port
        self.timeout = timeout

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, payload: object = None, headers: dict[str, str] | None = None
             ) -> tuple[int, dict]:
        body = None if payload is None else json.dumps(payload).encode()
        status, _, data = self.request(method, path, body, {"Content-Type": "application/json", **(headers or {})})
        return status, json.loads(data)

    def predict(self, images: list[tuple[str, bytes]], path: str = "/predict",
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], dict]:
        body, kind = multipart(images)
        status, hdrs, data = self.request("POST", path, body, {"Content-Type": kind, **(headers or {})})
        return status, hdrs, json.loads(data)


def multipart(images: list[tuple[str, bytes]], field: str = "image") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in images:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@contextmanager
def server_in_thread(app: object):
    """uvicorn serving ``app`` on a free loopback port in a thread; yields the port."""
    import uvicorn

    from effnet.serve.server import bind

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "uvicorn started", poll_s=0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


class ServerProcess:
    """``effnet serve ... --port 0`` in a subprocess; the port is read from its first line on stderr."""

    def __init__(self, *args: str, cwd: Path | None = None, ready_timeout: float = 240) -> None:
        self.stderr_path = Path(cwd or ".") / f"serve-{uuid.uuid4().hex[:8]}.log"
        self.stderr_file = open(self.stderr_path, "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "effnet", "serve", "--port", "0", *args],
                                     stdout=subprocess.DEVNULL, stderr=self.stderr_file, cwd=cwd,
                                     env={**os.environ, **SERVE_ENV})
        self.port = self._wait_for_port(ready_timeout)
        self.client = Client(self.port)

    def _wait_for_port(self, timeout: float) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", self.stderr_path.read_text())
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                raise AssertionError(f"effnet serve exited {self.proc.returncode}: {self.stderr_path.read_text()}")
            time.sleep(0.1)
        self.proc.kill()
        raise AssertionError(f"effnet serve did not start within {timeout} s: {self.stderr_path.read_text()}")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise
        finally:
            self.stderr_file.close()
