"""Misuse of the effnet CLI, one row per mistake (issue 10, sections 2 and 3).

Every row runs the real command line (``python -m effnet ...`` in a subprocess with its own
``EFFNET_HOME`` and no network; or ``effnet.cli.main`` in this process when the refusal comes
before any work, or when a fault such as a full disk or Ctrl-C is injected) and asserts:

* the exit code,
* exactly ``stderr_lines`` lines on stderr (one for a refusal), containing ``expect_in_stderr``, and
  never a ``Traceback``,
* nothing that existed before was lost or changed (every file's SHA-256 is compared), and a
  refused command created nothing (no output, no temporary file).

To add a case, append a :class:`Row` to ``ROWS``. ``{t}`` in arguments is the row's own folder,
which holds the user's earlier work (``keep/``: a previous conversion and export), ``{w}`` the
shared weight files made once per module (see :func:`weights`), ``{photo}`` a real photo.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from effnet.cli import main

BASE_ENV = {
    "OMP_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
    "KERAS_BACKEND": "torch",
    # Nothing here may download: a proxy nobody listens on turns any attempt into an immediate error.
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass(frozen=True)
class Row:
    """One misuse: the arguments after ``effnet``, how to prepare the folder, and what must come out."""

    name: str
    argv: tuple[str, ...]
    setup: Callable[[Path], None] | None = None
    expect_code: int = 2
    expect_in_stderr: str = ""
    expect_in_stdout: str = ""
    stderr_lines: int = 1
    in_process: bool = False  # effnet.cli.main here: for refusals before any work, and injected faults
    patch: Callable[[pytest.MonkeyPatch, Path], None] | None = None  # in_process only: inject a fault
    env: dict[str, str] = field(default_factory=dict)
    needs_nonroot: bool = False  # file permissions do not bind root


# ---------------------------------------------------------------- setups and injected faults
def a_file_named_out(t: Path) -> None:
    (t / "out").write_text("a file where an output folder is asked for")


def read_only_folder(t: Path) -> None:
    (t / "ro").mkdir()
    (t / "ro" / "old.txt").write_text("kept")
    (t / "ro").chmod(0o555)


def home_is_a_file(t: Path) -> None:
    (t / "homefile").write_text("not a folder")


def read_only_home(t: Path) -> None:
    (t / "rohome").mkdir()
    (t / "rohome").chmod(0o555)


def empty_folder(t: Path) -> None:
    (t / "empty").mkdir()


def disk_full_in_safetensors(monkeypatch: pytest.MonkeyPatch, t: Path) -> None:
    """The disk fills up halfway through writing the converted file."""
    import safetensors.torch

    def save_file(tensors: dict, filename: str, metadata: dict | None = None) -> None:
        Path(filename).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filename))

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)


def disk_full_in_torchscript(monkeypatch: pytest.MonkeyPatch, t: Path) -> None:
    def save(self: object, path: str, *args: object, **kwargs: object) -> None:
        Path(path).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(torch.jit.ScriptModule, "save", save)


def ctrl_c_in_onnx_export(monkeypatch: pytest.MonkeyPatch, t: Path) -> None:
    """Ctrl-C arrives while torch is exporting (the temporary file beside the destination exists)."""

    def export(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(torch.onnx, "export", export)


CONVERT_TO_KEEP = ("{t}/keep/out.safetensors",)  # the user's previous conversion, which must survive

ROWS = [
    # 2.5 timm tf_ ports: decided by the checkpoint or the file's own name, never its folders
    Row("tf port under a plain name: converted, with one warning naming the fix",
        ("convert", "{w}/model.pth", "{t}/new.safetensors", "--model", "b0"), expect_code=0,
        expect_in_stderr='source_format="timm_tf" (CLI: --source-format timm_tf)',
        expect_in_stdout="'padding': 'symmetric'"),
    Row("tf port under its published name: TF numerics, no warning",
        ("convert", "{w}/tf_efficientnet_b0.pth", "{t}/new.safetensors", "--model", "b0"), expect_code=0,
        stderr_lines=0, expect_in_stdout="'padding': 'same', 'bn_eps': 0.001"),
    Row("plain timm file in a folder named tf_efficientnet...: its own name decides",
        ("convert", "{w}/tf_efficientnet_experiments/efficientnet_b0.pth", "{t}/new.safetensors", "--model", "b0"),
        expect_code=0, stderr_lines=0, expect_in_stdout="'padding': 'symmetric', 'bn_eps': 1e-05"),
    Row("--source-format keras on a torchvision file is refused",
        ("convert", "{w}/tv_b0.pth", *CONVERT_TO_KEEP, "--model", "b0", "--source-format", "keras"),
        expect_in_stderr="source format 'keras' contradicts"),
    # 2.6 invalid numerics
    Row("NaN weights are refused by convert",
        ("convert", "{w}/nan.pth", *CONVERT_TO_KEEP, "--model", "lite0"), expect_in_stderr="NaN/infinite"),
    Row("NaN weights are refused by predict --json (no NaN in the output)",
        ("predict", "{photo}", "--weights", "{w}/nan.pth", "--json"), expect_in_stderr="NaN/infinite"),
    Row("saved config with bn_eps=-1 is refused",
        ("convert", "{w}/bad_eps.safetensors", *CONVERT_TO_KEEP, "--model", "lite0"),
        expect_in_stderr="bn_eps must be a number in (0, 1], got -1"),
    # 2.7 nonsense that used to "succeed"
    Row("bench --accuracy with a missing folder", ("bench", "--model", "lite0", "--accuracy", "{t}/nope"),
        in_process=True, expect_in_stderr="{t}/nope: no such folder"),
    Row("bench --accuracy without real weights", ("bench", "--model", "b0", "--accuracy", "{t}"),
        in_process=True, expect_in_stderr="--accuracy needs real weights for b0"),
    Row("bench --resolution 0", ("bench", "--resolution", "0"), in_process=True,
        expect_in_stderr="argument --resolution: must be a positive integer"),
    Row("search --step 0", ("search", "--data", "demo", "--step", "0"), in_process=True,
        expect_in_stderr="argument --step: must be a number > 0"),
    Row("export --opset 3", ("export", "--model", "lite0", "--opset", "3", "-o", "{t}/keep/lite0.onnx"),
        in_process=True, expect_in_stderr="argument --opset: must be an integer >= 18"),
    Row("export --opset newer than onnx knows", ("export", "--model", "lite0", "--opset", "999"), in_process=True,
        expect_in_stderr="ONNX opset 999 is not supported"),
    # 3. one line, never a traceback, never a hang
    Row("info --phi 40", ("info", "--phi", "40"), in_process=True, expect_in_stderr="phi must be a number from 0"),
    Row("scale --phi 40", ("scale", "--phi", "40"), in_process=True, expect_in_stderr="phi must be a number from 0"),
    Row("info --phi inf", ("info", "--phi", "inf"), in_process=True, expect_in_stderr="expected a finite number"),
    Row("info --phi nan (real entry point)", ("info", "--phi", "nan"), expect_in_stderr="expected a finite number"),
    Row("scale with a coefficient that explodes depth", ("scale", "--phi", "10", "--alpha", "2"), in_process=True,
        expect_in_stderr="scales depth by 1.02e+03x"),
    Row("truncated .safetensors", ("convert", "{w}/truncated.safetensors", *CONVERT_TO_KEEP, "--model", "lite0"),
        expect_in_stderr="is a damaged safetensors file"),
    Row("truncated .h5", ("convert", "{w}/truncated.h5", *CONVERT_TO_KEEP, "--model", "b0"),
        expect_in_stderr="is a damaged HDF5 (Keras) file"),
    Row("convert into a folder that is a file",
        ("convert", "{w}/lite0.pth", "{t}/out/lite0.safetensors", "--model", "lite0"), setup=a_file_named_out,
        expect_in_stderr="{t}/out: is a file, where a folder is needed"),
    Row("export into a folder that is a file",
        ("export", "--model", "lite0", "--allow-random-head", "--no-check", "-o", "{t}/out/lite0.onnx"),
        setup=a_file_named_out,
        in_process=True, expect_in_stderr="{t}/out: is a file, where a folder is needed"),
    Row("convert into a read-only folder", ("convert", "{w}/lite0.pth", "{t}/ro/lite0.safetensors", "--model", "lite0"),
        setup=read_only_folder, needs_nonroot=True, expect_in_stderr="permission denied"),
    Row("export into a read-only folder",
        ("export", "--model", "lite0", "--allow-random-head", "--no-check", "-o", "{t}/ro/lite0.onnx"),
        setup=read_only_folder, needs_nonroot=True, in_process=True, expect_in_stderr="permission denied"),
    Row("disk full while converting", ("convert", "{w}/lite0.pth", *CONVERT_TO_KEEP, "--model", "lite0"),
        in_process=True, patch=disk_full_in_safetensors, expect_in_stderr="no space left on device"),
    Row("disk full while exporting", ("export", "--model", "lite0", "--format", "torchscript", "--size", "64",
                                      "--no-check", "--allow-random-head", "--overwrite", "-o", "{t}/keep/lite0.pt"),
        in_process=True, patch=disk_full_in_torchscript, expect_in_stderr="no space left on device"),
    Row("EFFNET_HOME is a file", ("convert", "torchvision/b0", "{t}/new.safetensors", "--model", "b0"),
        setup=home_is_a_file, env={"EFFNET_HOME": "{t}/homefile"},
        expect_in_stderr="{t}/homefile: EFFNET_HOME (the weight cache) is a file, not a folder"),
    Row("EFFNET_HOME is read-only", ("convert", "torchvision/b0", "{t}/new.safetensors", "--model", "b0"),
        setup=read_only_home, env={"EFFNET_HOME": "{t}/rohome"}, needs_nonroot=True,
        expect_in_stderr="set EFFNET_HOME to a writable folder"),
    Row("Ctrl-C during export",
        ("export", "--model", "lite0", "--allow-random-head", "--overwrite", "-o", "{t}/keep/lite0.onnx"), in_process=True,
        patch=ctrl_c_in_onnx_export, expect_code=130, expect_in_stderr="effnet export: interrupted"),
    Row("--int8 with an empty folder fails before the fp32 file is written",
        ("export", "--model", "lite0", "--allow-random-head", "--int8", "{t}/empty", "-o", "{t}/new.onnx"),
        setup=empty_folder,
        in_process=True, expect_in_stderr="no images"),
    Row("--int8 with a missing folder",
        ("export", "--model", "lite0", "--allow-random-head", "--int8", "{t}/nope", "-o", "{t}/new.onnx"),
        in_process=True, expect_in_stderr="--int8 {t}/nope: no such folder"),
]


# ---------------------------------------------------------------- train / eval / predict (issue 10: 2.1-2.4, 2.7, 3)
def digits(t: Path, classes: tuple[int, ...] = (0, 1, 2)) -> None:
    from _train_utils import write_digits

    write_digits(t / "digits", classes=classes, per_class=4)


def digits_and_a_run(t: Path) -> None:
    """The user's earlier run in keep/run (its weights, metrics and a checkpoint must survive)."""
    digits(t)
    (t / "keep" / "run" / "checkpoints").mkdir(parents=True)
    (t / "keep" / "run" / "model.safetensors").write_bytes(b"the user's trained weights")
    (t / "keep" / "run" / "metrics.csv").write_text("epoch,val_top1\n1,93.5\n")
    (t / "keep" / "run" / "checkpoints" / "ckpt-s000000090.pt").write_bytes(b"the user's checkpoint")


