"""The Starlette application: /predict, the KServe v2 routes, /metrics and the upload page at /.

Every refusal is a JSON body ``{"error": "one sentence"}`` with its status (400, 404, 413, 415,
422, 503 with ``Retry-After``, 500 when the model fails); the server goes on serving.
"""

from __future__ import annotations

import html
import logging
import time
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from effnet.serve import oip
from effnet.serve.limits import RequestError
from effnet.serve.requests import deadline, prepare, read_body, run_unless_gone, top_k, uploaded_images
from effnet.serve.state import ServeState

log = logging.getLogger("effnet.serve")
# Routes that answer while draining: probes and metrics must keep telling the truth.
_ALWAYS = ("/v2/health/live", "/v2/health/ready", "/metrics")


async def predict(request: Request) -> Response:
    state: ServeState = request.app.state.serve
    started = time.perf_counter()
    k = top_k(request.query_params.get("top", 5), len(state.classifier.classes))
    body = await read_body(request)
    encoded = await uploaded_images(request, body)
    t0 = time.perf_counter()
    images = await prepare(state, encoded)
    t1 = time.perf_counter()
    predictions = await run_unless_gone(request, state, images, k, deadline(request, state))
    if predictions is None:
        return Response(status_code=499)  # nobody is listening; the status only reaches the metrics
    t2 = time.perf_counter()
    return JSONResponse({
        "predictions": [[{"label": p.label, "index": p.index, "score": round(float(p.score), 7)} for p in row]
                        for row in predictions],
        "model": state.classifier.name,
        "timing_ms": {"decode": _ms(t1 - t0), "queue_and_inference": _ms(t2 - t1), "total": _ms(t2 - started)},
    })


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def metrics(request: Request) -> Response:
    state: ServeState = request.app.state.serve
    return Response(state.metrics.text(), media_type="text/plain; version=0.0.4; charset=utf-8")


def page(request: Request) -> Response:
    state: ServeState = request.app.state.serve
    text = resources.files("effnet.serve").joinpath("static/index.html").read_text(encoding="utf-8")
    return HTMLResponse(text.replace("__EFFNET_MODEL__", html.escape(state.classifier.name, quote=True)))


def error_response(exc: RequestError) -> Response:
    headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after is not None else None
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)


async def _request_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return JSONResponse({"error": f"no route {request.url.path}; see GET / or the KServe v2 routes under /v2"},
                            status_code=404)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


class Gate:
    """Counts requests in flight (the drain waits for them), refuses new ones while draining, records metrics."""

    def __init__(self, app: ASGIApp, state: ServeState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, state = scope["path"], self.state
        if state.draining and path not in _ALWAYS:
            await error_response(RequestError(503, "the server is shutting down; retry on another instance",
                                              1.0))(scope, receive, send)
            state.metrics.requests.labels(_route(path), "503").inc()
            return
        status = {"code": 500}
        started = time.perf_counter()

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
            await send(message)

        state.enter()
        try:
            await self.app(scope, receive, record)
        except Exception as exc:  # a bug, not a bad request: one line in the log, a JSON 500, the server goes on
            log.error("%s %s: %s: %s", scope["method"], path, type(exc).__name__, exc)
            if status["code"] == 500 and not status.get("sent"):
                await JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"},
                                   status_code=500)(scope, receive, send)
        finally:
            state.leave()
            route = _route(path)
            state.metrics.requests.labels(route, str(status["code"])).inc()
            if route in ("/predict", "/v2/models/{name}/infer"):
                state.metrics.total.observe(time.perf_counter() - started)


def _route(path: str) -> str:
    if path.startswith("/v2/models/"):
        return "/v2/models/{name}/" + path.rsplit("/", 1)[1] if path.count("/") > 3 else "/v2/models/{name}"
    return path if path in ("/", "/predict", "/metrics", "/v2", *_ALWAYS) else "other"


def build_app(state: ServeState) -> Any:  # noqa: ANN401 - an ASGI application
    routes = [
        Route("/", page), Route("/predict", predict, methods=["POST"]), Route("/metrics", metrics),
        Route("/v2/health/live", oip.live), Route("/v2/health/ready", oip.ready),
        Route("/v2/models/{name}", oip.model_metadata), Route("/v2/models/{name}/ready", oip.model_ready),
        Route("/v2/models/{name}/infer", oip.infer, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={RequestError: _request_error, HTTPException: _http_error})
    app.state.serve = state
    return Gate(app, state)
