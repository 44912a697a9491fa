"""One released weight file, as one keyword row: where it lives, how to verify it, how to feed it."""

from __future__ import annotations

from dataclasses import dataclass, field

from effnet.arch.preprocessing import Preprocessing


@dataclass(frozen=True)
class WeightSet:
    """One released weight file. ``source_format`` tells how to read it and which numerics it needs
    (``effnet.weights.load``: TF SAME padding and BN eps 1e-3 for TF ports).

    ``filename`` is the name of the cached copy (the URL's last part, or the tag's for hub files that
    are all called model.safetensors); ``sha256_prefix`` the first hex digits of the file's SHA-256
    that torchvision and timm put in the file name, ``md5`` Keras's published sum.
    """

    tag: str
    model: str
    source_format: str  # torchvision | timm | timm_tf | keras | lukemelas
    preprocessing: Preprocessing
    url: str | None = None
    filename: str | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    md5: str | None = None
    package: str | None = None  # a pip package that ships the file (the Lite weights)
    num_classes: int = 1000
    top1: float | None = None
    notes: str = ""
    aliases: tuple[str, ...] = field(default=())