def one_class(t: Path) -> None:
    digits(t, classes=(4,))


def digits_and_a_file_named_out(t: Path) -> None:
    digits(t)
    a_file_named_out(t)


def bomb_and_photo(t: Path) -> None:
    """A 20000x20000 PNG of about 50 KB beside a real photo."""
    from PIL import Image
    from skimage import data

    from _images import bomb_png

    (t / "imgs").mkdir()
    bomb_png(t / "imgs" / "bomb.png")
    Image.fromarray(data.coffee()).save(t / "imgs" / "coffee.jpg")


def ctrl_c_in_predict(monkeypatch: pytest.MonkeyPatch, t: Path) -> None:
    from effnet.deploy.pipeline import Classifier

    def classify(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Classifier, "classify_batch", classify)


TRAIN = ("train", "{t}/digits", "--image-size", "16", "--epochs", "1", "--batch-size", "4", "--workers", "0",
         "--no-progress", "--threads", "1")
ROWS += [
    Row("train into a folder that holds another run", (*TRAIN, "--out", "{t}/keep/run"), setup=digits_and_a_run,
        in_process=True, expect_in_stderr="{t}/keep/run is not empty (checkpoints, metrics.csv, model.safetensors); "
                                          "continue that run with --resume, replace it with --overwrite"),
    Row("train --epochs 0", (*TRAIN, "--epochs", "0"), setup=digits, in_process=True,
        expect_in_stderr="epochs must be a whole number >= 1, got 0"),
    Row("train --epochs -2", (*TRAIN, "--epochs", "-2"), setup=digits, in_process=True,
        expect_in_stderr="epochs must be a whole number >= 1, got -2"),
    Row("train --image-size 0 (0 meant the default)", (*TRAIN, "--image-size", "0"), setup=digits, in_process=True,
        expect_in_stderr="image_size must be a whole number >= 1, got 0"),
    Row("train --batch-size 0", (*TRAIN, "--batch-size", "0"), setup=digits, in_process=True,
        expect_in_stderr="batch_size must be a whole number >= 1, got 0"),
    Row("train on one class (it reported 100% top-1)", (*TRAIN, "--out", "{t}/run"), setup=one_class,
        in_process=True, expect_in_stderr="has one class (4): a classifier needs at least two class folders"),
    Row("train --out that is a file", (*TRAIN, "--out", "{t}/out"), setup=digits_and_a_file_named_out,
        in_process=True, expect_in_stderr="{t}/out is a file, not a folder"),
    Row("train --resume of a missing file (it said 'corrupt')", (*TRAIN, "--out", "{t}/run", "--resume", "{t}/no.pt"),
        setup=digits, in_process=True, expect_in_stderr="--resume {t}/no.pt: no such file"),
    Row("train into a read-only folder", (*TRAIN, "--out", "{t}/ro"), setup=lambda t: (digits(t), read_only_folder(t)),
        in_process=True, needs_nonroot=True, expect_in_stderr="cannot write to run folder {t}/ro: permission denied"),
    Row("train into a new folder under a read-only one", (*TRAIN, "--out", "{t}/ro/run"),
        setup=lambda t: (digits(t), read_only_folder(t)), in_process=True, needs_nonroot=True,
        expect_in_stderr="cannot create run folder {t}/ro/run: permission denied"),
    Row("train --resume together with --overwrite", (*TRAIN, "--out", "{t}/keep/run", "--resume", "--overwrite"),
        setup=digits_and_a_run, in_process=True, expect_in_stderr="resume and overwrite contradict each other"),
    Row("predict a decompression bomb: skipped, the rest classified, exit 1",
        ("predict", "{t}/imgs", "--weights", "lite0", "--top", "1"), setup=bomb_and_photo, in_process=True,
        expect_code=1, expect_in_stderr="bomb.png: 20000x20000 is 400,000,000 pixels, over the limit of 89,478,485",
        expect_in_stdout="espresso"),
    Row("predict an empty folder", ("predict", "{t}/empty", "--weights", "lite0"), setup=empty_folder,
        in_process=True, expect_code=1, expect_in_stderr="{t}/empty: no images in this folder"),
    Row("predict --weights FOLDER that is not a run", ("predict", "{photo}", "--weights", "{t}/empty"),
        setup=empty_folder, in_process=True, expect_in_stderr="is a folder without model.safetensors, so not an "
                                                              "effnet run folder"),
    Row("predict --max-pixels 0", ("predict", "{photo}", "--max-pixels", "0"), in_process=True,
        expect_in_stderr="--max-pixels must be >= 1, got 0"),
    Row("Ctrl-C during predict", ("predict", "{photo}", "--weights", "lite0"), in_process=True,
        patch=ctrl_c_in_predict, expect_code=130, expect_in_stderr="effnet predict: interrupted"),
    Row("eval ImageNet weights on a folder of other classes (it reported 0% top-1)",
        ("eval", "{t}/digits/val", "--weights", "lite0", "--workers", "0"), setup=digits, in_process=True,
        expect_in_stderr="class folder(s) 0, 1, 2 are not ImageNet-1k WordNet ids"),
    Row("eval --image-size 0", ("eval", "{t}/digits/val", "--weights", "lite0", "--image-size", "0"), setup=digits,
        in_process=True, expect_in_stderr="image size must be >= 1, got 0"),
    Row("embed over an existing --out without --overwrite", ("embed", "{photo}", "--out", "{t}/feats.npz"),
        setup=lambda t: (t / "feats.npz").write_bytes(b"earlier features"), in_process=True,
        expect_in_stderr="{t}/feats.npz already exists; pass --overwrite"),
    Row("embed --out that is not .npz", ("embed", "{photo}", "--out", "{t}/feats.csv"), in_process=True,
        expect_in_stderr="--out must end in .npz"),
    Row("embed an empty folder", ("embed", "{t}/empty", "--out", "{t}/f.npz", "--no-progress"), setup=empty_folder,
        in_process=True, expect_in_stderr="no image files found in {t}/empty"),
    Row("embed a missing file", ("embed", "{t}/no.jpg", "--out", "{t}/f.npz"), in_process=True,
        expect_in_stderr="{t}/no.jpg: no such file or folder"),
    Row("embed only unreadable files: nothing written", ("embed", "{t}/bad", "--out", "{t}/f.npz", "--no-progress"),
        setup=lambda t: ((t / "bad").mkdir(), (t / "bad" / "x.jpg").write_bytes(b"not a jpeg")), in_process=True,
        expect_in_stderr="no readable images among 1 file(s) (first: {t}/bad/x.jpg"),
    Row("embed --batch-size 0", ("embed", "{photo}", "--out", "{t}/f.npz", "--batch-size", "0"), in_process=True,
        expect_in_stderr="--batch-size must be >= 1, got 0"),
    Row("probe a folder without train/ and val/", ("probe", "{t}/empty", "--no-progress"), setup=empty_folder,
        in_process=True, expect_in_stderr="--val-fraction 0.1"),
]


