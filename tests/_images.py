"""Hostile image files for the robustness tests."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A valid 1-bit PNG of side x side pixels that compresses to about 50 KB (400 MB once decoded as RGB)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + side // 8)  # filter byte + the row's bits
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path
