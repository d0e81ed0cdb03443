"""`--ranges default|wide`: default frames are the bytes they were before ranges existed; wide
frames draw every setting from layerseg/data/sim_ranges.json and record it in the truth."""

import copy
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

import layerseg.simulate.core as core
from layerseg.cli import main
from layerseg.errors import ConfigError
from layerseg.simulate import simulate_frame
from layerseg.simulate.acoustics import AcousticParams, iq_to_display, resolution_cell_mm2
from layerseg.simulate.ranges import draw_value, draw_wide, ranges_table

# sha256 of bmode + labels + elasto (+ rf) of frames made by the simulator *before* the ranges
# option existed (commit 620e38b), shape 128 x 96; default ranges must reproduce them exactly.
BEFORE = {
    0: ({}, "8fe13140f60b1ffe4830ab96dda78d04e2acb330698c5c0b9a636937bae91ce2"),
    7: (dict(region="forehead", frequency_mhz=30.0),
        "2ee289394afc366212c93392002a42b565d1b46b99986f195e75875f2ed98982"),
    11: (dict(region="jaw", vary=False, return_rf=True),
         "d7bfa0d337bfa2ffb6c054d470d8336d353199b5ee7d2f38a2034c72b93e8c84"),
}
# images/ labels/ elasto/ of `layerseg simulate --n 3 --seed 4` at 96 x 64 over 6 x 3.2 mm,
# written before the ranges option existed
BEFORE_DATASET = "dd7e7f7b6df8854d1df2563f744788fc6a0654abeeb4fa05534350e7609e6f8b"


def _hash(s):
    h = hashlib.sha256()
    for a in (s.frame.bmode, s.labels, s.frame.elasto):
        h.update(np.ascontiguousarray(a).tobytes())
    if s.rf is not None:
        h.update(s.rf.tobytes())
    return h.hexdigest()


# The same frames at reduced precision (every other row of bmode and elasto as float16, the
# labels whole, every 16th RF sample as float16 over its peak): NumPy picks its exp/log/sin
# kernels by the CPU's vector extensions, so the float bytes differ in the last bits between
# machines (the digests above fail on an AVX2-only CPU with the NumPy and SciPy versions they
# were taken with); where the digest differs, the frame must still be these values within
# float16 rounding (any changed draw moves every speckle by tens of grey levels).
BEFORE_ARRAYS = Path(__file__).parent / "data" / "default_frames_before.npz"


def _matches_before(seed, s):
    ref = np.load(BEFORE_ARRAYS)
    np.testing.assert_array_equal(s.labels, ref[f"s{seed}_labels"])
    np.testing.assert_allclose(s.frame.bmode[::2], ref[f"s{seed}_bmode"].astype(np.float32),
                               rtol=2e-3, atol=0.05)
    np.testing.assert_allclose(s.frame.elasto[::2], ref[f"s{seed}_elasto"].astype(np.float32),
                               rtol=2e-3, atol=1e-3)     # NaN outside the elastography box
    assert (s.rf is None) == (f"s{seed}_rf" not in ref)
    if s.rf is not None:
        peak = float(np.abs(s.rf).max())
        assert peak == pytest.approx(float(ref[f"s{seed}_rfmax"]), rel=1e-5)
        np.testing.assert_allclose(s.rf[::16] / peak, ref[f"s{seed}_rf"].astype(np.float32),
                                   rtol=0, atol=1e-3)


@pytest.mark.parametrize("seed", sorted(BEFORE))
def test_default_frames_are_the_frames_from_before(seed):
    kw, digest = BEFORE[seed]
    plain = simulate_frame(seed, shape=(128, 96), **kw)
    default = simulate_frame(seed, shape=(128, 96), ranges="default", **kw)
    assert _hash(default) == _hash(plain)                 # same bytes on this machine
    if _hash(plain) != digest:                            # another CPU: the same values
        _matches_before(seed, plain)


