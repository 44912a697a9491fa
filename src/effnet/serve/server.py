"""One process, one model: uvicorn on a socket bound beforehand, and a graceful drain on SIGTERM / Ctrl-C.

The first signal turns readiness to 503 and refuses new requests; everything already accepted is
answered (at most ``drain_timeout`` seconds), then the server stops and the process exits 0.
A second Ctrl-C stops at once.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import threading
from types import FrameType
from typing import Any

import uvicorn

from effnet.serve.batcher import Batcher
from effnet.serve.state import ServeState


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now: a port in use is one clear error before any model is loaded."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "is in use (another server?)" if exc.errno == 98 else f"cannot be opened: {exc.strerror}"
        raise ValueError(f"{host}:{port} {reason}; pick another with --port, or --port 0 for any free one") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: ServeState, batcher: Batcher | None, drain_timeout: float) -> None:
        super().__init__(config)
        self.state = state
        self.batcher = batcher
        self.drain_timeout = drain_timeout
        self.drained: bool | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:  # uvicorn's signal handler
        # Not recorded in _captured_signals: uvicorn would raise the signal again after a clean stop
        # (SIGTERM would then kill the process and Ctrl-C exit 130), and a drained server exits 0.
        if self.state.draining:
            self.force_exit = True
            return
        print(f"effnet serve: {signal.Signals(sig).name}: draining (up to {self.drain_timeout:g} s); "
              "Ctrl-C again to stop at once", file=sys.stderr, flush=True)
        self.state.start_drain()
        threading.Thread(target=self._drain, name="effnet-drain", daemon=True).start()

    def _drain(self) -> None:
        def idle() -> bool:
            return self.batcher is None or self.batcher.idle

        self.drained = self.state.wait_drained(self.drain_timeout, idle)
        self.should_exit = True


def serve(state: ServeState, app: Any, sock: socket.socket, batcher: Batcher | None,  # noqa: ANN401
          drain_timeout: float = 20.0, log_level: str = "warning") -> int:
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=max(1, int(drain_timeout)), timeout_keep_alive=5)
    server = DrainingServer(config, state, batcher, drain_timeout)
    host, port = sock.getsockname()[:2]
    print(f"effnet serve: {state.classifier.name} on http://{host}:{port}/ (Ctrl-C or SIGTERM drains and stops)",
          file=sys.stderr, flush=True)
    asyncio.run(server.serve(sockets=[sock]))
    if batcher is not None:
        batcher.close(timeout=5)
    state.decode_pool.shutdown(wait=False, cancel_futures=True)
    if server.drained is False:
        print(f"effnet serve: drain timeout ({drain_timeout:g} s) passed with requests still in flight",
              file=sys.stderr)
    return 0
