"""Bad data: unreadable files are skipped and listed, bad layouts are clear errors up front."""

import shutil
import warnings

import pytest

from _train_utils import TINY, tiny_kwargs, write_digits
from effnet.cli import main
from effnet.data.folders import default_workers, find_splits
from effnet.training import TrainConfig, train
from effnet.training.checkpoint import load_latest
from effnet.training.data import demo_dataset


def test_corrupt_truncated_and_non_image_files_are_skipped_and_listed(tmp_path):
    data = write_digits(tmp_path / "data")
    good = next((data / "train" / "1").glob("*.png"))
    blob = good.read_bytes()
    (data / "train" / "1" / "truncated.png").write_bytes(blob[: len(blob) // 2])
    (data / "train" / "2" / "garbage.jpg").write_bytes(b"this is not a jpeg" * 20)
    (data / "train" / "0" / "notes.txt").write_text("a stray text file")
    (data / "val" / "0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    result = train(TrainConfig(**tiny_kwargs(data, tmp_path / "run", epochs=1, batch_size=4)))
    listed = "\n".join(result.skipped_files)
    for name in ("truncated.png", "garbage.jpg", "notes.txt", "broken.png"):
        assert name in listed, listed
    assert len(result.skipped_files) == 4
    assert result.history and result.history[-1]["step"] == result.steps
    # Every good validation image was evaluated (3 classes x 8), the broken one not counted ...
    assert result.history[-1]["val_images"] == 3 * 8
    # ... and top-1 is a count of them: a whole number of 24ths, not NaN.
    correct = result.final_top1 * 24 / 100
    assert 0 <= correct <= 24 and correct == pytest.approx(round(correct), abs=1e-9)


def test_empty_class_folder_is_an_error(tmp_path):
    data = write_digits(tmp_path / "data")
    (data / "train" / "7").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*7 contains no images"):
        find_splits(data)


def test_missing_val_split_is_an_error_that_names_the_fix(tmp_path):
    data = write_digits(tmp_path / "data", splits=("train",))
    with pytest.raises(FileNotFoundError, match=r"missing split.*--val-fraction"):
        find_splits(data)
    splits = find_splits(data, val_fraction=0.25)
    assert len(splits.val) == 6 and len(splits.train) == 18
    assert {label for _, label in splits.val} == {0, 1, 2}


def test_flat_tree_needs_val_fraction(tmp_path):
    data = write_digits(tmp_path / "data", splits=("",))
    with pytest.raises(FileNotFoundError, match="missing split"):
        find_splits(data)
    assert find_splits(data, val_fraction=0.5).classes == ["0", "1", "2"]
    with pytest.raises(ValueError, match="between 0 and 1"):
        find_splits(data, val_fraction=1.5)


def test_val_class_unknown_to_train_is_an_error(tmp_path):
    data = write_digits(tmp_path / "data")
    shutil.copytree(data / "val" / "2", data / "val" / "9")
    with pytest.raises(ValueError, match=r"\['9'\].*training split does not have"):
        find_splits(data)


def test_missing_data_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train(TrainConfig(**tiny_kwargs(tmp_path / "nope", tmp_path / "run")))


def test_demo_set_is_written_once_as_an_image_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFNET_HOME", str(tmp_path))
    root = demo_dataset()
    assert root == tmp_path / "digits-v1"
    splits = find_splits(root)
    assert splits.classes == [str(i) for i in range(10)]
    assert len(splits.train) + len(splits.val) == 1797
    assert 350 <= len(splits.val) <= 370
    first = sorted((root / "train" / "0").glob("*.png"))[0].stat().st_mtime_ns
    assert demo_dataset() == root
    assert sorted((root / "train" / "0").glob("*.png"))[0].stat().st_mtime_ns == first


@pytest.mark.parametrize("cpus,local_world,expected", [(2, None, 2), (1, None, 1), (16, None, 4), (16, "2", 4),
                                                       (4, "2", 2), (2, "4", 0)])
def test_default_workers_never_exceed_this_process_share_of_the_cpus(monkeypatch, cpus, local_world, expected):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cpus)))
    if local_world is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local_world)
    assert default_workers() == expected


def test_train_cli_default_workers_fit_the_machine(tmp_path):
    """Without --workers, `effnet train` starts default_workers() loaders and the DataLoader has nothing to warn
    about (it warned "4 worker processes ... suggested max 2" on a 2-CPU machine)."""
    data = write_digits(tmp_path / "data")
    TINY.save(tmp_path / "tiny.json")
    out = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", str(data), "--model", str(tmp_path / "tiny.json"), "--image-size", "16", "--epochs", "1",
                     "--max-steps", "2", "--batch-size", "8", "--out", str(out), "--no-progress", "--threads", "1",
                     "--checkpoint-every", "1"]) == 0
    state, _ = load_latest(out / "checkpoints")
    assert state["config"]["workers"] == default_workers()
    assert not [str(w.message) for w in caught if "worker processes" in str(w.message)]
