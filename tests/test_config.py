"""Named configurations, config files and their error messages."""

import pytest

from effnet import ModelConfig, create_model, get_config, list_models
from effnet.arch.config import DEFAULT_BN_MOMENTUM, TF_BN_MOMENTUM

# The official efficientnet_params / efficientnet_lite_params: width, depth, resolution, dropout.
OFFICIAL = {
    "b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5), "b8": (2.2, 3.6, 672, 0.5),
    "l2": (4.3, 5.3, 800, 0.5), "lite0": (1.0, 1.0, 224, 0.2), "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3), "lite3": (1.2, 1.4, 280, 0.3), "lite4": (1.4, 1.8, 300, 0.3),
}  # fmt: skip


def test_named_configs_match_the_official_coefficients():
    assert sorted(list_models()) == sorted(OFFICIAL)
    for name, (w, d, r, p) in OFFICIAL.items():
        c = get_config(name)
        assert (c.width, c.depth, c.resolution, c.dropout) == (w, d, r, p)


def test_aliases_resolve():
    assert get_config("efficientnet_b3") is get_config("b3")
    assert get_config("tf_efficientnet_lite2") is get_config("lite2")


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown model 'b9'.*b0, b1.*lite4"):
        create_model("b9")


def test_bn_momentum_conventions():
    assert DEFAULT_BN_MOMENTUM == pytest.approx(1 - TF_BN_MOMENTUM) == pytest.approx(0.01)
    model = create_model("b0", bn_momentum=0.1, bn_eps=1e-5)
    assert model.stem.bn.momentum == 0.1 and model.head.bn.eps == 1e-5


def test_config_round_trips_through_json(tmp_path):
    config = get_config("lite3").replace(name="mine", dropout=0.1)
    path = tmp_path / "cfg.json"
    config.save(path)
    assert ModelConfig.load(path) == config
    assert create_model(str(path), num_classes=3).config == config


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"padding": "valid"}, "padding"), ({"activation": "gelu"}, "activation"), ({"dropout": 1.0}, "dropout"),
     ({"width": 0}, "width"), ({"colour": 1}, "unknown config field")],
)  # fmt: skip
def test_invalid_config_fields_are_named(changes, message):
    with pytest.raises((ValueError, TypeError), match=message):
        get_config("b0").replace(**changes)


def test_broken_config_file_is_named(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        get_config(str(path))
