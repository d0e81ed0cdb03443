"""The classical segmenter's configuration: defaults, overrides, validation, thickness tables."""

import json

import pytest

from layerseg.errors import ConfigError
from layerseg.segmentation import default_config, load_config


def test_defaults_have_every_label_and_no_comments():
    cfg = load_config()
    assert set(cfg["appearance"]) >= {"background", "epidermis", "dermis", "fat", "smas",
                                      "deep_fat", "muscle", "bone"}

    def walk(d):
        for k, v in d.items():
            assert not str(k).startswith("_")
            if isinstance(v, dict):
                walk(v)
    walk(cfg)
    assert cfg == default_config()


def test_override_merges_key_by_key(tmp_path):
    cfg = load_config({"filter": {"method": "lee"}, "appearance": {"fat": {"mean": 0.5}}})
    base = default_config()
    assert cfg["filter"]["method"] == "lee"
    assert cfg["filter"]["size_mm"] == base["filter"]["size_mm"]
    assert cfg["appearance"]["fat"] == {**base["appearance"]["fat"], "mean": 0.5}
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"bone_cost": 3.5}))
    assert load_config(p)["bone_cost"] == 3.5
    assert load_config(str(p))["bone_cost"] == 3.5


@pytest.mark.parametrize("over, words", [
    ({"filtr": {}}, "unknown configuration key 'filtr'"),
    ({"filter": {"method": "gauss"}}, "filter.method"),
    ({"filter": "median"}, "must be a mapping"),
    ({"appearance": {"fat": {"sd": 0}}}, "appearance.fat.sd"),
    ({"thickness_mm": {"default": {"dermis": [0.5, 1.0]}}}, "unknown configuration key"),
    ({"max_slope_deg": 30}, "unknown configuration key 'max_slope_deg'"),
    ({"adapt": {"iterations": -1}}, "adapt.iterations"),
])
def test_bad_overrides_named(over, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(".", r"\.")):
        load_config(over)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.json")
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(ConfigError, match="JSON"):
        load_config(p)
    p.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(p)
    with pytest.raises(ConfigError):
        load_config(42)