def test_a_changed_draw_is_caught_by_the_reduced_precision_check():
    s = simulate_frame(0, shape=(128, 96))
    other = simulate_frame(1, shape=(128, 96))
    s.frame.bmode[:] = other.frame.bmode        # another speckle realisation, same labels
    with pytest.raises(AssertionError):
        _matches_before(0, s)


@pytest.mark.parametrize("extra", [[], ["--ranges", "default"]])
def test_default_dataset_cli_is_byte_identical_to_before(tmp_path, monkeypatch, extra):
    import layerseg.simulate as sim
    orig = sim.simulate_dataset
    monkeypatch.setattr(sim, "simulate_dataset", lambda *a, **k: orig(
        *a, shape=(96, 64), depth_mm=6.0, width_mm=3.2, **k))
    d = tmp_path / "d"
    assert main(["simulate", "--n", "3", "--out", str(d), "--seed", "4", "--no-progress"]
                + extra) == 0
    h = hashlib.sha256()
    for sub in ("images", "labels", "elasto"):
        for f in sorted((d / sub).iterdir()):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    assert h.hexdigest() == BEFORE_DATASET


def _within(v, spec, base=0.0):
    return spec["low"] - 1e-9 <= v - base <= spec["high"] + 1e-9


def test_wide_frame_uses_and_records_its_draws():
    w = ranges_table()["ranges"]["wide"]
    freqs = []
    for seed in range(3):
        s = simulate_frame(seed, shape=(96, 64), depth_mm=6.0, width_mm=3.2, ranges="wide",
                           with_elasto=False)
        t = json.loads(json.dumps(s.truth))  # JSON-able
        assert t["ranges"]["name"] == "wide"
        d = t["ranges"]["drawn"]
        ac = t["acoustics"]
        for k, spec in w["acoustics"].items():
            assert _within(d["acoustics"][k], spec), k
        for k in ("frequency_mhz", "fractional_bandwidth", "f_number", "noise_db",
                  "tgc_db_cm_mhz", "dynamic_range_db", "display_gamma", "tgc_max_db"):
            assert ac[k] == pytest.approx(d["acoustics"][k]), k
        cell = ac["resolution_cell_mm2"] / resolution_cell_mm2(AcousticParams())
        assert d["probe_gain_db"] == pytest.approx(-10 * math.log10(cell))
        assert ac["gain_db"] == pytest.approx(d["acoustics"]["gain_db"] + d["probe_gain_db"])
        assert ac["focus_mm"] == pytest.approx(t["phantom"].get("standoff_mm", ac["tgc_start_mm"])
                                               + d["acoustics"]["focus_below_skin_mm"])
        assert s.frame.meta.frequency_mhz == pytest.approx(d["acoustics"]["frequency_mhz"])
        assert s.frame.dynamic_range_db == pytest.approx(d["acoustics"]["dynamic_range_db"])
        for ly, entries in d["layers"].items():
            if ly in ac["backscatter_db"]:
                for k, v in entries.items():
                    key = "scatterers_per_cell" if k == "per_cell" else k
                    assert ac[key][ly] == pytest.approx(v), (ly, k)
        df = d["layers"]["deep_fat"]["backscatter_db"] - d["layers"]["fat"]["backscatter_db"]
        assert _within(df, w["layers"]["deep_fat"]["backscatter_db"])
        for k, v in d["specular_db"].items():
            assert ac["specular_db"][k] == pytest.approx(v) and _within(v, w["specular_db"][k])
        freqs.append(ac["frequency_mhz"])
    assert len(set(freqs)) == 3
    a = simulate_frame(5, shape=(64, 48), ranges="wide", with_elasto=False)
    b = simulate_frame(5, shape=(64, 48), ranges="wide", with_elasto=False)
    assert _hash(a) == _hash(b)


def test_wide_explicit_settings_win_and_errors():
    s = simulate_frame(1, shape=(64, 48), ranges="wide", frequency_mhz=40.0, f_number=2.5,
                       dynamic_range_db=45.0, with_elasto=False)
    ac = s.truth["acoustics"]
    assert (ac["frequency_mhz"], ac["f_number"], ac["dynamic_range_db"]) == (40.0, 2.5, 45.0)
    with pytest.raises(ConfigError):
        simulate_frame(1, shape=(64, 48), ranges="wide", vary=False)
    with pytest.raises(ConfigError):
        simulate_frame(1, shape=(64, 48), ranges="narrow")


