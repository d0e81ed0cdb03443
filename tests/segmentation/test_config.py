"""The classical segmenter's configuration: defaults, overrides, validation, thickness tables."""

import json
import math

import pytest

from layerseg.errors import ConfigError
from layerseg.layers import get_profile
from layerseg.segmentation import default_config, load_config, thickness_limits_mm


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
    p.write_text(json.dumps({"max_slope_deg": 30}))
    assert load_config(p)["max_slope_deg"] == 30
    assert load_config(str(p))["max_slope_deg"] == 30


@pytest.mark.parametrize("over, words", [
    ({"filtr": {}}, "unknown configuration key 'filtr'"),
    ({"filter": {"method": "gauss"}}, "filter.method"),
    ({"filter": "median"}, "must be a mapping"),
    ({"appearance": {"fat": {"sd": 0}}}, "appearance.fat.sd"),
    ({"thickness_mm": {"default": {"dermis": [2.0, 1.0]}}}, "exceeds"),
    ({"thickness_mm": {"cheek": {"skin": [0, 1]}}}, "unknown layer 'skin'"),
    ({"max_slope_deg": 95}, "max_slope_deg"),
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


def test_thickness_limits_region_and_frequency():
    cfg = load_config({"thickness_mm": {"default": {"epidermis": [0.06, 0.24]},
                                        "chin": {"deep_fat": [0.0, 1.0]},
                                        "newregion": {"fat": [0.5, 1.0]}}})
    mn, mx = thickness_limits_mm(cfg, get_profile("chin"), frequency_mhz=None)
    assert (mn["deep_fat"], mx["deep_fat"]) == (0.0, 1.0)
    assert mx["epidermis"] == pytest.approx(0.24)
    mn48, mx48 = thickness_limits_mm(cfg, get_profile("chin"), frequency_mhz=48.0)
    assert mn48["epidermis"] == pytest.approx(0.03) and mx48["epidermis"] == pytest.approx(0.12)
    assert mx48["dermis"] == mx["dermis"]          # only the entry echo scales
    mn_d, mx_d = thickness_limits_mm(cfg, get_profile("cheek"))
    assert mx_d["deep_fat"] == default_config()["thickness_mm"]["cheek"]["deep_fat"][1]
    assert set(mn_d) == set(get_profile("cheek").layers)
    assert all(math.isfinite(v) for v in mn_d.values())
