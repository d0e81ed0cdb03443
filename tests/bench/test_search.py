import numpy as np
import pytest

from layerseg.bench.search import (format_search_benchmark, ordered_search_plain,
                                   ordered_search_vectorised, run_search_benchmark)
from layerseg.layers import get_profile, ordered_search


def test_baselines_give_the_same_answer(rng):
    for region in ("default", "forehead"):
        sc = rng.normal(size=(8, 40, 30))
        want = ordered_search(sc, region).surfaces
        np.testing.assert_array_equal(ordered_search_vectorised(sc, region), want)
        np.testing.assert_array_equal(ordered_search_plain(sc, region), want)


def test_plain_twin_honours_limits(rng):
    p = get_profile()
    sc = rng.normal(size=(8, 30, 10))
    s = ordered_search_plain(sc, p, spacing_mm=(0.1, 0.1), min_thickness_mm={"dermis": 0.5},
                             max_thickness_mm={"fat": 0.3})
    t = np.diff(s, axis=0)
    assert (t[1] >= 5).all() and (t[2] <= 3).all()


def test_run_and_format_small():
    res = run_search_benchmark(shapes=((32, 24),), repeat=1, plain_cols=8)
    assert len(res) == 1
    r = res[0]
    assert r["rows"] == 32 and r["cols"] == 24 and r["plain_scaled_from_cols"] == 8
    keys = ("numba", "numba_limits", "numba_smooth", "plain", "vectorised", "read_once")
    assert set(r) == {"rows", "cols", "plain_scaled_from_cols", *keys}
    assert all(isinstance(r[k], float) for k in keys)
    table = format_search_benchmark(res).splitlines()
    assert len(table) == 3 and table[0].count("|") == table[2].count("|") == 11
    cells = [c.strip() for c in table[2].strip("|").split("|")]
    assert cells[0] == "32 x 24"
    assert cells[7] == f"{r['plain'] / r['numba']:.0f}x"
    assert cells[8] == f"{r['vectorised'] / r['numba']:.1f}x"


@pytest.mark.timing
def test_numba_search_beats_plain_and_vectorised():
    """benchmarks/RESULTS.md: the Numba search is orders of magnitude faster than the plain loops
    and faster than the vectorised NumPy version; only 'faster' is asserted, at 256 x 256."""
    r = run_search_benchmark(shapes=((256, 256),), repeat=3, plain_cols=8)[0]
    assert 0 < r["numba"] < r["vectorised"] and r["numba"] < r["plain"], r