def test_draw_value_distributions():
    rng = np.random.default_rng(0)
    lu = [draw_value({"dist": "loguniform", "low": 15.0, "high": 50.0}, rng) for _ in range(4000)]
    assert min(lu) >= 15 and max(lu) <= 50
    # uniform in log: the median is the geometric mean, a quarter lies under (15^3 50)^(1/4)
    assert np.median(lu) == pytest.approx(math.sqrt(15 * 50), rel=0.03)
    assert np.mean(np.array(lu) < (15 ** 3 * 50) ** 0.25) == pytest.approx(0.25, abs=0.03)
    un = [draw_value({"dist": "uniform", "low": -4.0, "high": 2.0, "relative_to": "fat.b"}, rng,
                     {"fat": {"b": -10.0}}) for _ in range(4000)]
    assert min(un) >= -14 and max(un) <= -8 and np.mean(un) == pytest.approx(-11.0, abs=0.1)
    with pytest.raises(ConfigError):
        draw_value({"dist": "normal", "low": 0, "high": 1}, rng)
    with pytest.raises(ConfigError):
        draw_value({"low": 0, "high": 1, "relative_to": "x.y"}, rng, {})
    # the table's ranges reach the targets
    w = ranges_table()["ranges"]["wide"]
    assert w["acoustics"]["frequency_mhz"]["low"] <= 15 and w["acoustics"]["frequency_mhz"][
        "high"] >= 50
    assert (w["acoustics"]["dynamic_range_db"]["low"], w["acoustics"]["dynamic_range_db"][
        "high"]) == (40.0, 80.0)
    for group in ("acoustics", "specular_db"):
        for k, spec in w[group].items():
            assert spec.get("src") and spec.get("reason"), (group, k)
    for ly, entries in w["layers"].items():
        for k, spec in entries.items():
            assert spec.get("src") and spec.get("reason"), (ly, k)


def test_layer_backscatter_override_shifts_the_mean_log_level_by_its_db(monkeypatch):
    """Same seed, same scatterers: raising the fat backscatter by D dB raises the log level in
    the fat interior by exactly D dB (noise off, no clipping) and leaves the dermis as it was."""
    base = draw_wide(np.random.default_rng(3))
    base["acoustics"].update(dynamic_range_db=120.0, gain_db=-20.0, display_gamma=1.0,
                             noise_db=-140.0)

    def run(fat_db):
        w = copy.deepcopy(base)
        w["layers"]["fat"]["backscatter_db"] = fat_db
        monkeypatch.setattr(core, "draw_wide", lambda rng, name="wide": (rng.random(), w)[1])
        return simulate_frame(2, region="cheek", shape=(256, 96), depth_mm=8.0, width_mm=4.0,
                              ranges="wide", with_elasto=False, standoff_mm=0.3, tilt_deg=0.0)

    lo, hi = run(-25.0), run(-10.0)
    assert np.array_equal(lo.labels, hi.labels)
    dr = 120.0
    fat = lo.labels == 3
    interior = fat & np.roll(fat, 8, 0) & np.roll(fat, -8, 0)
    diff_db = (hi.frame.bmode - lo.frame.bmode) * dr / 255.0
    assert interior.sum() > 200
    assert np.median(diff_db[interior]) == pytest.approx(15.0, abs=0.3)
    derm = lo.labels == 2
    derm_in = derm & np.roll(derm, 6, 0) & np.roll(derm, -6, 0)
    assert np.median(np.abs(diff_db[derm_in])) < 0.1