def cpu_without_bf16(monkeypatch: pytest.MonkeyPatch, t: Path) -> None:
    import effnet.deploy.inference

    monkeypatch.setattr(effnet.deploy.inference, "bf16_supported", lambda: False)


def flipped_copy(t: Path) -> None:
    from test_weights_verify import flipped_copy as make

    make(t)


NAS = ("nas", "{t}/digits", "--out", "{t}/nas", "--max-steps", "1", "--threads", "1")
ROWS += [
    Row("nas --space with an unknown key", (*NAS, "--space", "{t}/space.json"), in_process=True,
        setup=lambda t: (digits(t), (t / "space.json").write_text('{"kernels": [3]}')),
        expect_in_stderr="search space file {t}/space.json: unknown key(s) ['kernels']"),
    Row("nas --target-macs 0", (*NAS, "--target-macs", "0"), setup=digits, in_process=True,
        expect_in_stderr="--target-macs must be > 0"),
    Row("nas --w 0.5 (rewards bigger models)", (*NAS, "--w", "0.5"), setup=digits, in_process=True,
        expect_in_stderr="--w must be <= 0"),
    Row("nas --storage that cannot be opened", (*NAS, "--storage", "sqlite:////nonexistent-dir/x/study.db"),
        setup=digits, in_process=True, expect_in_stderr="cannot open study storage 'sqlite:////nonexistent-dir/x/"),
    Row("nas on an empty data folder", ("nas", "{t}/empty", "--out", "{t}/nas"), setup=empty_folder, in_process=True,
        expect_in_stderr="has no train/ and val/ folders"),
    Row("search --workers 0", ("search", "{t}/digits", "--out", "{t}/s", "--workers", "0"), setup=digits,
        in_process=True, expect_in_stderr="--workers must be >= 1, got 0"),
    Row("predict with a damaged copy of the Lite0 package file (it said goldfinch 100%)",
        ("predict", "{photo}", "--weights", "{t}/efficientnet-lite0-57934424.pth"),
        setup=lambda t: flipped_copy(t), in_process=True,
        expect_in_stderr="{t}/efficientnet-lite0-57934424.pth: sha256 is "),
    Row("train --batch-size 1 at 16 px (BatchNorm failed in step 1, the folder refused the rerun)",
        (*TRAIN, "--out", "{t}/run", "--batch-size", "1"), setup=digits, in_process=True,
        expect_in_stderr="use --batch-size 2 or more, or --freeze-bn (an incomplete last batch is already dropped)"),
    Row("train on a data path that is a file (it said 'does not exist')",
        ("train", "{photo}", "--out", "{t}/run", "--epochs", "1", "--workers", "0"), in_process=True,
        expect_in_stderr="data folder {photo} is a file, not a folder; give the folder that holds the images"),
    Row("eval on a data path that is a file (it said 'does not exist')",
        ("eval", "{photo}", "--weights", "lite0", "--workers", "0"), in_process=True,
        expect_in_stderr="data folder {photo} is a file, not a folder"),
    Row("predict --backend bf16 on a CPU without bf16 (it said 'use dtype=None')",
        ("predict", "{photo}", "--weights", "lite0", "--backend", "bf16"), in_process=True, patch=cpu_without_bf16,
        expect_in_stderr="--backend bf16: this CPU has no native bf16 (AVX512-BF16 or AMX), where bf16 runs slower "
                         "than fp32; use --backend channels_last"),
]

