"""Flat ratio keys of `layerseg bench speed` (`layerseg.bench.ratios`) and the OpenCV peers."""

import pytest

from layerseg.bench.ratios import flat_ratios, ratios_markdown


def _speed():
    fr = [{"filter": "median 5x5", "shape": [64, 64], "baseline": "scipy.ndimage.median_filter",
           "speedup": 2.0, "findpeaks_speedup": None},
          {"filter": "median 5x5", "shape": [128, 128], "baseline": "scipy.ndimage.median_filter",
           "speedup": 4.0, "findpeaks_speedup": 100.0},
          {"filter": "lee 5x5", "shape": [128, 128], "baseline": "uniform_filter stats",
           "speedup": 0.5, "findpeaks_speedup": None}]
    return {"suites": {
        "filters": {"status": "ok", "results": {"sizes": [[64, 64], [128, 128]], "results": fr}},
        "search": {"status": "ok", "results": [{"rows": 32, "cols": 16, "numba": 0.01,
                                                "plain": 1.0, "vectorised": 0.05}]},
        "simulate": {"status": "ok", "results": {"speedup_same_phantom": None}},
        "opencv": {"status": "ok", "results": {"sizes": [[128, 128]], "results": [
            {"filter": "median_5x5", "dtype": "uint8", "shape": [128, 128], "speedup": 0.25},
            {"filter": "bilateral_5x5", "dtype": "uint8", "shape": [128, 128],
             "speedup": None}]}}}}


def test_flat_ratio_keys():
    r = flat_ratios(_speed())
    assert r["filters.median_5x5.vs_scipy.speedup"] == 4.0          # the largest size
    assert r["filters.median_5x5.vs_scipy.64x64.speedup"] == 2.0
    assert r["filters.median_5x5.vs_findpeaks.speedup"] == 100.0
    assert "filters.median_5x5.vs_findpeaks.64x64.speedup" not in r
    assert r["filters.lee_5x5.vs_numpy_reference.speedup"] == 0.5   # slower is kept, not hidden
    assert r["search.vs_plain.speedup"] == pytest.approx(100.0)
    assert r["search.vs_vectorised.speedup"] == pytest.approx(5.0)
    assert r["filters.median_5x5.uint8.vs_opencv.speedup"] == 0.25
    assert not any("bilateral" in k or "simulate" in k for k in r)
    assert all("speedup" in k for k in r) and list(r) == sorted(r)
    md = ratios_markdown(r)
    assert "| `filters.median_5x5.uint8.vs_opencv.speedup` | 0.25x |" in md
    assert md.count("\n| `") == len(r)


def test_flat_ratio_keys_skip_failed_suites():
    s = _speed()
    s["suites"]["filters"] = {"status": "failed", "error": "x"}
    s["suites"]["opencv"] = {"status": "not available"}
    assert set(flat_ratios(s)) == {"search.vs_plain.speedup", "search.vs_plain.32x16.speedup",
                                   "search.vs_vectorised.speedup",
                                   "search.vs_vectorised.32x16.speedup"}


def test_opencv_benchmark_rows():
    pytest.importorskip("cv2")
    from layerseg.bench.opencv import format_opencv_table, run_opencv_benchmark
    res = run_opencv_benchmark(sizes=((32, 48),), repeats=1)
    got = {(r["filter"], r["dtype"]) for r in res["results"]}
    assert got == {("median_5x5", "float32"), ("median_5x5", "uint8"), ("lee_5x5", "float32"),
                   ("lee_5x5", "uint8"), ("kuan_5x5", "float32"), ("nlm_l2_p7_s11", "uint8"),
                   ("bilateral_5x5", "uint8"), ("bilateral_5x5", "float32")}
    for r in res["results"]:
        assert r["opencv_s"] > 0 and r["opencv_ns_per_px"] == pytest.approx(
            1e9 * r["opencv_s"] / (32 * 48))
        if r["filter"].startswith("bilateral"):
            assert r["speedup"] is None
        else:
            assert r["speedup"] == pytest.approx(r["opencv_s"] / r["ours_s"])
    assert "| median_5x5 | uint8 | 32x48 |" in format_opencv_table(res)
