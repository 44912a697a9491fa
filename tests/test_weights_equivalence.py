"""Each source's reference model, random weights and BN statistics, saved natively, loaded into effnet.

Eval-mode logits must agree within 1e-4 (max abs). The default run covers b0 and a bigger size at a
small input; ``-m slow`` covers every size.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import effnet
from effnet.arch.layers import MBConv
from effnet.weights import read_weights

os.environ.setdefault("KERAS_BACKEND", "torch")
TOL = 1e-4
ALL_B = [f"b{i}" for i in range(8)]


def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BN affine and running statistics, random (non-zero) biases."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                n = mod.num_features
                mod.weight.copy_(torch.rand(n, generator=g) + 0.5)
                mod.bias.copy_(torch.randn(n, generator=g) * 0.1)
                mod.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            elif isinstance(mod, torch.nn.Conv2d | torch.nn.Linear) and mod.bias is not None:
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.1)
        # Small gammas on each block's last BN (the residual branch): otherwise 45-55 random blocks
        # (B6/B7) grow activations to ~1e10, where float32 rounding alone exceeds any absolute tolerance.
        for mod in model.modules():
            if isinstance(mod, MBConv) or type(mod).__name__ in ("InvertedResidual", "DepthwiseSeparableConv"):
                last_bn = [m for m in mod.modules() if isinstance(m, torch.nn.BatchNorm2d)][-1]
                last_bn.weight.copy_(torch.rand(last_bn.num_features, generator=g) * 0.2 + 0.1)
    return model.eval()


def max_diff(model: torch.nn.Module, ref: torch.nn.Module, h: int, w: int) -> float:
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model.eval()(x), ref(x)
    assert theirs.abs().max() > 1e-3  # the comparison is not between two zero tensors
    return (ours - theirs).abs().max().item()


def check_torch_ref(tmp_path, ref, name, filename, h, w, *, expect_padding, expect_eps, save=torch.save):
    randomise(ref)
    path = tmp_path / filename
    save(ref.state_dict(), path)
    model = effnet.create_model(name, weights=str(path))
    assert (model.config.padding, model.config.bn_eps) == (expect_padding, expect_eps)
    diff = max_diff(model, ref, h, w)
    print(f"{filename} {name} {h}x{w}: max abs logit diff {diff:.3g}")
    assert diff <= TOL


# ---------------------------------------------------------------- torchvision
def _torchvision(name, h, w, tmp_path):
    import torchvision

    ref = getattr(torchvision.models, f"efficientnet_{name}")()
    eps = 1e-3 if name in ("b5", "b6", "b7") else 1e-5  # torchvision builds B5-B7 with eps=1e-3
    check_torch_ref(tmp_path, ref, name, f"tv_{name}.pth", h, w, expect_padding="symmetric", expect_eps=eps)


@pytest.mark.parametrize("name,h,w", [("b0", 128, 128), ("b5", 64, 72)])
def test_torchvision(name, h, w, tmp_path):
    _torchvision(name, h, w, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_B)
def test_torchvision_all(name, tmp_path):
    _torchvision(name, 97, 129, tmp_path)


# ---------------------------------------------------------------- timm
def _timm(arch, name, h, w, tmp_path, save=torch.save, suffix=".pth"):
    import timm

    tf = arch.startswith("tf_")
    check_torch_ref(tmp_path, timm.create_model(arch), name, arch + suffix, h, w,
                    expect_padding="same" if tf else "symmetric", expect_eps=1e-3 if tf else 1e-5, save=save)


@pytest.mark.parametrize(
    "arch,name,h,w",
    [
        ("efficientnet_b0", "b0", 128, 128),
        ("tf_efficientnet_b0", "b0", 231, 317),  # odd sizes: TF SAME padding is asymmetric here
        ("tf_efficientnet_b2", "b2", 67, 99),
        ("tf_efficientnet_lite0", "lite0", 131, 97),
    ],
)
def test_timm(arch, name, h, w, tmp_path):
    _timm(arch, name, h, w, tmp_path)


def test_timm_safetensors(tmp_path):
    # timm's hub files are safetensors under a folder named after the model.
    _timm("tf_efficientnet_b0", "b0", 97, 99, tmp_path, save=lambda sd, p: save_file(sd, p), suffix=".safetensors")


@pytest.mark.slow
@pytest.mark.parametrize("arch", [f"tf_efficientnet_{n}" for n in ALL_B] + [f"efficientnet_{n}" for n in ALL_B]
                         + [f"tf_efficientnet_lite{i}" for i in range(5)])
def test_timm_all(arch, tmp_path):
    name = arch.replace("tf_", "").replace("efficientnet_", "")
    _timm(arch, name, 99, 131, tmp_path)


def test_timm_checkpoint_arch_decides_padding(tmp_path):
    """A training checkpoint {"arch": ..., "state_dict": ...} under a neutral name still gets SAME padding."""
    import timm

    ref = randomise(timm.create_model("tf_efficientnet_b0"))
    torch.save({"arch": "tf_efficientnet_b0", "epoch": 3, "state_dict": ref.state_dict()}, tmp_path / "last.pth")
    model = effnet.create_model("b0", weights=str(tmp_path / "last.pth"))
    assert model.config.padding == "same"
    assert max_diff(model, ref, 99, 67) <= TOL


# ---------------------------------------------------------------- lukemelas
def to_lukemelas(timm_state: dict) -> dict:
    """timm -> lukemelas/EfficientNet-PyTorch names, written independently of effnet's converter."""
    top = {"conv_stem": "_conv_stem", "bn1": "_bn0", "conv_head": "_conv_head", "bn2": "_bn1", "classifier": "_fc"}
    ds = {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "conv_pw": "_project_conv", "bn2": "_bn2"}
    ir = {"conv_pw": "_expand_conv", "bn1": "_bn0", "conv_dw": "_depthwise_conv", "bn2": "_bn1",
          "conv_pwl": "_project_conv", "bn3": "_bn2"}
    se = {"se.conv_reduce": "_se_reduce", "se.conv_expand": "_se_expand"}
    blocks = sorted({tuple(map(int, k.split(".")[1:3])) for k in timm_state if k.startswith("blocks.")})
    flat = {sb: i for i, sb in enumerate(blocks)}
    out = {}
    for key, value in timm_state.items():
        if key.startswith("blocks."):
            _, s, b, *rest = key.split(".")
            part, leaf = ".".join(rest[:-1]), rest[-1]
            inverted = f"blocks.{s}.{b}.conv_pwl.weight" in timm_state
            new = se.get(part) or (ir if inverted else ds)[part]
            out[f"_blocks.{flat[(int(s), int(b))]}.{new}.{leaf}"] = value
        else:
            head, leaf = key.split(".", 1)
            out[f"{top[head]}.{leaf}"] = value
    return out


