"""LP-FT (issue 21): ``head_init="probe"`` fits the new head with `effnet probe`'s code before fine-tuning,
and a run that does so still resumes to the uninterrupted run's weights."""

import math

import pytest
import torch

from _train_utils import tiny_kwargs, write_digits
from effnet.training import TrainConfig, train


@pytest.fixture(scope="module")
def two_digits(tmp_path_factory):
    """Real images of two classes (scikit-learn's digits 0 and 1), 16 per class, 32 px."""
    return write_digits(tmp_path_factory.mktemp("lpft") / "data", classes=(0, 1), per_class=16, size=32)


def test_the_fitted_head_is_the_probes_fit_on_the_runs_view(two_digits):
    from effnet.data.folders import find_splits
    from effnet.data.transforms import eval_transform
    from effnet.deploy.embed import embed_samples, feature_model, fit_linear_head
    from effnet.factory import create_model
    from effnet.training.head_init import fit_head_by_probe

    samples = find_splits(two_digits, None).train
    transform = eval_transform("lite0", resolution=32, crop_pct=1.0)
    with pytest.warns(UserWarning, match="classifier"):
        model = create_model("lite0", weights="lite0", num_classes=2)
    state = torch.get_rng_state()
    assert fit_head_by_probe(model, samples, transform, label_smoothing=0.1) == 32
    assert torch.equal(torch.get_rng_state(), state)  # a fitted head leaves dropout masks and resume as they were
    assert model.training  # back in the mode it was given in

    net, _ = feature_model("lite0", "lite0")  # what `effnet probe` embeds with
    emb = embed_samples(net, samples, transform, progress=False)
    head, _ = fit_linear_head(emb.features, emb.labels, 2, label_smoothing=0.1)
    torch.testing.assert_close(model.classifier.weight, head.weight, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model.classifier.bias, head.bias, rtol=1e-4, atol=1e-5)


def test_lp_ft_starts_from_a_fitted_head_where_random_starts_at_ln2(two_digits, tmp_path):
    # BN frozen (the statistics the head was fitted under) and a negligible rate: the first step shows the start
    kw = dict(model="lite0", weights="lite0", image_size=32, batch_size=8, max_steps=1, augment=None,
              warmup_epochs=None, epochs=1, freeze_bn=True, lr=1e-9)
    with pytest.warns(UserWarning, match="classifier"):
        zero = train(TrainConfig(**tiny_kwargs(two_digits, tmp_path / "zero", head_init="random", **kw)))
        probe = train(TrainConfig(**tiny_kwargs(two_digits, tmp_path / "probe", head_init="probe", **kw)))
    assert zero.history[0]["train_loss"] == pytest.approx(math.log(2), abs=1e-4)  # a zero head, whatever the features
    assert probe.history[0]["train_loss"] < 0.5 * math.log(2)  # digits 0 and 1 are separable on Lite0's features


def counting_fits(monkeypatch):
    """Count the head fits of the runs that follow (they still fit: the real function is called)."""
    from effnet.training import head_init

    calls, real = [], head_init.fit_head_by_probe

    def fit(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(head_init, "fit_head_by_probe", fit)
    return calls


def test_resume_of_an_lp_ft_run_matches_the_uninterrupted_run_without_fitting_again(tmp_path, monkeypatch):
    data = write_digits(tmp_path / "data")
    source = train(TrainConfig(**tiny_kwargs(data, tmp_path / "src", epochs=1)))
    data2 = write_digits(tmp_path / "two", classes=(5, 6))
    kw = dict(epochs=2, weights=str(source.weights_file), head_init="probe", dropout=0.2, drop_connect=0.2)
    fits = counting_fits(monkeypatch)
    with pytest.warns(UserWarning, match="classifier"):
        straight = train(TrainConfig(**tiny_kwargs(data2, tmp_path / "straight", **kw)))
        train(TrainConfig(**tiny_kwargs(data2, tmp_path / "split", max_steps=straight.steps // 2, **kw)))
        assert len(fits) == 2
        resumed = train(TrainConfig(**tiny_kwargs(data2, tmp_path / "split", resume=True, **kw)))
    assert len(fits) == 2  # the checkpoint's head replaces any fit: a resumed run skips it (the whole split: 224 s)
    assert resumed.steps == straight.steps
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_resume_with_no_checkpoint_yet_still_fits_the_head(two_digits, tmp_path, monkeypatch):
    kw = dict(model="lite0", weights="lite0", image_size=32, batch_size=8, max_steps=1, augment=None, epochs=1,
              head_init="probe", resume=True, quiet=True)
    fits = counting_fits(monkeypatch)
    with pytest.warns(UserWarning, match="classifier"):
        train(TrainConfig(**tiny_kwargs(two_digits, tmp_path / "fresh", **kw)))  # a search trial's first run
    assert len(fits) == 1


def test_few_images_train_the_probes_model_end_to_end(two_digits, tmp_path, capsys):
    """Below LINEAR_PROBE_BELOW images `effnet train` derives `effnet probe`'s model and says so: every backbone
    weight and BN statistic stays the pretrained one, and the head is the one the probe fits on the probe's view."""
    from safetensors.torch import load_file

    from effnet.cli import main
    from effnet.data.folders import find_splits
    from effnet.data.transforms import eval_transform
    from effnet.deploy.embed import embed_samples, feature_model, fit_linear_head

    def effnet_train(out, *flags):
        args = ["train", str(two_digits), "--model", "lite0", "--weights", "lite0", "--image-size", "32", "--epochs",
                "2", "--workers", "0", "--threads", "1", "--no-progress", "--out", str(out), *flags]
        with pytest.warns(UserWarning, match="classifier"):
            assert main(args) == 0
        lines = capsys.readouterr().out.splitlines()
        return lines[0], load_file(lines[-1].split("; weights ")[-1])

    line, trained = effnet_train(tmp_path / "derived")  # the derived rate: the head trains, nothing else may
    assert "backbone kept as pretrained (BN on ImageNet statistics) and the head fitted by the probe" in line
    assert "because 32 training images < " in line
    net, _ = feature_model("lite0", "lite0")
    pretrained = net.state_dict()
    backbone = [k for k in trained if not k.startswith("classifier.")]
    assert set(backbone) == set(pretrained)
    for key in backbone:  # weights and BN running statistics (BN in eval mode): bit for bit
        assert torch.equal(trained[key], pretrained[key]), key

    _, start = effnet_train(tmp_path / "start", "--lr", "1e-9")  # a rate that leaves the head where the fit put it
    emb = embed_samples(net, find_splits(two_digits, None).train, eval_transform("lite0", resolution=32),
                        progress=False)  # `effnet probe`'s features: its model, its view (the official centre crop)
    head, _ = fit_linear_head(emb.features, emb.labels, 2)
    torch.testing.assert_close(start["classifier.weight"], head.weight.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(start["classifier.bias"], head.bias.detach(), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(trained["classifier.weight"], start["classifier.weight"])  # the derived rate trains it
