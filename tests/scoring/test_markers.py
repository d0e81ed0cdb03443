"""score(): thickness of tilted flat layers (hand-worked), bad input, QC and tables."""

import math

import numpy as np
import pytest

import layerseg
from layerseg import Frame
from layerseg.errors import InvalidImageError
from layerseg.layers import get_profile
from layerseg.layers.surfaces import surfaces_to_labels
from layerseg.scoring import LAYER_COLUMNS, score

DEFAULT = get_profile("default")


def tilted_frame(angle_deg, spacing, thick_mm, rows=None, cols=240, top_mm=0.3, noise=0.0,
                 rng=None):
    """Flat parallel layers tilted by `angle_deg`, perpendicular thicknesses `thick_mm` (mm) for the
    default profile's layers in order (0 = absent), built from analytic sub-pixel surfaces."""
    ay, ax = spacing
    th = math.radians(angle_deg)
    x = np.arange(cols) * ax
    # vertical separation of two parallel lines at distance T: T / cos(angle)
    depth0 = top_mm + np.tan(th) * x
    if rows is None:  # deep enough for every layer in every column
        rows = int(math.ceil((depth0.max() + sum(thick_mm) / math.cos(th) + 0.5) / ay))
    s = [depth0]
    for t in thick_mm:
        s.append(s[-1] + t / math.cos(th))
    S = np.array(s) / ay
    S = np.clip(S, 0, rows)
    lab = surfaces_to_labels(S, DEFAULT, rows)
    grey = np.choose(lab, [5, 200, 140, 40, 180, 60, 90, 230]).astype(np.float64)
    if noise:
        grey = np.clip(grey + rng.normal(0, noise, grey.shape), 0, 255)
    return Frame(grey, spacing), lab


@pytest.mark.parametrize("spacing", [(0.03, 0.03), (0.02, 0.05)])
@pytest.mark.parametrize("angle", [0, 15, 30])
def test_tilted_flat_layers_thickness_along_normal(angle, spacing):
    thick = [0.2, 1.2, 1.5, 0.4, 0, 0, 0]
    frame, lab = tilted_frame(angle, spacing, thick)
    sc = score(frame, lab, frame_id="tilt")
    rows = {r["layer"]: r for r in sc.layers}
    assert set(rows) == {"epidermis", "dermis", "fat", "smas"}
    ay, ax = spacing
    for name, t in zip(DEFAULT.layers, thick):
        if t == 0:
            continue
        r = rows[name]
        # within one axial pixel of the perpendicular thickness
        assert abs(r["thickness_mean_mm"] - t) <= ay, (name, r["thickness_mean_mm"], t)
        assert abs(r["thickness_median_mm"] - t) <= ay
        assert r["thickness_p05_mm"] <= r["thickness_median_mm"] <= r["thickness_p95_mm"]
        # vertical thickness is t / cos(angle): the table says so too
        assert abs(r["thickness_vertical_mean_mm"] - t / math.cos(math.radians(angle))) <= ay
        # area: pixel count x pixel area
        assert r["area_mm2"] == pytest.approx((lab == layerseg.layers.LABEL_INDEX[name]).sum()
                                              * ay * ax)
    if angle == 30:
        # the normal and vertical measures really differ (by more than a pixel) at 30 degrees
        d = rows["fat"]
        assert d["thickness_vertical_mean_mm"] - d["thickness_mean_mm"] > 5 * ay


def test_shape_mismatch_names_the_frame():
    frame, lab = tilted_frame(0, (0.02, 0.05), [0.2, 1.0, 1.0, 0, 0, 0, 0])
    with pytest.raises(InvalidImageError, match="f042"):
        score(frame, lab[:-3], frame_id="f042")
    with pytest.raises(InvalidImageError, match="0-7"):
        score(frame, np.full(lab.shape, 9), frame_id="f042")


def test_no_spacing_empties_physical_measures_with_reason_rest_scored():
    frame, lab = tilted_frame(0, (0.02, 0.05), [0.2, 1.0, 1.0, 0, 0, 0, 0])
    nosp = Frame(frame.bmode, None)
    sc = score(nosp, lab, frame_id="x")
    for r in sc.layers:
        assert r.get("thickness_mean_mm") is None
        assert "spacing" in r["thickness_reason"]
        assert r.get("area_mm2") is None and "spacing" in r["area_reason"]
        assert r.get("roughness_ra_um") is None and "spacing" in r["roughness_reason"]
        assert r["echo_mean_grey"] is not None  # the rest is scored
    assert not sc.qc_pass and "spacing" in sc.frame["qc_reason"]
    assert sc.frame["qc_calibration"] == "none"
    assert sc.frame["sleb_present"] is None and sc.frame["sleb_reason"]


def test_absent_dermis_gives_reasons_not_zeros():
    frame, lab = tilted_frame(0, (0.02, 0.05), [0.2, 0, 1.0, 0.3, 0, 0, 0])
    sc = score(frame, lab, frame_id="x")
    rows = {r["layer"]: r for r in sc.layers}
    assert "dermis" not in rows
    assert rows["fat"]["echo_ratio_to_dermis"] is None
    assert "dermis" in rows["fat"]["echo_reason"]
    assert not sc.qc_pass and "dermis" in sc.frame["qc_reason"]
    assert sc.frame["dermis_echo_ratio_upper_lower"] is None
    assert sc.frame["dermis_echo_ratio_reason"]


