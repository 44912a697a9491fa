"""`effnet serve` under faults (issue 17, section 3): every bad input a JSON error, never a 500 or a hang.

Most cases run the real routes and batcher in this process around a stand-in model that can be held,
slowed or made to fail (what a fault needs); SIGTERM under load runs the real command on Lite0.
"""

from __future__ import annotations

import io
import re
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("uvicorn")

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from _images import bomb_png  # noqa: E402
from _serve_utils import Client, ServerProcess, multipart, photos, server_in_thread  # noqa: E402
from _wait import wait_for  # noqa: E402
from effnet.deploy.predict import Prediction  # noqa: E402
from effnet.serve import local_app  # noqa: E402


class HeldModel:
    """A stand-in classifier: 10 classes at 32 px; each batch waits for ``gate`` and may be told to fail."""

    name, image_size, classes = "held", 32, [f"c{i}" for i in range(10)]

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False
        self.batches: list[int] = []
        self.started = threading.Event()

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return torch.zeros(3, 32, 32)

    def classify_batch(self, batch: torch.Tensor, topk: int = 5) -> list[list[Prediction]]:
        self.started.set()
        assert self.gate.wait(30), "the test never released the model"
        if self.fail:
            raise RuntimeError("simulated model failure")
        self.batches.append(len(batch))
        return [[Prediction(f"c{i}", i, 1.0 / (i + 1)) for i in range(topk)] for _ in range(len(batch))]


@pytest.fixture(scope="module")
def jpeg():
    return photos()["chelsea.jpeg"]


@pytest.fixture
def held():
    """A server around a HeldModel: (client, model, state)."""
    model = HeldModel()
    app, state, batcher = local_app(model, max_batch_size=2, max_queue=4)
    with server_in_thread(app) as port:
        yield Client(port, timeout=30), model, state
    model.gate.set()
    batcher.close(10)


def dropped(state) -> float:
    return state.metrics.registry.get_sample_value("effnet_dropped_requests_total") or 0.0


def test_a_client_that_leaves_while_queued_is_dropped_unrun(held, jpeg):
    client, model, state = held
    model.gate.clear()
    first = ThreadPoolExecutor(1).submit(client.predict, [("a.jpg", jpeg)])
    assert model.started.wait(10)  # the model is busy with the first request
    body, kind = multipart([("b.jpg", jpeg)])
    with socket.create_connection(("127.0.0.1", client.port), timeout=10) as s:
        s.sendall(f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n\r\n"
                  .encode() + body)
        wait_for(lambda: state.metrics.registry.get_sample_value("effnet_queue_depth") >= 1, "the request queued")
    wait_for(lambda: dropped(state) >= 1, "the departed client's request dropped")
    model.gate.set()
    assert first.result(30)[0] == 200
    assert dropped(state) == 1
    assert model.batches == [1]  # only the first request ever reached the model


def test_oversized_body_and_too_many_images(held, jpeg):
    client, _, _ = held
    status, _, body = client.predict([("big.jpg", b"\xff\xd8\xff" + b"\0" * (9 << 20))])
    assert status == 413 and "8 MiB" in body["error"]
    status, _, body = client.predict([(f"{i}.jpg", jpeg) for i in range(33)])
    assert status == 413 and "33 images" in body["error"]


def test_decompression_bomb_is_refused_from_its_header(held, tmp_path, monkeypatch):
    client, model, _ = held
    data = bomb_png(tmp_path / "bomb.png").read_bytes()
    assert len(data) < 100_000

    def no_decoding(self, *args):
        raise AssertionError("the bomb was decoded")

    from PIL import PngImagePlugin

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decoding)
    status, _, body = client.predict([("bomb.png", data)])
    assert status == 400 and "20000x20000 is 400,000,000 pixels" in body["error"] and "not decoded" in body["error"]
    assert model.batches == []


