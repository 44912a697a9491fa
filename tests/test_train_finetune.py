"""Fine-tuning: start from saved weights with a different class count, optionally only the head."""

import pytest
import torch
from safetensors.torch import load_file

from _train_utils import tiny_kwargs, write_digits
from effnet.training import TrainConfig, train


def test_finetune_new_classes_with_frozen_backbone(tmp_path):
    source = train(TrainConfig(**tiny_kwargs(write_digits(tmp_path / "three"), tmp_path / "src", epochs=1)))
    pretrained = load_file(str(source.weights_file))
    assert pretrained["classifier.weight"].shape[0] == 3
    data = write_digits(tmp_path / "two", classes=(5, 6))
    with pytest.warns(UserWarning, match="classifier"):
        result = train(TrainConfig(**tiny_kwargs(data, tmp_path / "ft", epochs=1, weights=str(source.weights_file),
                                                 freeze_backbone=True, lr=0.05)))
    state = result.model.state_dict()
    assert state["classifier.weight"].shape[0] == 2
    for key, value in pretrained.items():
        if not key.startswith("classifier."):
            assert torch.equal(state[key], value), key  # weights and BN statistics untouched
    trainable = [n for n, p in result.model.named_parameters() if p.requires_grad]
    assert trainable == ["classifier.weight", "classifier.bias"]


def test_bf16_autocast_on_cpu_trains(tmp_path):
    data = write_digits(tmp_path / "data")
    # One step from the same weights on the same batch: bf16 autocast changes the numbers (so it ran) by about
    # its precision (measured: first-step loss 4.19 vs 4.35 in fp32, weights within 2e-3), and nothing else.
    fp32, bf16 = (train(TrainConfig(**tiny_kwargs(data, tmp_path / amp, epochs=1, max_steps=1, amp=amp)))
                  for amp in ("off", "bf16"))
    assert bf16.steps == 1
    assert bf16.history[0]["train_loss"] == pytest.approx(fp32.history[0]["train_loss"], rel=0.1)
    assert bf16.history[0]["train_loss"] != fp32.history[0]["train_loss"]
    a, b = fp32.model.state_dict(), bf16.model.state_dict()
    assert all(b[k].dtype == a[k].dtype and torch.allclose(b[k].float(), a[k].float(), atol=1e-2) for k in a)
    assert not all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        train(TrainConfig(**tiny_kwargs(data, tmp_path / "run2", epochs=1, amp="fp16", device="cpu")))


def test_grad_checkpointing_trains_to_the_same_weights(tmp_path):
    """Checkpointing changes what is kept for the backward pass, not the result (BN statistics included)."""
    data = write_digits(tmp_path / "data")
    plain = train(TrainConfig(**tiny_kwargs(data, tmp_path / "plain", epochs=1)))
    for mode, stages, expect in [("full", None, {"full"}), ("selective", None, {"selective"}),
                                 (False, "early", {"full", None})]:
        ckpt = train(TrainConfig(**tiny_kwargs(data, tmp_path / str(mode), epochs=1, grad_checkpointing=mode,
                                               checkpoint_stages=stages)))
        assert {m.grad_checkpointing for m in ckpt.model.modules() if hasattr(m, "grad_checkpointing")} == expect
        a, b = plain.model.state_dict(), ckpt.model.state_dict()
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)