def test_too_thin_layer_glcm_empty_with_reason():
    # SMAS one pixel thick: no axial pixel pair 0.1 mm apart inside it
    frame, lab = tilted_frame(0, (0.02, 0.05), [0.2, 1.0, 1.0, 0.02, 0, 0, 0])
    sc = score(frame, lab, frame_id="x")
    smas = {r["layer"]: r for r in sc.layers}["smas"]
    assert smas["glcm_contrast"] is None and "too thin" in smas["glcm_reason"]
    assert smas["thickness_mean_mm"] == pytest.approx(0.02, abs=0.02)
    derm = {r["layer"]: r for r in sc.layers}["dermis"]
    assert derm["glcm_contrast"] is not None and derm["glcm_reason"] is None


def test_order_violation_flagged_and_columns_left_out():
    frame, lab = tilted_frame(0, (0.02, 0.05), [0.2, 1.0, 1.0, 0.3, 0, 0, 0])
    lab = lab.copy()
    lab[5, 10:20] = 3  # fat above the skin in 10 columns
    sc = score(frame, lab, frame_id="x")
    assert sc.frame["qc_order_violations"] == 10
    assert not sc.qc_pass and "order" in sc.frame["qc_reason"]
    derm = {r["layer"]: r for r in sc.layers}["dermis"]
    # the 10 bad columns are left out (their neighbours' normals may leave the layer too)
    assert lab.shape[1] - 14 <= derm["thickness_columns"] <= lab.shape[1] - 10


def test_low_confidence_fails_qc_and_user_spacing_noted():
    frame, lab = tilted_frame(0, (0.02, 0.05), [0.2, 1.0, 1.0, 0.3, 0, 0, 0])
    f2 = frame.with_spacing((0.02, 0.05), "user")
    sc = score(f2, lab, confidence=np.full(lab.shape, 0.3))
    assert sc.frame["qc_confidence"] == pytest.approx(0.3)
    assert not sc.qc_pass and "confidence" in sc.frame["qc_reason"]
    assert sc.frame["qc_calibration"] == "user" and sc.frame["qc_spacing_override"]
    ok = score(frame, lab, confidence=0.9)
    assert ok.qc_pass
    # a fail named by the label source (a segmenter that did not understand the frame)
    why = "model uncertain: 90 % of columns below confidence 0.80"
    for given in (why, [why]):
        sc = score(frame, lab, confidence=0.9, qc_fail=given)
        assert not sc.qc_pass and sc.frame["qc_reason"] == why
        assert sc.layers                                          # still scored
    with pytest.raises(ValueError, match="QC fail reason"):
        score(frame, lab, qc_fail=[""])


def test_skin_cut_by_the_top_edge_is_truncated_and_noted():
    thick = [0.2, 1.2, 1.5, 0.4, 0, 0, 0]
    sp = (0.03, 0.03)
    # the skin 0.5 mm above the image: the entry echo is out of view, the dermis cut by 0.3 mm
    frame, lab = tilted_frame(0, sp, thick, top_mm=-0.5)
    sc = score(frame, lab)
    rows = {r["layer"]: r for r in sc.layers}
    assert "epidermis" not in rows
    assert rows["dermis"]["thickness_truncated"] is True
    assert rows["dermis"]["thickness_mean_mm"] == pytest.approx(0.9, abs=0.04)
    assert rows["fat"]["thickness_truncated"] is False
    assert "top edge in 100% of columns" in sc.frame["qc_notes"]
    assert sc.qc_pass                                             # a note, not a fail
    # tilted so that the skin begins above the first row's centre (a pixel is the layer's
    # when its centre lies inside it) over the left 1.2 of 7.2 mm
    tilt, lab = tilted_frame(15, sp, thick, top_mm=-0.3)
    st = score(tilt, lab)
    x = np.arange(240) * sp[1]
    cut = np.mean(-0.3 + np.tan(np.radians(15)) * x < sp[0] / 2)
    assert 0.15 < cut < 0.2
    assert {r["layer"]: r for r in st.layers}["epidermis"]["thickness_truncated"] is True
    assert f"top edge in {cut:.0%} of columns" in st.frame["qc_notes"]
    # with gel above the skin: nothing cut, no note
    ok, lab = tilted_frame(15, sp, thick, top_mm=0.3)
    so = score(ok, lab)
    assert not any(r.get("thickness_truncated") for r in so.layers)
    assert "top edge" not in (so.frame["qc_notes"] or "")
    # sub-pixel surfaces (a model's): a skin 0.7 rows down leaves row 0's centre in the gel,
    # 0.4 rows down does not
    base = np.zeros(240)
    for top, cut in ((0.7, False), (0.4, True)):
        S = np.array([base + top + 0.0, base + top + 7, base + top + 40, base + top + 90,
                      base + top + 103, base + top + 103, base + top + 103, base + top + 103])
        lab = surfaces_to_labels(S, DEFAULT, 120)
        f = Frame(np.choose(lab, [5, 200, 140, 40, 180, 60, 90, 230]).astype(float), sp)
        sc = score(f, lab, surfaces=S)
        assert {r["layer"]: r for r in sc.layers}["epidermis"]["thickness_truncated"] is cut


