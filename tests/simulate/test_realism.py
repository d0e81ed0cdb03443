"""Realism measures checked on fields of known correlation and known contrast."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from layerseg.errors import ConfigError
from layerseg.simulate.realism import acf_fwhm, frame_realism, layer_contrast, summarise

FW = 2.0 * math.sqrt(2.0 * math.log(2.0))
ROOT = Path(__file__).resolve().parents[2]


def _wavy_band(shape, seed=0):
    """A band-shaped mask with wavy borders (like a dermis)."""
    rows, cols = shape
    x = np.arange(cols)
    top = 40 + 8 * np.sin(x / 37.0)
    bot = top + 150 + 10 * np.cos(x / 23.0)
    r = np.arange(rows)[:, None]
    return (r >= top[None, :]) & (r < bot[None, :])


@pytest.mark.parametrize("sz,sx", [(1.5, 3.0), (3.0, 3.0), (2.0, 6.0)])
def test_gaussian_correlated_field_fwhm(sz, sx):
    """White noise filtered by a Gaussian of SD s has a Gaussian autocovariance of SD s sqrt 2:
    FWHM = 2.355 sqrt(2) s."""
    rng = np.random.default_rng(1)
    f = gaussian_filter(rng.standard_normal((260, 520)), (sz, sx), mode="wrap")
    mask = _wavy_band(f.shape)
    # a depth trend (TGC mismatch) must not widen the axial width
    f = f / f.std() + np.linspace(0, 3, f.shape[0])[:, None]
    ax, la = acf_fwhm(f, mask, (0.02, 0.025), erode_px=(0, 0))
    assert ax == pytest.approx(FW * math.sqrt(2) * sz * 0.02, rel=0.06)
    # per-row mean removal over ~25 correlation lengths: a few per cent low at most
    assert la == pytest.approx(FW * math.sqrt(2) * sx * 0.025, rel=0.1)


def test_speckle_intensity_fwhm_is_the_psf_fwhm():
    """Complex Gaussian speckle through a Gaussian amplitude PSF of SD s: the intensity
    autocovariance is |rho|^2, a Gaussian of SD s, so its FWHM is the PSF's (2.355 s)."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((300, 600)) + 1j * rng.standard_normal((300, 600))
    sz, sx = 2.0, 4.0
    iq = gaussian_filter(w.real, (sz, sx), mode="wrap") + 1j * gaussian_filter(
        w.imag, (sz, sx), mode="wrap")
    mask = np.zeros(iq.shape, bool)
    mask[20:280, 10:590] = True
    ax, la = acf_fwhm(np.abs(iq) ** 2, mask, (1.0, 1.0))
    assert ax == pytest.approx(FW * sz, rel=0.08)
    assert la == pytest.approx(FW * sx, rel=0.08)
    # the log image is measured too, and is near (not equal to) the intensity width
    lax, lla = acf_fwhm(20 * np.log10(np.abs(iq)), mask, (1.0, 1.0))
    assert 0.7 * ax < lax < 1.3 * ax and 0.7 * la < lla < 1.3 * la


def test_small_or_bad_regions():
    img = np.zeros((50, 50))
    m = np.zeros((50, 50), bool)
    m[10:14, 10:20] = True
    assert all(math.isnan(v) for v in acf_fwhm(img + np.random.default_rng(0).random((50, 50)),
                                               m, (1, 1)))
    with pytest.raises(ConfigError):
        acf_fwhm(img, m[:10], (1, 1))


def test_layer_contrast_in_dermis_sds():
    rng = np.random.default_rng(3)
    lab = np.zeros((300, 200), np.uint8)
    lab[0:100], lab[100:200], lab[200:300] = 2, 3, 6
    img = np.empty(lab.shape)
    img[lab == 2] = rng.normal(120, 8, (lab == 2).sum())
    img[lab == 3] = rng.normal(96, 8, (lab == 3).sum())
    img[lab == 6] = rng.normal(128, 8, (lab == 6).sum())
    masks = {"dermis": lab == 2, "fat": lab == 3, "muscle": lab == 6}
    c = layer_contrast(img, masks)
    assert c["fat"] == pytest.approx(-3.0, abs=0.1)
    assert c["muscle"] == pytest.approx(1.0, abs=0.1)
    layers = ("epidermis", "dermis", "fat", "smas", "deep_fat", "muscle", "bone")
    r = frame_realism(img, lab, layers, (0.02, 0.025))
    assert r["contrast_sd"]["fat"] == pytest.approx(-3.0, abs=0.1)
    assert math.isnan(r["contrast_sd"]["smas"])  # absent layer
    assert r["dermis_thickness_mm"] == pytest.approx(100 * 0.02)
    s = summarise([r, r])
    assert s["contrast_sd.fat"]["n"] == 2 and s["contrast_sd.fat"]["p50"] == pytest.approx(
        r["contrast_sd"]["fat"])


