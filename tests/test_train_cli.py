"""`effnet train` then `effnet eval` on the trained weights agree on the held-out accuracy."""

import json

from _train_utils import write_digits
from effnet.cli import main


def test_train_then_eval_cli(tmp_path, capsys):
    data = write_digits(tmp_path / "data")
    run = tmp_path / "run"
    code = main(["train", str(data), "--model", "b0", "--image-size", "16", "--epochs", "2", "--batch-size", "8",
                 "--workers", "0", "--out", str(run), "--no-progress", "--threads", "1", "--dropout", "0",
                 "--drop-connect", "0"])
    assert code == 0
    for name in ("metrics.csv", "loss.png", "accuracy.png", "lr.png", "model.safetensors", "model_config.json"):
        assert (run / name).is_file(), name
    assert len((run / "metrics.csv").read_text().splitlines()) == 3
    trained = capsys.readouterr().out
    code = main(["eval", str(data), "--model", str(run / "model_config.json"), "--weights",
                 str(run / "model.safetensors"), "--image-size", "16", "--workers", "0", "--json", "--per-class"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 24 and set(result["per_class"]) == {"0", "1", "2"}
    assert f"final top-1 {result['top1']:.2f}%" in trained
    assert main(["train", str(tmp_path / "missing"), "--epochs", "1"]) == 2


def test_eval_uses_the_weight_sets_own_resolution():
    from effnet import get_config
    from effnet.deploy.evaluate import eval_resolution
    from effnet.weights.registry import list_weights

    other = [ws for ws in list_weights() if ws.preprocessing.resolution != get_config(ws.model).resolution]
    assert other, "the registry has weight sets trained at other sizes (torchvision B2-B7 V1, AdvProp ...)"
    for ws in other:
        assert eval_resolution(get_config(ws.model), ws.tag) == ws.preprocessing.resolution, ws.tag
    assert eval_resolution(get_config("b3"), "runs/mine/model.safetensors") == 300
    assert eval_resolution(get_config("b3"), None) == 300