def test_saturated_dermis_is_noted():
    thick = [0.2, 1.2, 1.5, 0.4, 0, 0, 0]
    frame, lab = tilted_frame(0, (0.03, 0.03), thick, noise=20.0,
                              rng=np.random.default_rng(4))
    assert "saturated" not in (score(frame, lab).frame["qc_notes"] or "")
    # 10 dB more gain on a 60 dB display: +42 grey levels, the dermis (140 +- 20) clips at 255
    # in a few % of its pixels only; at +25 dB (+106) in most
    for gain_db, noted in ((10.0, False), (25.0, True)):
        g = np.clip(np.where(lab > 0, frame.bmode + gain_db * 255 / 60, frame.bmode), 0, 255)
        sc = score(Frame(g, frame.spacing_mm), lab)
        share = np.mean(g[lab == 2] >= 254.5)
        assert ("dermis saturated: " + f"{share:.0%}" in (sc.frame["qc_notes"] or "")) is noted
        assert bool(share > 0.1) is noted


def test_bone_has_depth_not_thickness():
    frame, lab = tilted_frame(0, (0.02, 0.05), [0.2, 1.0, 1.0, 0.3, 0, 1.0, 2.0])
    rows = {r["layer"]: r for r in score(frame, lab).layers}
    bone = rows["bone"]
    assert bone.get("thickness_mean_mm") is None and "shadow" in bone["thickness_reason"]
    assert bone.get("area_mm2") is None
    assert bone["depth_mm"] == pytest.approx(0.2 + 1.0 + 1.0 + 0.3 + 1.0, abs=0.02)
    assert rows["muscle"]["thickness_mean_mm"] == pytest.approx(1.0, abs=0.02)


def test_tables_long_and_wide(tmp_path):
    frame, lab = tilted_frame(15, (0.02, 0.05), [0.2, 1.0, 1.0, 0.3, 0, 0, 0], noise=8,
                              rng=np.random.default_rng(1))
    sc = layerseg.score(frame, lab, frame_id="t1", region="forehead", sex="F", age=30)
    long = sc.to_long()
    assert list(long["layer"]) == ["epidermis", "dermis", "fat", "smas"]
    assert set(LAYER_COLUMNS) <= set(long.columns)
    wide = sc.to_wide()
    assert len(wide) == 1
    assert not wide.loc[0, "deep_fat_present"] and wide.loc[0, "smas_present"]
    assert wide.loc[0, "dermis_thickness_mean_mm"] == long.loc[1, "thickness_mean_mm"]
    # reference z-score of the forehead dermis for women (Meng 2022: 0.86 +- 0.16 mm)
    z = long.loc[1, "thickness_mean_mm_z"]
    assert z == pytest.approx((long.loc[1, "thickness_mean_mm"] - 0.86) / 0.16)
    assert "meng2022" in long.loc[1, "thickness_mean_mm_ref"]
    # no file paths in the tables
    assert not any("/" in str(v) for v in wide.iloc[0].to_numpy() if isinstance(v, str)
                   and "mm" not in v and " " not in v)


def test_empty_label_map_is_a_failed_frame():
    frame, lab = tilted_frame(0, (0.02, 0.05), [0.2, 1.0, 1.0, 0, 0, 0, 0])
    sc = score(frame, np.zeros_like(lab), frame_id="empty")
    assert sc.failed and sc.layers == []
    assert "no labelled layer" in sc.frame["frame_reason"] and not sc.qc_pass
    long = sc.to_long()
    assert len(long) == 1 and long.loc[0, "frame_status"] == "failed"


def test_unknown_options_rejected():
    frame, lab = tilted_frame(0, (0.02, 0.05), [0.2, 1.0, 1.0, 0, 0, 0, 0])
    with pytest.raises(TypeError, match="roughnes_cutoff"):
        score(frame, lab, roughnes_cutoff=1.0)


def test_reader_notes_reach_the_qc_notes():
    """What a reader assumed (meta.extra['reader_notes']) is carried into the frame's QC notes."""
    from layerseg.frame import FrameMeta
    thick = [0.2, 1.2, 1.5, 0.4, 0, 0, 0]
    frame, lab = tilted_frame(0, (0.03, 0.03), thick, noise=20.0,
                              rng=np.random.default_rng(4))
    base = score(frame, lab).frame["qc_notes"] or ""
    assert "pixdim" not in base
    note = "NIfTI header states no spatial unit; pixdim taken as mm"
    noted = Frame(frame.bmode, frame.spacing_mm,
                  meta=FrameMeta(extra={"reader_notes": [note]}))
    sc = score(noted, lab)
    assert note in sc.frame["qc_notes"] and sc.frame["qc_pass"]