def test_simulated_speckle_follows_the_probe():
    """Dermis speckle of simulated frames: 15 MHz / narrow band / high F# is far coarser than
    50 MHz / broad band / low F#, in the ratio the pulse and beam theory predicts (loosely: the
    pixel grid and depth-of-field widen the fine end)."""
    from layerseg.layers import get_profile
    from layerseg.simulate import simulate_frame
    from layerseg.simulate.acoustics import AcousticParams, axial_fwhm_mm

    res = {}
    for f0, fbw, fn in ((15.0, 0.4, 4.0), (50.0, 0.8, 1.5)):
        s = simulate_frame(4, region="cheek", shape=(320, 256), depth_mm=6.0, width_mm=4.0,
                           frequency_mhz=f0, fractional_bandwidth=fbw, f_number=fn,
                           with_elasto=False, standoff_mm=0.3, tilt_deg=0.0, focus_mm=1.5,
                           gain_db=-10.0, noise_db=-120.0, dynamic_range_db=60.0)
        r = frame_realism(s.frame.bmode, s.labels, get_profile("cheek").layers,
                          s.frame.spacing_mm)
        res[f0] = r["speckle_um"]["dermis"]
        th = axial_fwhm_mm(AcousticParams(frequency_mhz=f0, fractional_bandwidth=fbw)) * 1e3
        assert 0.6 * th < res[f0][0] < 1.6 * th + 20.0
    assert res[15.0][0] > 2.0 * res[50.0][0]
    assert res[15.0][1] > 2.5 * res[50.0][1]


def test_bench_realism_command(tmp_path, capsys):
    """``layerseg bench realism`` on a small wide-range set: the table, the JSON with every
    frame, the per-frame CSV, the plot; the figures are those of `frame_realism` itself."""
    import csv

    from layerseg.cli import main
    from layerseg.io.dataset import read_dataset
    from layerseg.layers import get_profile
    from layerseg.simulate import simulate_dataset
    d = simulate_dataset(tmp_path / "d", 3, seed=1, region="cheek", progress=False,
                         shape=(192, 128), depth_mm=8.0, width_mm=4.0, ranges="wide")
    out = tmp_path / "r.json"
    assert main(["bench", "realism", "--data", str(d), "--json", str(out), "--plot",
                 str(tmp_path / "p.png"), "--ref", "indep:45,92,-1.0,0.4"]) == 0
    table = capsys.readouterr().out
    assert "| speckle_axial_um.dermis |" in table and "| contrast_sd.fat |" in table
    j = json.loads(out.read_text())
    assert len(j["frames"]) == 3 and j["summary"]["speckle_axial_um.dermis"]["n"] >= 1
    item = read_dataset(d)[0]
    r = frame_realism(item.frame.bmode, np.asarray(item.label), get_profile("cheek").layers,
                      item.frame.spacing_mm)
    assert j["frames"][0]["speckle_axial_um.dermis"] == pytest.approx(r["speckle_um"]["dermis"][0])
    assert j["frames"][0]["contrast_sd.fat"] == pytest.approx(r["contrast_sd"]["fat"])
    rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    assert [x["id"] for x in rows] == [f["id"] for f in j["frames"]]
    assert (tmp_path / "p.png").stat().st_size > 1000
    # the old script is the same command
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "realism_report.py"), str(d),
                        "--json", str(tmp_path / "s.json")], capture_output=True, text=True,
                       cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "s.json").read_text())["frames"] == j["frames"]


def test_bench_realism_refuses_bad_input(tmp_path, capsys):
    from layerseg.cli import main
    from layerseg.simulate import simulate_dataset
    d = simulate_dataset(tmp_path / "d", 1, seed=2, region="cheek", progress=False,
                         shape=(96, 64), depth_mm=6.0, width_mm=3.0)
    assert main(["bench", "realism", "--data", str(d), "--json", str(tmp_path / "r.json"),
                 "--ref", "nope"]) == 2
    assert "NAME:AXIAL_UM" in capsys.readouterr().err
    assert main(["bench", "realism", "--data", str(tmp_path / "missing"), "--json",
                 str(tmp_path / "r.json")]) == 2
    assert "missing" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