BUSY_PORT = 18765
_held_sockets: list = []


def port_in_use(t: Path) -> None:
    """Something listens on BUSY_PORT (this test, or whoever holds it already: in use either way)."""
    import socket

    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", BUSY_PORT))
        sock.listen(1)
        _held_sockets.append(sock)
    except OSError:
        sock.close()


ROWS += [
    Row("serve on a port in use: refused before loading the model",
        ("serve", "--port", str(BUSY_PORT)), setup=port_in_use, in_process=True,
        expect_in_stderr=f"127.0.0.1:{BUSY_PORT} is in use (another server?); pick another with --port"),
    Row("serve NaN weights", ("serve", "--weights", "{w}/nan.pth", "--port", "0"), in_process=True,
        expect_in_stderr="NaN/infinite"),
    Row("serve --backend that does not exist", ("serve", "--backend", "tensorrt", "--port", "0"), in_process=True,
        expect_in_stderr="unknown backend 'tensorrt'; choose from eager, channels_last"),
    Row("serve --replicas without --ray", ("serve", "--replicas", "2", "--port", "0"), in_process=True,
        expect_in_stderr="--replicas needs --ray"),
    Row("serve --max-batch-size 0", ("serve", "--max-batch-size", "0"), in_process=True,
        expect_in_stderr="argument --max-batch-size: must be a positive integer"),
]


