import numpy as np

from layerseg.bench.filters import (format_table, numpy_frost, numpy_lee, numpy_srad,
                                    run_filter_benchmarks)
from layerseg.filters import despeckle_srad, filter_frost, filter_kuan, filter_lee


def _speckle(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (np.abs(rng.normal(size=shape) + 1j * rng.normal(size=shape)) + 0.05)


def test_baselines_compute_the_same_filters():
    # the benchmark compares like with like: each NumPy baseline equals our kernel
    img = _speckle((40, 52))
    np.testing.assert_allclose(numpy_lee(img, 5, 0.5), filter_lee(img, 5, cu=0.5), rtol=1e-7)
    np.testing.assert_allclose(numpy_lee(img, 5, 0.5, kuan=True), filter_kuan(img, 5, cu=0.5),
                               rtol=1e-7)
    np.testing.assert_allclose(numpy_frost(img, 5, 2.0), filter_frost(img, 5, 2.0), rtol=1e-7)
    np.testing.assert_allclose(numpy_srad(img, 10, 0.1, 0.5), despeckle_srad(img, 10, 0.1, q0=0.5),
                               rtol=1e-6, atol=1e-9)


def test_run_returns_figures_and_table(capsys):
    res = run_filter_benchmarks(sizes=((24, 24), (48, 48)), repeats=1, findpeaks_shape=(10, 10),
                                only=["median", "lee"], verbose=True)
    names = {r["filter"] for r in res["results"]}
    assert names == {"median 5x5", "lee 5x5"}
    assert len(res["results"]) == 4
    for r in res["results"]:
        assert r["ours_s"] > 0 and r["baseline_s"] > 0
        assert r["speedup"] == r["baseline_s"] / r["ours_s"]
        assert r["findpeaks_s"] > 0
    assert set(res["scaling"]) == names and set(res["findpeaks_measured"]) == names
    out = capsys.readouterr().out
    assert "| median 5x5 |" in out and "findpeaks" in out
    assert format_table(res) in out
