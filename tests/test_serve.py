"""`effnet serve` answers like `effnet predict`: real photos, the KServe v2 shapes, a trained run's classes (issue 17)."""

from __future__ import annotations

import base64
import json

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from _serve_utils import Client, ServerProcess, photos, server_in_thread  # noqa: E402
from effnet.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def images():
    return photos()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real command: `effnet serve --weights lite0` in its own process; stopped with Ctrl-C (SIGINT)."""
    import signal

    proc = ServerProcess("--weights", "lite0", "--threads", "1", cwd=tmp_path_factory.mktemp("serve"))
    yield proc
    proc.proc.send_signal(signal.SIGINT)
    code = proc.stop()
    assert code == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def predicted(images, tmp_path_factory):
    """`effnet predict --json` on the same files: what the server must answer."""
    folder = tmp_path_factory.mktemp("photos")
    for name, data in images.items():
        (folder / name).write_bytes(data)
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["predict", *(str(folder / n) for n in images), "--weights", "lite0", "--json"]) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    assert len(rows) == len(images)
    by_name = {}
    for row in rows:
        name = next(n for n in images if str(row.get("image", row.get("path", ""))).endswith(n))
        top = row.get("top") or row.get("predictions")
        by_name[name] = [(p["index"], p.get("probability", p.get("score"))) for p in top]
    return by_name


def test_predict_matches_effnet_predict(server, images, predicted):
    status, headers, body = server.client.predict(list(images.items()))
    assert status == 200, body
    assert body["model"] == "lite0" and set(body["timing_ms"]) == {"decode", "queue_and_inference", "total"}
    for name, preds in zip(images, body["predictions"]):
        assert [p["index"] for p in preds] == [i for i, _ in predicted[name]], name
        assert [p["score"] for p in preds] == pytest.approx([s for _, s in predicted[name]], abs=1e-4)
    labels = {name: preds[0]["label"] for name, preds in zip(images, body["predictions"])}
    assert labels["coffee.png"] == "espresso" and "cat" in labels["chelsea.jpeg"]


def test_raw_image_body_and_top(server, images):
    status, _, data = server.client.request("POST", "/predict?top=3", images["coffee.png"],
                                            {"Content-Type": "image/png"})
    body = json.loads(data)
    assert status == 200 and len(body["predictions"]) == 1 and len(body["predictions"][0]) == 3
    assert body["predictions"][0][0]["label"] == "espresso"


def test_kserve_v2_health_metadata_and_infer(server, images, predicted):
    c = server.client
    assert c.json("GET", "/v2/health/live") == (200, {"live": True})
    assert c.json("GET", "/v2/health/ready") == (200, {"ready": True})
    status, meta = c.json("GET", "/v2/models/lite0")
    assert status == 200 and meta["name"] == "lite0" and len(meta["parameters"]["classes"]) == 1000
    assert {i["datatype"] for i in meta["inputs"]} == {"BYTES", "FP32"}
    assert [o["name"] for o in meta["outputs"]] == ["label", "index", "score"]
    names = list(images)
    request = {"id": "r1", "inputs": [{"name": "image", "shape": [len(names)], "datatype": "BYTES",
                                       "data": [base64.b64encode(images[n]).decode() for n in names]}],
               "parameters": {"top_k": 5}}
    status, out = c.json("POST", "/v2/models/lite0/infer", request)
    assert status == 200, out
    assert out["id"] == "r1" and out["model_name"] == "lite0"
    outputs = {o["name"]: o for o in out["outputs"]}
    assert {n: (o["datatype"], o["shape"]) for n, o in outputs.items()} == {
        "label": ("BYTES", [3, 5]), "index": ("INT64", [3, 5]), "score": ("FP32", [3, 5])}
    assert len(outputs["index"]["data"]) == 15
    for row, name in enumerate(names):
        assert outputs["index"]["data"][row * 5:row * 5 + 5] == [i for i, _ in predicted[name]]


def test_kserve_v2_fp32_tensor_and_shape_errors(server, images):
    """An already preprocessed [N,3,224,224] tensor gives the same answer as the encoded image."""
    import io

    from PIL import Image

    from effnet.data.transforms import eval_transform

    x = eval_transform("lite0")(Image.open(io.BytesIO(images["coffee.png"])).convert("RGB"))
    c = server.client
    tensor = {"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "data": x.flatten().tolist()}
    status, out = c.json("POST", "/v2/models/lite0/infer", {"inputs": [tensor], "parameters": {"top_k": 1}})
    assert status == 200, out
    assert out["outputs"][0]["data"] == ["espresso"] and out["outputs"][0]["shape"] == [1, 1]
    status, out = c.json("POST", "/v2/models/lite0/infer", {"inputs": [{**tensor, "shape": [1, 3, 100, 100]}]})
    assert status == 422 and "[N, 3, 224, 224]" in out["error"]
    status, out = c.json("POST", "/v2/models/b7/infer", {"inputs": [tensor]})
    assert status == 404 and "'lite0'" in out["error"]
    status, out = c.json("POST", "/v2/models/lite0/infer", {"inputs": [{**tensor, "datatype": "INT8"}]})
    assert status == 400 and "BYTES" in out["error"]


def test_metrics_and_page(server, images):
    c = server.client
    assert c.predict([("coffee.png", images["coffee.png"])])[0] == 200
    status, headers, text = c.request("GET", "/metrics")
    text = text.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    for line in ('effnet_requests_total{route="/predict",status="200"}', "effnet_batch_size_count",
                 "effnet_queue_wait_seconds_bucket", "effnet_inference_seconds_count", "effnet_decode_seconds_count",
                 "effnet_request_seconds_count", "effnet_queue_depth", "effnet_model_ready 1.0"):
        assert line in text, line
    status, headers, page = c.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'content="lite0"' in page and b"://" not in page  # no CDN: the page loads nothing from elsewhere


def test_a_trained_run_serves_its_own_class_names(tmp_path):
    """A run folder as `effnet train` writes it: its classes, model and image size come with the weights."""
    import dataclasses

    import torch
    from safetensors.torch import save_file

    from _train_utils import TINY
    from effnet.deploy.pipeline import load_classifier
    from effnet.factory import create_model
    from effnet.serve import local_app
    from effnet.weights.registry import Preprocessing

    torch.manual_seed(0)
    classes = ["cat", "coffee", "rocket"]
    model = create_model(TINY, num_classes=3)
    pre = Preprocessing(resolution=32, crop_pct=1.0, interpolation="bilinear", mean=(0.5,) * 3, std=(0.5,) * 3)
    run = tmp_path / "run"
    run.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, run / "model.safetensors", metadata={
        "format": "effnet", "classes": json.dumps(classes), "image_size": "32",
        "effnet_config": json.dumps(TINY.to_dict()), "effnet_preprocessing": json.dumps(dataclasses.asdict(pre))})
    classifier = load_classifier(None, str(run))
    app, _, batcher = local_app(classifier)
    photo = photos()["rocket.jpeg"]
    try:
        with server_in_thread(app) as port:
            client = Client(port)
            status, meta = client.json("GET", "/v2/models/tiny")
            assert status == 200 and meta["parameters"]["classes"] == classes
            assert meta["parameters"]["image_size"] == 32
            status, _, body = client.predict([("rocket.jpeg", photo)], path="/predict?top=3")
    finally:
        batcher.close(5)
    assert status == 200, body
    import io

    from PIL import Image

    expected = classifier.classify_batch(classifier.preprocess(Image.open(io.BytesIO(photo))).unsqueeze(0), 3)[0]
    assert [p["label"] for p in body["predictions"][0]] == [p.label for p in expected]
    assert sorted(p["label"] for p in body["predictions"][0]) == classes