ROWS += [
    # A wrong password needs a server: tests/test_search_postgres.py checks its one line.
    Row("nas --storage with a scheme that is no database", (*NAS, "--storage", "http://user:pw@host/db"),
        setup=digits, in_process=True, expect_in_stderr="--storage 'http://user:***@host/db': unknown database 'http'"),
    Row("nas --storage on a host where no database server listens",
        (*NAS, "--storage", "postgresql://effnet:pw@127.0.0.1:1/study"), setup=digits, in_process=True,
        expect_in_stderr="cannot open study storage 'postgresql://effnet:***@127.0.0.1:1/study': connection failed"),
]


def a_two_class_run(t: Path) -> None:
    """{t}/run: a run as effnet train leaves it (Lite0, classes cat and coffee, 64 px), random weights."""
    import json

    from safetensors.torch import save_file

    from effnet import create_model

    model = create_model("lite0", num_classes=2)
    (t / "run").mkdir()
    save_file(model.state_dict(), t / "run" / "model.safetensors",
              metadata={"format": "effnet", "classes": json.dumps(["cat", "coffee"]), "image_size": "64",
                        "effnet_config": json.dumps(model.config.to_dict())})


# issue 22: the run is the unit of export; nothing overwritten unasked; exported files as weights
ROWS += [
    Row("export without --weights (random weights, exit 0 before)", ("export", "--model", "lite0", "-o", "{t}/n.onnx"),
        in_process=True, expect_in_stderr="pass --allow-random-head to export it anyway"),
    Row("export weights with another --num-classes (a random head, exit 0 before)",
        ("export", "--weights", "{w}/lite0.safetensors", "--num-classes", "2", "-o", "{t}/n.onnx"), in_process=True,
        expect_in_stderr="has a 1000-class classifier, so the exported one would be randomly initialised"),
    Row("export over an existing file without --overwrite",
        ("export", "--weights", "{w}/lite0.safetensors", "-o", "{t}/keep/lite0.onnx"), in_process=True,
        expect_in_stderr="{t}/keep/lite0.onnx already exists; pass --overwrite"),
    Row("export a run with --num-classes that contradicts it", ("export", "--weights", "{t}/run", "--num-classes", "5"),
        setup=a_two_class_run, in_process=True, expect_in_stderr="--num-classes 5 contradicts the run {t}/run"),
    Row("export a run with --size that contradicts it", ("export", "--weights", "{t}/run", "--size", "128"),
        setup=a_two_class_run, in_process=True, expect_in_stderr="--size 128 contradicts the run {t}/run"),
    Row("export a run with --model that contradicts it",
        ("export", "--weights", "{t}/run/model.safetensors", "--model", "b0"), setup=a_two_class_run,
        in_process=True, expect_in_stderr="--model b0 contradicts the run"),
    Row("predict with a damaged .onnx as weights", ("predict", "{t}/keep/lite0.onnx", "{photo}"), in_process=True,
        expect_in_stderr="{t}/keep/lite0.onnx is not a readable ONNX model"),
    Row("embed --backend that does not exist", ("embed", "{photo}", "--out", "{t}/f.npz", "--backend", "tensorrt"),
        in_process=True, expect_in_stderr="argument --backend: invalid choice: 'tensorrt'"),
]

