"""The Open Inference Protocol (KServe v2) REST routes: health, model metadata, infer.

Inputs: ``BYTES`` tensors of encoded images (base64 strings in JSON, as KServe sends binary data),
or one ``FP32`` tensor ``[N, 3, H, W]`` already preprocessed. Outputs: ``label`` (BYTES),
``index`` (INT64) and ``score`` (FP32), each ``[N, k]``. Top-k is the request parameter ``top_k``.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

import torch
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from effnet.serve.limits import MAX_IMAGES, RequestError
from effnet.serve.requests import check_count, deadline, prepare, read_body, run_unless_gone, top_k
from effnet.serve.state import ServeState

VERSION = "1"


def live(request: Request) -> Response:
    return JSONResponse({"live": True})


def ready(request: Request) -> Response:
    state: ServeState = request.app.state.serve
    ok = state.ready and not state.draining
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503)


def _model(request: Request) -> ServeState:
    state: ServeState = request.app.state.serve
    name = request.path_params["name"]
    if name != state.classifier.name:
        raise RequestError(404, f"no model {name!r} here; this server serves {state.classifier.name!r}")
    return state


def model_metadata(request: Request) -> Response:
    state = _model(request)
    c = state.classifier
    size = c.image_size
    return JSONResponse({
        "name": c.name, "versions": [VERSION], "platform": "effnet",
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1]},
                   {"name": "input", "datatype": "FP32", "shape": [-1, 3, size, size]}],
        "outputs": [{"name": "label", "datatype": "BYTES", "shape": [-1, -1]},
                    {"name": "index", "datatype": "INT64", "shape": [-1, -1]},
                    {"name": "score", "datatype": "FP32", "shape": [-1, -1]}],
        "parameters": {"classes": list(c.classes), "image_size": size,
                       "preprocessing": _preprocessing(c), "max_images": MAX_IMAGES},
    })


def model_ready(request: Request) -> Response:
    state = _model(request)
    ok = state.ready and not state.draining
    return JSONResponse({"name": state.classifier.name, "ready": ok}, status_code=200 if ok else 503)


def _preprocessing(classifier: Any) -> dict[str, Any]:  # noqa: ANN401
    spec = getattr(classifier, "preprocessing", None)
    if spec is None:
        return {"image_size": classifier.image_size}
    fields = ("resolution", "crop_pct", "interpolation", "mean", "std")
    return {f: getattr(spec, f) for f in fields if hasattr(spec, f)}


async def infer(request: Request) -> Response:
    state = _model(request)
    started = time.perf_counter()
    body = await read_body(request)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RequestError(400, "the body is not JSON; send {\"inputs\": [{\"name\", \"shape\", \"datatype\", "
                                "\"data\"}]}") from None
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise RequestError(400, "'inputs' must be a list of exactly one tensor (BYTES images or FP32 [N,3,H,W])")
    tensor = inputs[0]
    params = payload.get("parameters") or {}
    k = top_k(params.get("top_k", 5), len(state.classifier.classes))
    images = await _input_images(state, tensor)
    until = deadline(request, state)
    predictions = await run_unless_gone(request, state, images, k, until)
    if predictions is None:
        return Response(status_code=499)
    n = len(predictions)
    out = {"model_name": state.classifier.name, "model_version": VERSION, "outputs": [
        {"name": "label", "datatype": "BYTES", "shape": [n, k], "data": [p.label for row in predictions for p in row]},
        {"name": "index", "datatype": "INT64", "shape": [n, k], "data": [p.index for row in predictions for p in row]},
        {"name": "score", "datatype": "FP32", "shape": [n, k],
         "data": [round(float(p.score), 7) for row in predictions for p in row]},
    ], "parameters": {"timing_ms": round((time.perf_counter() - started) * 1000, 2)}}
    if "id" in payload:
        out["id"] = payload["id"]
    return JSONResponse(out)


async def _input_images(state: ServeState, tensor: dict[str, Any]) -> torch.Tensor:
    kind, data, shape = tensor.get("datatype"), tensor.get("data"), tensor.get("shape")
    if kind == "BYTES":
        items = data if isinstance(data, list) else [data]
        check_count(len(items))
        encoded = []
        for i, item in enumerate(items):
            try:
                encoded.append(base64.b64decode(item, validate=True))
            except (binascii.Error, TypeError, ValueError):
                raise RequestError(400, f"image {i}: BYTES data must be base64 strings of JPEG, PNG or WebP files") \
                    from None
        return await prepare(state, encoded)
    if kind == "FP32":
        size = state.classifier.image_size
        want = f"[N, 3, {size}, {size}]"
        if not (isinstance(shape, list) and len(shape) == 4 and all(isinstance(d, int) for d in shape)):
            raise RequestError(422, f"FP32 input needs a shape {want}, got {shape!r}")
        if shape[1:] != [3, size, size]:
            raise RequestError(422, f"FP32 input of shape {shape} does not fit this model: it takes {want}")
        check_count(shape[0])
        try:
            values = torch.tensor(data, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            raise RequestError(422, "FP32 data must be a list of numbers (flat or nested)") from None
        if values.numel() != shape[0] * 3 * size * size:
            raise RequestError(422, f"FP32 data holds {values.numel()} numbers; shape {shape} needs "
                                    f"{shape[0] * 3 * size * size}")
        if not torch.isfinite(values).all():
            raise RequestError(422, "FP32 data holds NaN or infinite values")
        return values.reshape(shape)
    raise RequestError(400, f"datatype {kind!r} is not accepted: send BYTES (base64 images) or FP32 [N,3,H,W]")