@pytest.mark.parametrize("arch,name", [("tf_efficientnet_b0", "b0"), ("tf_efficientnet_lite2", "lite2")])
def test_lukemelas_format(arch, name, tmp_path):
    import timm

    ref = randomise(timm.create_model(arch))
    torch.save(to_lukemelas(ref.state_dict()), tmp_path / "efficientnet-weights.pth")
    model = effnet.create_model(name, weights=str(tmp_path / "efficientnet-weights.pth"))
    assert (model.config.padding, model.config.bn_eps) == ("same", 1e-3)
    diff = max_diff(model, ref, 101, 75)
    print(f"lukemelas {name}: max abs logit diff {diff:.3g}")
    assert diff <= TOL


# ---------------------------------------------------------------- effnet's own files
def test_effnet_checkpoint_and_convert_roundtrip(tmp_path):
    import timm

    ref = randomise(timm.create_model("tf_efficientnet_b0"))
    torch.save(ref.state_dict(), tmp_path / "tf_efficientnet_b0.pth")
    out = effnet.weights.convert_file(tmp_path / "tf_efficientnet_b0.pth", tmp_path / "b0.safetensors", "b0")
    converted = effnet.create_model("b0", weights=str(out))
    assert converted.config.padding == "same"  # kept in the safetensors metadata
    assert max_diff(converted, ref, 99, 67) <= TOL
    # effnet names wrapped like the training checkpoints, DataParallel prefix included
    torch.save({"model": {f"module.{k}": v for k, v in converted.state_dict().items()}, "epoch": 1},
               tmp_path / "ckpt.pt")
    again = effnet.create_model("b0", padding="same", weights=str(tmp_path / "ckpt.pt"))
    assert max_diff(again, ref, 99, 67) <= TOL


# ---------------------------------------------------------------- Keras
def _keras_model(name: str, h: int, w: int):
    import keras

    rng = np.random.default_rng(0)
    cls = getattr(keras.applications, f"EfficientNet{name.upper()}")
    km = cls(weights=None, input_shape=(h, w, 3), classifier_activation=None)
    for layer in km.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            # Small gammas on the residual branches: with Keras' glorot init, 55 blocks (B7) otherwise
            # grow the activations to ~1e10, where float32 rounding alone exceeds any absolute tolerance.
            low, high = (0.1, 0.3) if layer.name.endswith("project_bn") else (0.5, 1.5)
            layer.set_weights([rng.uniform(low, high, n), rng.normal(0, 0.1, n), rng.normal(0, 0.1, n),
                               rng.uniform(0.5, 1.5, n)])
        elif isinstance(layer, keras.layers.Normalization):
            mean, var, count = layer.get_weights()
            layer.set_weights([rng.uniform(0.3, 0.6, mean.shape), rng.uniform(0.03, 0.08, var.shape), count])
        elif isinstance(layer, keras.layers.Conv2D) and layer.use_bias:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape)])
    return km


def _keras(name, h, w, tmp_path, legacy=True):
    km = _keras_model(name, h, w)
    files = [tmp_path / "k.weights.h5"]
    km.save_weights(files[0])
    if legacy:  # Keras 3 still writes the legacy whole-model HDF5 layout of the official releases
        files.append(tmp_path / "k.h5")
        km.save(files[1])
    x = np.random.default_rng(1).uniform(0, 255, (2, h, w, 3)).astype("float32")
    ref = np.asarray(km(x, training=False).detach().cpu())
    for path in files:
        model = effnet.create_model(name, weights=str(path)).eval()
        assert (model.config.padding, model.config.bn_eps) == ("same", 1e-3)
        prep = read_weights(path).preprocessing  # the Keras model's own input normalisation
        xt = torch.from_numpy(x).permute(0, 3, 1, 2) / 255.0
        xt = (xt - torch.tensor(prep.mean).view(1, 3, 1, 1)) / torch.tensor(prep.std).view(1, 3, 1, 1)
        with torch.no_grad():
            diff = float(np.abs(model(xt).numpy() - ref).max())
        print(f"keras {path.name} {name} {h}x{w}: max abs logit diff {diff:.3g}")
        assert diff <= TOL


def test_keras_b0(tmp_path):
    _keras("b0", 115, 163, tmp_path)


def test_keras_b2_small(tmp_path):
    _keras("b2", 65, 97, tmp_path, legacy=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_B)
def test_keras_all(name, tmp_path):
    _keras(name, 97, 129, tmp_path)
