"""Reading a request: bounded bodies, images out of multipart / raw / base64, deadlines, waiting for results."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import torch
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartParser
from starlette.requests import Request

from effnet.serve.limits import MAX_BODY_BYTES, MAX_IMAGES, RequestError, decode_image
from effnet.serve.state import ServeState

DEADLINE_HEADER = "x-deadline-ms"  # a client may shorten (never lengthen) the server's deadline
# Past its deadline a running batch still finishes; this bounds the wait for a model that hangs.
HANG_GUARD_S = 60.0


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, refused with 413 as soon as it passes ``limit`` bytes (or says it will)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the body is {int(declared):,} bytes; the limit is {limit:,} ({limit >> 20} MiB)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body is over the limit of {limit:,} bytes ({limit >> 20} MiB)")
        chunks.append(chunk)
    return b"".join(chunks)


async def uploaded_images(request: Request, body: bytes) -> list[bytes]:
    """Encoded images of a /predict request: multipart fields ``image``, or a raw ``image/*`` body."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        async def stream() -> AsyncIterator[bytes]:
            yield body

        try:
            form = await MultiPartParser(request.headers, stream(), max_files=MAX_IMAGES + 1).parse()
        except Exception as exc:  # starlette's MultiPartException and python-multipart's errors
            raise RequestError(400, f"unreadable multipart body: {exc}") from None
        files = [f for f in form.getlist("image") if isinstance(f, UploadFile)]
        if not files:
            raise RequestError(400, "no file in the multipart field 'image' (curl -F image=@photo.jpg)")
        images = [await f.read() for f in files]
        await form.close()
    elif kind.startswith("image/") or kind in ("", "application/octet-stream"):
        images = [body]
    else:
        raise RequestError(415, f"unsupported content type {kind.split(';')[0]!r}: send multipart/form-data with "
                                "'image' fields, or one image with Content-Type image/jpeg, image/png or image/webp")
    check_count(len(images))
    return images


def check_count(n: int) -> None:
    if n > MAX_IMAGES:
        raise RequestError(413, f"{n} images in one request; the limit is {MAX_IMAGES}")
    if n == 0:
        raise RequestError(400, "no images in the request")


async def prepare(state: ServeState, images: list[bytes]) -> torch.Tensor:
    """Decode and preprocess in the decode pool, beside the inference thread: an (N,3,H,W) tensor."""
    loop = asyncio.get_running_loop()

    def one(i: int, data: bytes) -> torch.Tensor:
        return state.classifier.preprocess(decode_image(data, state.max_pixels, f"image {i}"))

    with state.metrics.decode.time():
        tensors = await asyncio.gather(*(loop.run_in_executor(state.decode_pool, one, i, d)
                                         for i, d in enumerate(images)))
    return torch.stack(tensors)


def deadline(request: Request, state: ServeState) -> float:
    """When the request must have left the queue (time.monotonic()); ``X-Deadline-Ms`` may shorten it."""
    seconds = state.deadline_s
    text = request.headers.get(DEADLINE_HEADER)
    if text is not None:
        try:
            asked = float(text) / 1000
        except ValueError:
            raise RequestError(400, f"{DEADLINE_HEADER} must be a number of milliseconds, got {text!r}") from None
        if not asked > 0:
            raise RequestError(400, f"{DEADLINE_HEADER} must be > 0, got {text!r}")
        seconds = min(seconds, asked)
    return time.monotonic() + seconds


async def run_unless_gone(request: Request, state: ServeState, images: torch.Tensor, top: int,
                          until: float) -> list[list[Any]] | None:
    """The predictions, or None when the client disconnected first (its queued request is then dropped)."""
    task = asyncio.ensure_future(state.submit(images, top, until))
    end = until + HANG_GUARD_S
    while not task.done():
        await asyncio.wait({task}, timeout=0.02)
        if task.done():
            break
        if await request.is_disconnected():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return None
        if time.monotonic() > end:
            task.cancel()
            raise RequestError(500, f"no answer from the model within {HANG_GUARD_S:.0f} s past the deadline")
    return task.result()


def top_k(value: Any, classes: int) -> int:  # noqa: ANN401 - a query string or JSON value
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise RequestError(400, f"top-k must be a whole number, got {value!r}") from None
    if k < 1:
        raise RequestError(400, f"top-k must be >= 1, got {k}")
    return min(k, classes)