# issue 21: LP-FT's head fitted by a probe needs pretrained features to probe
ROWS += [
    Row("train --head-init probe without --weights", ("train", "demo", "--head-init", "probe", "--out", "{t}/run"),
        in_process=True, expect_in_stderr="--head-init probe needs pretrained --weights"),
]

# issue 21: --freeze-backbone became --freeze-backbone/--no-freeze-backbone (default: the recipe's); neither takes a value
ROWS += [
    Row("train --freeze-backbone=yes", ("train", "demo", "--freeze-backbone=yes", "--out", "{t}/run"),
        in_process=True, expect_in_stderr="argument --freeze-backbone/--no-freeze-backbone: ignored explicit argument 'yes'"),
    Row("train --no-freeze-backbone=no", ("train", "demo", "--no-freeze-backbone=no", "--out", "{t}/run"),
        in_process=True, expect_in_stderr="argument --freeze-backbone/--no-freeze-backbone: ignored explicit argument 'no'"),
]


# ---------------------------------------------------------------- shared inputs
def _tiny_h5(path: Path) -> None:
    """A legacy Keras weights file (layer_names + weight_names), big enough that cutting it in half damages it."""
    import h5py
    import numpy as np

    with h5py.File(path, "w") as h5:
        h5.attrs["layer_names"] = [b"stem_conv"]
        group = h5.create_group("stem_conv")
        group.attrs["weight_names"] = [b"stem_conv/kernel:0"]
        group.create_dataset("stem_conv/kernel:0", data=np.ones((3, 3, 3, 32, 64), dtype=np.float32))


