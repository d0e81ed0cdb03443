import pytest

from layerseg.errors import ProfileError
from layerseg.layers import LABEL_NAMES, get_profile, region_names


def test_default_and_forehead_order():
    d = get_profile(None)
    assert d.region == "default"
    assert d.layers == ("epidermis", "dermis", "fat", "smas", "deep_fat", "muscle", "bone")
    assert d.labels == (1, 2, 3, 4, 5, 6, 7)
    f = get_profile("Forehead")
    assert f.layers.index("muscle") < f.layers.index("deep_fat")
    assert get_profile("malar").region == "zygoma"


def test_every_profile_holds_each_layer_once():
    for r in region_names():
        p = get_profile(r)
        assert sorted(p.labels) == list(range(1, len(LABEL_NAMES)))


def test_unknown_region():
    with pytest.raises(ProfileError, match="unknown facial region 'elbow'"):
        get_profile("elbow")
    assert get_profile("elbow", strict=False).region == "default"
