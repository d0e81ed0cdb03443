"""scripts/make_pymust_set.py: the independent PyMUST check set (issue 20), on tiny frames."""

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymust")

from layerseg.io.dataset import read_dataset  # noqa: E402
from layerseg.layers import order_violations  # noqa: E402
from layerseg.layers.profiles import LABEL_INDEX, get_profile  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_pymust_set.py"


@pytest.fixture(scope="module")
def mps():
    spec = importlib.util.spec_from_file_location("make_pymust_set", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_pymust_set"] = mod   # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("make_pymust_set", None)


def _tiny(mps, **kw):
    """A 4 x 3 mm field with a tenth of the scatterers; three compounded transmits."""
    return mps.SetConfig(depth_mm=(4.0, 4.0), width_mm=(3.0, 3.0), density_scale=0.1,
                         p_compound=1.0, budget_s=1e9, **kw)


@pytest.fixture(scope="module")
def tiny_set(mps, tmp_path_factory):
    root = tmp_path_factory.mktemp("pymust") / "a"
    mps.make_set(root, n=2, seed=5, cfg=_tiny(mps), log=lambda *a: None)
    return root


def test_plan_is_balanced_and_seeded(mps):
    plan = mps.plan_set(14, seed=3)
    assert [p["index"] for p in plan] == list(range(14))
    assert sorted(p["region"] for p in plan) == sorted(list(mps.REGIONS) * 2)
    assert len({p["id"] for p in plan}) == 14
    assert 5 <= len({p["subject_id"] for p in plan}) <= 14
    assert mps.plan_set(14, seed=3) == plan and mps.plan_set(14, seed=4) != plan


def test_point_target_appears_at_its_depth(mps):
    """A point reflector at a known depth peaks at that depth in the beamformed envelope, within
    a tenth of a wavelength (SIMUS's pulse is centred on t = 0: no time offset to correct)."""
    probe = mps.Probe(f0_mhz=24.0, bandwidth_pct=70.0, pitch_mm=0.07, n_elements=44,
                      fnumber=1.6, attenuation=0.5, angles_deg=(-5.0, 0.0, 5.0))
    grid = mps.Grid(dz=0.002, dx=0.03, nz=1500, nx=3)          # 3 mm deep, fine axial grid
    im = mps.Imager(probe, grid)
    X, Z = np.meshgrid(grid.x, grid.z)
    z0 = np.array([1.2345, 2.2])
    x0 = np.array([grid.x[1], grid.x[1]])
    env = np.abs(im.image("main", X, Z, x0, z0, np.ones(2)))[:, 1]
    lam = probe.wavelength_mm
    for zk in z0:
        sel = np.abs(grid.z - zk) < 0.3
        peak = grid.z[sel][np.argmax(env[sel])]
        assert abs(peak - zk) <= max(lam / 10, grid.dz), (peak, zk)


def test_dataset_reads_and_has_spacing(tiny_set):
    ds = read_dataset(tiny_set, check_values=True)
    assert len(ds) == 2
    rows = list(csv.DictReader(open(tiny_set / "manifest.csv", newline="")))
    for row, item in zip(rows, ds):
        dz, dx = float(row["spacing_axial_mm"]), float(row["spacing_lateral_mm"])
        assert 0.02 <= dz <= 0.03 and 0.025 <= dx <= 0.035
        assert item.frame.spacing_mm == pytest.approx((dz, dx))
        rows_, cols_ = item.frame.shape
        assert rows_ * dz == pytest.approx(4.0, abs=dz) and cols_ * dx == pytest.approx(3.0,
                                                                                      abs=dx)
        assert row["subject_id"] and row["region"] and row["split"] == "test"
        assert float(row["frequency_mhz"]) >= 18 and float(row["dynamic_range_db"]) >= 50
        truth = json.loads((tiny_set / row["truth"]).read_text())
        assert "PyMUST" in truth["generator"] and len(truth["probe"][
            "plane_wave_angles_deg"]) == 3


def test_labels_follow_the_region_order_in_every_column(tiny_set):
    for item in read_dataset(tiny_set):
        lab = np.asarray(item.label)
        region = item.row["region"]
        assert set(np.unique(lab)) <= set(range(8))
        assert order_violations(lab, region) == 0
        rank = {LABEL_INDEX[n]: k for k, n in enumerate(get_profile(region).layers)}
        for c in range(lab.shape[1]):
            col = lab[:, c]
            nz = col[col > 0]
            assert nz[0] == 1                                     # the entry echo comes first
            r = [rank[v] for v in nz]
            assert r == sorted(r)                                # anatomical order downwards
            first = int(np.argmax(col > 0))
            assert not np.any(col[:first])                       # gel above the skin is 0


def _echo_centre(v):
    """Row of the brightest run of a column (the middle of the run: the echo often saturates)."""
    p = int(np.argmax(v))
    a = e = p
    while a > 0 and v[a - 1] >= v[p] - 0.5:
        a -= 1
    while e < len(v) - 1 and v[e + 1] >= v[p] - 0.5:
        e += 1
    return (a + e) / 2


def test_entry_echo_lies_at_the_labelled_skin_surface(tiny_set):
    """The entry echo is where label 1 is: averaged over the columns, aligned on the phantom's
    skin-surface row (truth file), the brightest rows lie in the label-1 band (within 1 pixel),
    and the band starts at the surface (its top is the echo's leading -6 dB point, under half a
    pulse above it)."""
    for item in read_dataset(tiny_set):
        img = np.asarray(item.frame.bmode, float)
        lab = np.asarray(item.label)
        skin = np.asarray(item.truth["skin_surface_row"])
        k = np.arange(-12, 13)
        prof, band = [], []
        for c in range(lab.shape[1]):
            s = int(round(skin[c]))
            if s - 12 < 0 or s + 13 > lab.shape[0]:
                continue
            prof.append(img[s + k, c])
            rows = np.flatnonzero(lab[:, c] == 1)
            band.append((rows[0] - s, rows[-1] - s))
            assert abs(rows[0] - skin[c]) <= 2.0
        prof = np.mean(prof, axis=0)
        top, bot = np.mean(band, axis=0)
        peak = k[0] + _echo_centre(prof)
        assert top - 1 <= peak <= bot + 1, (peak, top, bot, prof.round())


def test_same_seed_same_bytes(mps, tiny_set, tmp_path):
    b = tmp_path / "b"
    mps.make_set(b, n=2, seed=5, cfg=_tiny(mps), log=lambda *a: None)
    files = sorted(p.relative_to(tiny_set) for p in tiny_set.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (tiny_set / f).read_bytes() == (b / f).read_bytes(), f
    c = tmp_path / "c"
    mps.make_set(c, n=1, seed=6, cfg=_tiny(mps), log=lambda *a: None)
    img = next((c / "images").iterdir()).read_bytes()
    assert img != next((tiny_set / "images").iterdir()).read_bytes()


def test_refuses_an_existing_dataset(mps, tiny_set):
    with pytest.raises(SystemExit):
        mps.make_set(tiny_set, n=1, seed=5, cfg=_tiny(mps), log=lambda *a: None)
