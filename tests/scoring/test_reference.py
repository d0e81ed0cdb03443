"""Reference ranges: published-only file integrity, matching by region/sex/age, z-scores,
aging profile and the explicitly weighted composite."""

import json

import pandas as pd
import pytest

from layerseg.errors import ConfigError
from layerseg.scoring import aging_profile, composite_index, load_reference_ranges


def test_packaged_file_every_range_has_source_and_n():
    ref = load_reference_ranges()
    assert ref.version
    assert len(ref.ranges) > 20
    for r in ref.ranges:
        assert r["source"] in ref.sources
        assert isinstance(r["n"], int) and r["n"] > 0 and r["sd"] > 0
        src = ref.sources[r["source"]]
        assert src["citation"] and src["url"]
        assert "simulat" not in (src["citation"] + src["method"]).lower()


def test_lookup_and_zscore():
    ref = load_reference_ranges()
    # Meng 2022, forehead dermis, women 0.86 +- 0.16 mm
    z, rid, why = ref.zscore(1.18, "thickness_mean_mm", "dermis", "forehead", "female", 50)
    assert z == pytest.approx(2.0) and why is None and rid.startswith("meng2022")
    # alias: malar -> zygoma (men 1.14 +- 0.21)
    z, _, _ = ref.zscore(0.93, "thickness_mean_mm", "dermis", "malar", "M", None)
    assert z == pytest.approx(-1.0)
    # glabella is its own site (1.14 +- 0.30 for men) before its canonical region (forehead)
    z, rid, _ = ref.zscore(1.44, "thickness_mean_mm", "dermis", "glabella", "M", None)
    assert z == pytest.approx(1.0) and "glabella" in rid
    z, _, why = ref.zscore(1.0, "thickness_mean_mm", "dermis", "forehead", None, None)
    assert z is None and "sex" in why
    # age-banded: 50 MHz full skin, forehead women 30-39: 1.98 +- 0.24
    z, rid, _ = ref.zscore(2.22, "skin_thickness_mean_mm", "skin", "forehead", "F", 35)
    assert z == pytest.approx(1.0) and "30-40" in rid
    z, _, why = ref.zscore(2.22, "skin_thickness_mean_mm", "skin", "forehead", "F", None)
    assert z is None and "age" in why
    z, _, why = ref.zscore(2.22, "skin_thickness_mean_mm", "skin", "forehead", "F", 65)
    assert z is None and "outside" in why
    # sex-specific wins over both-sex (masseter SWE: men 11.73 +- 1.27)
    z, rid, _ = ref.zscore(11.73, "stiffness_median_kpa", "muscle", "jaw", "M", None)
    assert z == pytest.approx(0.0) and ":M" in rid
    z, rid, _ = ref.zscore(10.67 + 1.77, "stiffness_median_kpa", "muscle", "jaw", None, None)
    assert z == pytest.approx(1.0) and ":all" in rid
    z, _, why = ref.zscore(1.0, "thickness_mean_mm", "fat", "forehead", "F", 40)
    assert z is None and "no published" in why


def test_user_file_validation(tmp_path):
    bad = {"version": "x", "sources": {"s": {"citation": "c"}},
           "ranges": [{"marker": "thickness_mean_mm", "layer": "dermis", "site": "a",
                       "region": "a", "sex": "F", "age_min": None, "age_max": None,
                       "mean": 1.0, "sd": 0.1, "source": "s"}]}
    p = tmp_path / "r.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="n"):
        load_reference_ranges(p)
    bad["ranges"][0]["n"] = 10
    bad["ranges"][0]["source"] = "unknown"
    p.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="unknown source"):
        load_reference_ranges(p)


def test_aging_profile_and_composite():
    t = pd.DataFrame({"id": ["a", "a"], "layer": ["epidermis", "dermis"],
                      "thickness_mean_mm": [0.2, 0.5], "thickness_mean_mm_z": [0.5, -2.5],
                      "thickness_mean_mm_ref": ["r1", "r2"]})
    prof = aging_profile(t)
    assert len(prof) == 1
    assert prof.iloc[0]["layer"] == "dermis" and prof.iloc[0]["direction"] == "below"
    idx, why = composite_index({"dermis:thickness_mean_mm": -2.5, "epidermis:x": 0.5},
                               {"dermis:thickness_mean_mm": -1.0, "epidermis:x": 1.0})
    assert idx == pytest.approx((2.5 + 0.5) / 2) and why is None
    idx, why = composite_index({}, {"dermis:thickness_mean_mm": -1.0})
    assert idx is None and "dermis" in why