def _truncate(src: Path, dst: Path) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Weight files as users have them: random torchvision/timm B0s, the real Lite0 weights, damaged files."""
    import json

    import timm
    import torchvision
    from safetensors import safe_open
    from safetensors.torch import save_file

    from effnet.weights import convert_file, get_weight_set
    from effnet.weights.registry import local_package_file

    w = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    torch.save(torchvision.models.efficientnet_b0().state_dict(), w / "tv_b0.pth")
    tf_port = timm.create_model("tf_efficientnet_b0").state_dict()
    torch.save(tf_port, w / "model.pth")
    torch.save(tf_port, w / "tf_efficientnet_b0.pth")
    (w / "tf_efficientnet_experiments").mkdir()
    torch.save(timm.create_model("efficientnet_b0").state_dict(), w / "tf_efficientnet_experiments" / "efficientnet_b0.pth")
    lite0 = local_package_file(get_weight_set("lite0"))
    shutil.copyfile(lite0, w / "lite0.pth")
    state = torch.load(lite0, weights_only=True)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first].contiguous().clone()
    state[first].view(-1)[0] = float("nan")
    torch.save(state, w / "nan.pth")
    convert_file(lite0, w / "lite0.safetensors", "lite0")
    with safe_open(str(w / "lite0.safetensors"), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    config = json.loads(meta["effnet_config"])
    meta["effnet_config"] = json.dumps({**config, "bn_eps": -1})
    save_file(tensors, w / "bad_eps.safetensors", metadata=meta)
    _truncate(w / "lite0.safetensors", w / "truncated.safetensors")
    _tiny_h5(w / "full.h5")
    _truncate(w / "full.h5", w / "truncated.h5")
    return w


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("photos") / "astronaut.jpg"
    Image.fromarray(data.astronaut()).resize((128, 128)).save(path)
    return path


# ---------------------------------------------------------------- the runner
def snapshot(folder: Path) -> dict[str, str]:
    # EFFNET_HOME's record of verified weight files is a cache, not the user's work: a refusal may leave it.
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and os.access(p, os.R_OK) and p.name != "verified-weights.json"}


def user_work(t: Path) -> None:
    (t / "keep").mkdir()
    (t / "keep" / "out.safetensors").write_bytes(b"the user's previous conversion")
    (t / "keep" / "lite0.onnx").write_bytes(b"the user's previous export")
    (t / "keep" / "lite0.pt").write_bytes(b"the user's previous TorchScript file")


def run_row(row: Row, t: Path, argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    env = {"EFFNET_HOME": str(t / "home"), **env}
    if not row.in_process:
        proc = subprocess.run([sys.executable, "-m", "effnet", *argv], cwd=t, env={**os.environ, **BASE_ENV, **env},
                              capture_output=True, text=True, timeout=600)
        return proc.returncode, proc.stdout, proc.stderr
    monkeypatch.chdir(t)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if row.patch is not None:
        row.patch(monkeypatch, t)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse exits from inside parse_args
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _writable_again(t: Path) -> None:
    for p in [t, *t.rglob("*")]:
        if p.is_dir():
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_misuse(row: Row, tmp_path: Path, weights: Path, photo: Path, monkeypatch, capsys):
    if row.needs_nonroot and IS_ROOT:
        pytest.skip("file permissions do not bind root; the disk-full rows cover the same one-line path")
    t = tmp_path / "work"
    t.mkdir()
    user_work(t)
    if row.setup is not None:
        row.setup(t)

    def fill(text: str) -> str:
        return text.format(t=t, w=weights, photo=photo)

    before = snapshot(t)
    try:
        code, out, err = run_row(row, t, [fill(a) for a in row.argv], {k: fill(v) for k, v in row.env.items()},
                                 monkeypatch, capsys)
    finally:
        _writable_again(t)
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert code == row.expect_code, (code, err)
    assert len(lines) == row.stderr_lines, err
    assert fill(row.expect_in_stderr) in err, err
    assert fill(row.expect_in_stdout) in out, out
    assert "NaN" not in out
    after = snapshot(t)
    assert {k: v for k, v in after.items() if k in before} == before, "a file that existed was changed or lost"
    if row.expect_code != 0:
        assert sorted(after) == sorted(before), "a refused command left files behind"
