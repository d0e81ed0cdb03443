"""layerseg.bench.simulate: the PyMUST comparison (slow) and its measuring helpers (fast)."""

import numpy as np
import pytest

from layerseg.bench.simulate import (TOLERANCES, format_report, layer_contrasts_db,
                                     layered_scatterers, run_layerseg, run_simulate_benchmark,
                                     speckle_fwhm_mm)
from layerseg.simulate.acoustics import AcousticParams, axial_fwhm_mm


def test_layerseg_side_of_the_benchmark_matches_the_set_contrasts():
    xs, zs, amps = layered_scatterers(per_cell=6.0, seed=1)
    env, x, z, secs = run_layerseg(xs, zs, amps)
    c = layer_contrasts_db(env, z)
    assert c["fat"] == pytest.approx(-15.0, abs=1.0)
    assert c["muscle"] == pytest.approx(-6.0, abs=1.0)
    ax, lat = speckle_fwhm_mm(env, z)
    assert ax == pytest.approx(axial_fwhm_mm(AcousticParams()), rel=0.2)
    assert lat > 2 * ax


@pytest.mark.slow
@pytest.mark.timing
def test_pymust_comparison_agrees_within_tolerances():
    pytest.importorskip("pymust")
    res = run_simulate_benchmark(per_cell=2.0, frames=1)
    print(format_report(res))
    assert all(res["agree"].values()), (res["agree"], TOLERANCES)
    assert res["speedup_same_phantom"] > 20
    assert np.isfinite(res["frame_512"]["bmode_only"]["best_s"])


def test_frame_timing_covers_default_and_wide_ranges():
    from layerseg.bench.simulate import time_simulate_frame
    res = time_simulate_frame(1)
    assert set(res) == {"bmode_only", "with_elasto", "wide_with_elasto"}
    for v in res.values():
        assert 0 < v["best_s"] <= v["median_s"] + 1e-12 and v["cpu_median_s"] > 0