def test_display_gamma_grey_map():
    env = np.logspace(-4, 0.5, 200).astype(np.float32)[None, :]
    p1 = AcousticParams(dynamic_range_db=50.0)
    g1 = iq_to_display(env, p1)
    for gamma in (0.6, 1.6):
        g = iq_to_display(env, AcousticParams(dynamic_range_db=50.0, display_gamma=gamma))
        assert np.allclose(g, 255.0 * (g1 / 255.0) ** gamma, atol=1e-3)
    with pytest.raises(ConfigError):
        AcousticParams(display_gamma=0.1)


def test_cli_wide_records_draws(tmp_path, monkeypatch):
    import layerseg.simulate as sim
    orig = sim.simulate_dataset
    monkeypatch.setattr(sim, "simulate_dataset", lambda *a, **k: orig(
        *a, shape=(64, 48), depth_mm=6.0, width_mm=3.2, **k))
    d = tmp_path / "w"
    assert main(["simulate", "--n", "2", "--out", str(d), "--ranges", "wide", "--no-progress"]) == 0
    fs = set()
    for f in sorted((d / "truth").iterdir()):
        t = json.loads(f.read_text())
        assert t["ranges"]["name"] == "wide"
        assert t["acoustics"]["frequency_mhz"] == pytest.approx(
            t["ranges"]["drawn"]["acoustics"]["frequency_mhz"])
        fs.add(t["acoustics"]["frequency_mhz"])
    assert len(fs) == 2


def test_wide_frames_smooth_the_envelope_like_a_scanner(monkeypatch):
    """Wide frames low-pass the detected envelope (sim_ranges.json 'display'): the truth
    records the draw and the sigma; the envelope's deep nulls (the thin black cracks of
    log-compressed speckle: dermis pixels 20 dB under its median level) become rarer than in
    the same frame unsmoothed; the draw leaves every other setting of the frame as it was."""
    import layerseg.simulate.core as core
    from layerseg.simulate.ranges import draw_wide as real_draw

    def frame(factor):
        def draw(rng, name="wide"):
            w = real_draw(rng, name)
            if factor is not None:
                w["display"]["envelope_smoothing"] = factor
            return w
        monkeypatch.setattr(core, "draw_wide", draw)
        return core.simulate_frame(31, region="cheek", shape=(256, 256), ranges="wide",
                                   frequency_mhz=15.0, fractional_bandwidth=0.35,
                                   f_number=3.5, with_elasto=False)

    # the display draw comes from its own stream: without the 'display' section every other
    # value drawn is the same
    import copy

    import layerseg.simulate.ranges as R
    full = R.ranges_table()
    bare = copy.deepcopy(full)
    bare["ranges"]["wide"].pop("display")
    a = R.draw_wide(np.random.default_rng(5))
    monkeypatch.setattr(R, "ranges_table", lambda: bare)
    b = R.draw_wide(np.random.default_rng(5))
    monkeypatch.setattr(R, "ranges_table", lambda: full)
    assert b["display"] == {} and a["display"]["envelope_smoothing"] > 0
    assert {k: v for k, v in a.items() if k != "display"} == \
        {k: v for k, v in b.items() if k != "display"}
    drawn = frame(None)
    f = drawn.truth["ranges"]["drawn"]["display"]["envelope_smoothing"]
    assert 0.03 <= f <= 0.2 and drawn.truth["acoustics"]["envelope_smoothing_sigma_px"]
    plain, smooth = frame(0.0), frame(0.2)
    assert plain.truth["acoustics"]["envelope_smoothing_sigma_px"] is None
    assert np.array_equal(plain.labels, smooth.labels)
    for k in ("frequency_mhz", "gain_db", "dynamic_range_db", "noise_db"):
        assert plain.truth["acoustics"][k] == smooth.truth["acoustics"][k]
    derm = plain.labels == 2
    dr = plain.truth["acoustics"]["dynamic_range_db"]

    def cracks(s):
        g = s.frame.bmode[derm].astype(float)
        return float(np.mean(g < np.median(g) - 20.0 * 255.0 / dr))

    assert cracks(smooth) < 0.5 * cracks(plain)
    assert cracks(plain) > 0.001     # unsmoothed speckle does have them (Rayleigh: 0.7 %)


