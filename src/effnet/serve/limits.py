"""What one request may carry, checked before any pixel is decoded.

The server answers every bad input with a status and one sentence (:class:`RequestError`); the
limits here are those of issue 17: 8 MiB bodies, 32 images, JPEG/PNG/WebP only, and a pixel count
read from the image header (a 48 KB PNG can claim 20000x20000 pixels and decode to 1.2 GB).
"""

from __future__ import annotations

import io

from PIL import Image, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from effnet.choices import MAX_PIXELS
from effnet.data.transforms import upright_rgb

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_IMAGES = 32
# The plugin classes open a file reading only its header, and without Image.open's process-wide
# decompression-bomb check: the limit below is per server, not a global that threads would share.
_FORMATS = {"JPEG": JpegImagePlugin.JpegImageFile, "PNG": PngImagePlugin.PngImageFile,
            "WEBP": WebPImagePlugin.WebPImageFile}


class RequestError(Exception):
    """A request the server refuses: an HTTP status and one sentence for the client."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def image_format(data: bytes) -> str:
    """JPEG, PNG or WEBP from the file's first bytes (the Content-Type a client sends may be wrong); else 415."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if not data:
        raise RequestError(400, "empty image: the request carried no image bytes")
    raise RequestError(415, "unsupported image type: send JPEG, PNG or WebP files")


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS, what: str = "image") -> Image.Image:
    """An RGB PIL image from encoded bytes; 415 for other formats, 400 past ``max_pixels`` or when damaged."""
    fmt = image_format(data)
    try:
        image = _FORMATS[fmt](io.BytesIO(data))
    except Exception as exc:  # PIL raises SyntaxError, OSError, ValueError... for a bad header
        raise RequestError(400, f"{what}: not a readable {fmt} file ({_reason(exc)})") from None
    width, height = image.size
    if width * height > max_pixels:
        raise RequestError(400, f"{what}: {width}x{height} is {width * height:,} pixels, over the server's limit of "
                                f"{max_pixels:,} (not decoded)")
    try:
        image.load()
        return upright_rgb(image)  # a phone photo's EXIF orientation applied, as predict does
    except Exception as exc:  # a truncated or corrupt body
        raise RequestError(400, f"{what}: broken {fmt} data ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
