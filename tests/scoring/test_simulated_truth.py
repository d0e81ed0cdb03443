"""Markers from the simulator's ground-truth labels match its truth JSON: thickness within one
pixel (vertical: against the truth surfaces' mean difference; normal: against the normal
thickness of the sub-pixel truth surfaces), SWE stiffness of thick layers within the simulated
noise. A few frames by default; 60 frames across regions, ages and tilts with -m slow."""

import numpy as np
import pytest

from layerseg.layers.thickness import thickness_normal_mm

simulate = pytest.importorskip("layerseg.simulate")

from layerseg.scoring import score  # noqa: E402

REGIONS = ("forehead", "temple", "zygoma", "cheek", "nasolabial", "chin", "jaw")


def check_frame(sf, frame_id):
    tr = sf.truth
    ay, ax = sf.frame.spacing_mm
    sc = score(sf.frame, sf.labels, region=tr["region"], frame_id=frame_id, age=tr["age"],
               sex=tr["sex"])
    assert sc.frame["qc_order_violations"] == 0
    rows = {r["layer"]: r for r in sc.layers}
    S = np.asarray(tr["surfaces_rows"])
    t_true = thickness_normal_mm(S, (ay, ax))
    checked = 0
    for k, name in enumerate(tr["profile"]):
        lt = tr["layers"][name]
        if name == "bone" or lt["present_fraction"] == 0 or name not in rows:
            continue
        r = rows[name]
        # vertical: the truth's mean over columns where the layer is present
        vert_true = lt["thickness_apparent_mm"] / lt["present_fraction"]
        assert abs(r["thickness_vertical_mean_mm"] - vert_true) <= ay, (frame_id, name)
        # along the normal: the same measure on the exact sub-pixel surfaces
        if np.isfinite(t_true[k]).sum() > 10 and lt["present_fraction"] > 0.5:
            assert abs(r["thickness_mean_mm"] - np.nanmean(t_true[k])) <= ay, (frame_id, name)
            checked += 1
        # SWE of layers much thicker than the 1 mm SWE resolution: within 2 x the 10 % noise
        el = tr.get("elasto")
        if el and el["kind"] == "swe_kpa" and r["stiffness_median_kpa"] is not None and \
                r["thickness_p05_mm"] > 3 * el["resolution_mm"]:
            kpa = lt["stiffness_kpa"]
            assert abs(r["stiffness_median_kpa"] - kpa) <= 2 * el["noise_frac"] * kpa, \
                (frame_id, name, r["stiffness_median_kpa"], kpa)
    assert checked >= 3
    return sc


@pytest.mark.parametrize("seed,region,age,tilt", [(1, "forehead", 70, 0.0),
                                                  (2, "jaw", 35, 8.0),
                                                  (3, "temple", 55, -12.0)])
def test_truth_labels_match_truth_fast(seed, region, age, tilt):
    sf = simulate.simulate_frame(seed, region=region, age=age, sex="F", tilt_deg=tilt,
                                 shape=(256, 256))
    check_frame(sf, f"sim{seed}")


@pytest.mark.slow
def test_truth_labels_match_truth_60_frames():
    rng = np.random.default_rng(2024)
    for i in range(60):
        region = REGIONS[i % len(REGIONS)]
        age = float(rng.uniform(20, 80))
        tilt = float(rng.uniform(-20, 20))
        sf = simulate.simulate_frame(1000 + i, region=region, age=age,
                                     sex="F" if i % 2 else "M", tilt_deg=tilt)
        check_frame(sf, f"sim{i}")
