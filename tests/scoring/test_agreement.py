"""Agreement: Bland-Altman against hand-computed values, ICC(A,1) against the McGraw-Wong
formula from a hand-written two-way ANOVA, and value and interval against pingouin (a dev extra)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from layerseg.scoring import agreement, bland_altman
from layerseg.scoring.agreement import icc_a1 as layerseg_icc_a1


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


def _pingouin_icc_a1(x):
    pingouin = pytest.importorskip("pingouin")      # the optional reference, not layerseg
    n, k = x.shape
    df = pd.DataFrame({"target": np.repeat(np.arange(n), k), "rater": np.tile(np.arange(k), n),
                       "value": x.ravel()})
    with warnings.catch_warnings():                 # pingouin's own pandas deprecation notices
        warnings.simplefilter("ignore")
        res = pingouin.intraclass_corr(df, targets="target", raters="rater", ratings="value")
    row = res.set_index("Type").loc["ICC(A,1)"]
    lo, hi = row["CI95"] if "CI95" in row.index else row["CI95%"]
    return float(row["ICC"]), float(lo), float(hi)


@pytest.mark.parametrize("seed", range(6))
def test_icc_value_and_interval_match_pingouin(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    k = 2 if seed < 4 else 3
    truth = rng.normal(1.0, rng.uniform(0.05, 1.0), n)
    x = truth[:, None] + rng.normal(rng.normal(0, 0.2, k), rng.uniform(0.05, 0.8), (n, k))
    want = _pingouin_icc_a1(x)
    got = layerseg_icc_a1(x)
    # pingouin may round its interval to two decimals
    assert got[0] == pytest.approx(want[0], rel=1e-9, abs=1e-12)
    assert got[1] == pytest.approx(want[1], abs=0.005 + 1e-9)
    assert got[2] == pytest.approx(want[2], abs=0.005 + 1e-9)
    assert got[1] < got[0] < got[2]
    # and agreement() reports the same for two sources
    if k == 2:
        ta = pd.DataFrame({"id": [f"f{i}" for i in range(n)], "m_mm": x[:, 0]})
        tb = pd.DataFrame({"id": [f"f{i}" for i in range(n)], "m_mm": x[:, 1]})
        r = agreement(ta, tb).iloc[0]
        assert (r["icc"], r["icc_ci95_lower"], r["icc_ci95_upper"]) == pytest.approx(got)


def test_icc_interval_hand_worked():
    """McGraw and Wong (1996) Table 7, case 2A, written with their a, b and v (not the form the
    code uses), on a fixed matrix."""
    from scipy.stats import f as f_dist
    x = np.array([[9.0, 10.0], [6.0, 7.5], [8.0, 8.0], [7.0, 9.0], [10.0, 10.5], [6.0, 6.0],
                  [5.0, 6.5]])
    n, k = x.shape
    gm = x.mean()
    msr = k * ((x.mean(axis=1) - gm) ** 2).sum() / (n - 1)
    msc = n * ((x.mean(axis=0) - gm) ** 2).sum() / (k - 1)
    mse = (((x - gm) ** 2).sum() - (n - 1) * msr - (k - 1) * msc) / ((n - 1) * (k - 1))
    p = icc_a1(x)
    a = k * p / (n * (1 - p))
    b = 1 + k * p * (n - 1) / (n * (1 - p))
    v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1)))
    fs = f_dist.ppf(0.975, n - 1, v)
    fs2 = f_dist.ppf(0.975, v, n - 1)
    lo = n * (msr - fs * mse) / (fs * (k * msc + (k * n - k - n) * mse) + n * msr)
    hi = n * (fs2 * msr - mse) / (k * msc + (k * n - k - n) * mse + n * fs2 * msr)
    got = layerseg_icc_a1(x)
    assert got == pytest.approx((p, lo, hi), rel=1e-9)
    assert 0 < lo < p < hi < 1
