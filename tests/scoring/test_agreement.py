"""Agreement: Bland-Altman against hand-computed values, ICC(A,1) against the McGraw-Wong
formula from a hand-written two-way ANOVA."""

import numpy as np
import pandas as pd
import pytest

from layerseg.scoring import agreement, bland_altman


def test_bland_altman_hand_worked():
    a = [1.0, 2.0, 3.0, 4.0, 5.0]
    b = [1.1, 1.9, 3.2, 4.1, 4.8]
    out = bland_altman(a, b)
    # d = [-0.1, 0.1, -0.2, -0.1, 0.2]: mean -0.02, SD sqrt(0.108 / 4)
    sd = np.sqrt(0.108 / 4)
    assert out["n"] == 5
    assert out["bias"] == pytest.approx(-0.02)
    assert out["sd_diff"] == pytest.approx(sd)
    assert out["loa_lower"] == pytest.approx(-0.02 - 1.96 * sd)
    assert out["loa_upper"] == pytest.approx(-0.02 + 1.96 * sd)
    assert bland_altman([1.0, np.nan], [2.0, 3.0])["n"] == 1


def icc_a1(x):
    """McGraw & Wong ICC(A,1) from the n x k matrix, two-way ANOVA by hand."""
    n, k = x.shape
    gm = x.mean()
    ssr = k * ((x.mean(axis=1) - gm) ** 2).sum()
    ssc = n * ((x.mean(axis=0) - gm) ** 2).sum()
    sse = ((x - gm) ** 2).sum() - ssr - ssc
    msr, msc, mse = ssr / (n - 1), ssc / (k - 1), sse / ((n - 1) * (k - 1))
    return (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)


def test_agreement_long_tables_per_layer_and_marker(rng):
    ids = [f"f{i}" for i in range(8)]
    ta = pd.DataFrame({"id": ids * 2, "layer": ["dermis"] * 8 + ["fat"] * 8,
                       "thickness_mean_mm": rng.uniform(0.8, 1.6, 16),
                       "qc_pass": True, "thickness_reason": None})
    tb = ta.copy()
    tb["thickness_mean_mm"] = ta["thickness_mean_mm"] + rng.normal(0.05, 0.03, 16)
    tb = tb.iloc[::-1].reset_index(drop=True)  # order must not matter
    res = agreement(ta, tb)
    assert list(res["marker"]) == ["thickness_mean_mm", "thickness_mean_mm"]
    for layer in ("dermis", "fat"):
        r = res[res["layer"] == layer].iloc[0]
        xa = ta[ta["layer"] == layer].set_index("id")["thickness_mean_mm"]
        xb = tb[tb["layer"] == layer].set_index("id")["thickness_mean_mm"].loc[xa.index]
        d = xa.to_numpy() - xb.to_numpy()
        assert r["n"] == 8
        assert r["bias"] == pytest.approx(d.mean())
        assert r["loa_upper"] == pytest.approx(d.mean() + 1.96 * d.std(ddof=1))
        assert r["icc"] == pytest.approx(icc_a1(np.c_[xa.to_numpy(), xb.to_numpy()]), rel=1e-9)
        assert r["icc_ci95_lower"] <= r["icc"] <= r["icc_ci95_upper"]


def test_agreement_wide_and_too_few_frames():
    ta = pd.DataFrame({"id": ["a", "b"], "dermis_thickness_mean_mm": [1.0, 1.2]})
    tb = pd.DataFrame({"id": ["a", "b"], "dermis_thickness_mean_mm": [1.1, 1.2]})
    res = agreement(ta, tb)
    r = res.iloc[0]
    assert pd.isna(r["layer"]) and r["n"] == 2
    assert r["bias"] == pytest.approx(-0.05)
    assert r["icc"] is None or pd.isna(r["icc"])
    assert "at least 3" in r["reason"]
    with pytest.raises(ValueError, match="missing"):
        agreement(ta, tb, markers=["nope"])


def test_agreement_object_columns_with_empties():
    # in-memory tables hold None for empty measures: object dtype, still a marker
    ta = pd.DataFrame({"id": list("abcd"), "stiffness_median_kpa": [1.0, None, 3.0, 4.0],
                       "sleb_present": [True, False, None, True]}, dtype=object)
    tb = pd.DataFrame({"id": list("abcd"), "stiffness_median_kpa": [1.5, 2.0, 3.5, None],
                       "sleb_present": [True, True, None, True]}, dtype=object)
    res = agreement(ta, tb)
    assert list(res["marker"]) == ["stiffness_median_kpa"]
    assert res.iloc[0]["n"] == 2 and res.iloc[0]["bias"] == pytest.approx(-0.5)