def test_wide_faint_is_wide_with_only_the_fat_backscatter_drawn_from_its_own_range():
    """'wide_faint' resolves to 'wide' with the override's entries replaced: the same generator
    state draws every other value identically (same keys, same order), the fat's backscatter
    from the override's range (and the deep fat's, drawn relative to it, follows it)."""
    from layerseg.simulate.ranges import RANGES, range_spec
    assert "wide_faint" in RANGES
    w, f = range_spec("wide"), range_spec("wide_faint")
    over = ranges_table()["ranges"]["wide_faint"]["override"]["layers"]["fat"]["backscatter_db"]
    assert f["layers"]["fat"]["backscatter_db"] == over
    f2 = copy.deepcopy(f)
    f2["layers"]["fat"]["backscatter_db"] = w["layers"]["fat"]["backscatter_db"]
    assert f2 == w
    assert ranges_table()["ranges"]["wide"]["layers"]["fat"]["backscatter_db"] != over
    fats = []
    for seed in range(40):
        a = draw_wide(np.random.default_rng(seed))
        b = draw_wide(np.random.default_rng(seed), "wide_faint")
        fa, fb = a["layers"]["fat"]["backscatter_db"], b["layers"]["fat"]["backscatter_db"]
        assert over["low"] <= fb <= over["high"]
        fats.append(fb)
        # uniform draws from one stream: the same quantile of each range
        wf = w["layers"]["fat"]["backscatter_db"]
        qa = (fa - wf["low"]) / (wf["high"] - wf["low"])
        assert (fb - over["low"]) / (over["high"] - over["low"]) == pytest.approx(qa)
        da, db = (x["layers"]["deep_fat"]["backscatter_db"] for x in (a, b))
        assert db - fb == pytest.approx(da - fa)
        for x in (a, b):
            del x["layers"]["fat"]["backscatter_db"], x["layers"]["deep_fat"]["backscatter_db"]
        assert a == b
    assert np.ptp(fats) > 0.5 * (over["high"] - over["low"])
    with pytest.raises(ConfigError, match="range set"):
        range_spec("default")
    with pytest.raises(ConfigError, match="range set"):
        draw_wide(np.random.default_rng(0), "narrow")


def test_an_override_naming_an_entry_the_base_lacks_is_refused(monkeypatch):
    """An override may only replace entries of its base (a new key would change what a seed
    draws); the error names the entry."""
    from layerseg.simulate import ranges as rmod
    t = copy.deepcopy(ranges_table())
    t["ranges"]["wide_faint"]["override"] = {"layers": {"fat": {"echo_db": {
        "dist": "uniform", "low": 0.0, "high": 1.0}}}}
    monkeypatch.setattr(rmod, "ranges_table", lambda: t)
    with pytest.raises(ConfigError, match="'echo_db'"):
        rmod.range_spec("wide_faint")


def test_wide_faint_frames_show_fat_nearly_as_bright_as_dermis():
    """Frames of 'wide_faint' record their ranges' name and draws, and their fat's mean display
    grey level (log-compressed) lies closer to the dermis's than in 'wide' frames of the same
    seeds whose fat was drawn more than 12 dB darker."""
    gaps = {"wide": [], "wide_faint": []}
    for seed in range(12):
        for name in gaps:
            s = simulate_frame(seed, shape=(160, 96), depth_mm=8.0, width_mm=4.8,
                               region="cheek", ranges=name, with_elasto=False)
            assert s.truth["ranges"]["name"] == name
            fb = s.truth["ranges"]["drawn"]["layers"]["fat"]["backscatter_db"]
            if name == "wide" and fb > -12.0:
                continue
            img = np.asarray(s.frame.bmode, float)  # log-compressed display grey
            gaps[name].append(img[s.labels == 2].mean() - img[s.labels == 3].mean())
    assert len(gaps["wide"]) >= 4 and len(gaps["wide_faint"]) == 12
    assert np.median(gaps["wide_faint"]) < np.median(gaps["wide"])