def test_truncated_unsupported_and_empty_images(held, jpeg):
    client, _, _ = held
    status, _, body = client.predict([("cut.jpg", jpeg[: len(jpeg) // 2])])
    assert status == 400 and "broken JPEG" in body["error"], body
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    status, _, body = client.predict([("x.gif", gif.getvalue())])
    assert status == 415 and "JPEG, PNG or WebP" in body["error"]
    status, _, data = client.request("POST", "/predict", b"", {"Content-Type": "image/jpeg"})
    assert status == 400 and b"empty image" in data
    status, _, data = client.request("POST", "/predict", jpeg, {"Content-Type": "image/jpeg", "X-Deadline-Ms": "x"})
    assert status == 400 and b"X-Deadline-Ms" in data.replace(b"x-deadline-ms", b"X-Deadline-Ms")
    status, _, data = client.request("POST", "/predict?top=0", jpeg, {"Content-Type": "image/jpeg"})
    assert status == 400 and b"top-k must be >= 1" in data


def test_model_error_is_a_500_with_a_message_and_the_server_goes_on(held, jpeg):
    client, model, _ = held
    model.fail = True
    status, _, body = client.predict([("a.jpg", jpeg)])
    assert status == 500 and "simulated model failure" in body["error"]
    model.fail = False
    assert client.predict([("a.jpg", jpeg)])[0] == 200


def test_deadline_passed_in_the_queue_is_503_with_retry_after(held, jpeg):
    client, model, _ = held
    model.gate.clear()
    first = ThreadPoolExecutor(1).submit(client.predict, [("a.jpg", jpeg)])
    assert model.started.wait(10)
    status, headers, body = client.predict([("b.jpg", jpeg)], headers={"X-Deadline-Ms": "50"})
    model.gate.set()
    assert status == 503 and "deadline" in body["error"] and headers["retry-after"] == "1"
    assert first.result(30)[0] == 200


def test_overload_at_twice_capacity_gives_only_200_and_503(jpeg):
    """Capacity: 4 queued + 2 in the batch; 12 at once must be answered 200 or 503, never 500, never hang.

    The model is held until the requests beyond capacity have been refused, so the overload does not
    depend on how fast this machine sends the twelve (a slow model would: a busy machine sends slowly)."""
    model = HeldModel()
    model.gate.clear()
    app, state, batcher = local_app(model, max_batch_size=2, max_queue=4)
    try:
        with server_in_thread(app) as port:
            client = Client(port, timeout=30)
            with ThreadPoolExecutor(12) as pool:
                futures = [pool.submit(client.predict, [("a.jpg", jpeg)]) for _ in range(12)]
                # at most 2 in the held batch + 4 queued can wait; at least 6 are refused while the model is held
                wait_for(lambda: sum(f.done() for f in futures) >= 6, "the requests beyond capacity refused")
                model.gate.set()
                results = [f.result(30) for f in futures]
            statuses = [r[0] for r in results]
            assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
            assert all(h["retry-after"] == "1" and "busy" in b["error"] for s, h, b in results if s == 503)
            assert client.predict([("a.jpg", jpeg)])[0] == 200  # and it serves on afterwards
    finally:
        batcher.close(10)


def test_draining_refuses_new_work_but_stays_alive(held, jpeg):
    client, _, state = held
    state.start_drain()
    assert client.json("GET", "/v2/health/ready")[0] == 503
    assert client.json("GET", "/v2/health/live")[0] == 200
    status, headers, body = client.predict([("a.jpg", jpeg)])
    assert status == 503 and "shutting down" in body["error"] and "retry-after" in headers
    assert "effnet_model_ready 0.0" in client.request("GET", "/metrics")[2].decode()


def _queue_depth(client: Client) -> float:
    status, _, body = client.request("GET", "/metrics")
    found = re.search(rb"^effnet_queue_depth (\S+)$", body, re.M) if status == 200 else None
    return float(found.group(1)) if found else 0.0


def test_sigterm_under_load_answers_every_accepted_request_and_exits_0(tmp_path, jpeg):
    server = ServerProcess("--weights", "lite0", "--threads", "1", "--max-batch-size", "1", cwd=tmp_path)
    try:
        client = server.client
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(client.predict, [("a.jpg", jpeg)]) for _ in range(8)]
            # accepted: answered, or waiting in the queue (the server's own gauge), so that at least two
            # answers are owed when the signal lands, however fast the client sends or the model runs
            wait_for(lambda: sum(f.done() for f in futures) + _queue_depth(client) >= 2, "two requests accepted",
                     poll_s=0.005)
            server.proc.send_signal(signal.SIGTERM)  # the others are in flight: queued or being decoded
            results = [f.result(60) for f in futures]
    finally:
        code = server.stop()
    statuses = [status for status, _, _ in results]
    assert code == 0, server.stderr
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 2, statuses
    assert "draining" in server.stderr and "Traceback" not in server.stderr
