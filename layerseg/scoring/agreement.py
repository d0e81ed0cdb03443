"""Agreement between two measurement sources for the same frames (model vs manual, two raters,
before vs after): per marker, Bland-Altman bias and 95 % limits of agreement, and the intraclass
correlation ICC(A,1) (two-way, absolute agreement, single measurement; McGraw and Wong 1996) with
its 95 % confidence interval.

Bland-Altman (1986): with ``d = a - b`` over the frames where both values exist,
``bias = mean(d)``, ``sd = SD(d)`` (ddof 1), limits ``bias -/+ 1.96 sd``.

ICC(A,1) (McGraw and Wong 1996, case 2A; Shrout and Fleiss 1979, ICC(2,1)) from the two-way ANOVA
mean squares of the n x k matrix (n frames, k = 2 sources): rows ``MSR``, columns ``MSC``, residual
``MSE``::

    ICC(A,1) = (MSR - MSE) / (MSR + (k - 1) MSE + k (MSC - MSE) / n)

Its confidence interval is McGraw and Wong's (their Table 7, after Satterthwaite): with
``F_J = MSC / MSE``, ``a = k ICC / (n (1 - ICC))``, ``b = 1 + k ICC (n - 1) / (n (1 - ICC))``,
``v = (a MSC + b MSE)^2 / ((a MSC)^2 / (k - 1) + (b MSE)^2 / ((n - 1)(k - 1)))``, written below
in the equivalent form that pingouin and R's psych use, and the F quantiles ``F*(1 - alpha/2;
n - 1, v)`` and ``F*(1 - alpha/2; v, n - 1)``. Computed here with numpy and scipy.stats.f; the
test suite checks value and interval against pingouin's ``intraclass_corr``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["agreement", "bland_altman", "icc_a1", "AGREEMENT_COLUMNS"]

AGREEMENT_COLUMNS = ("layer", "marker", "n", "mean_a", "mean_b", "bias", "sd_diff", "loa_lower",
                     "loa_upper", "icc", "icc_ci95_lower", "icc_ci95_upper", "icc_type",
                     "reason")

_NOT_MARKERS = {"id", "layer", "subject_id", "region", "sex", "age", "frame_status",
                "qc_pass", "qc_calibration", "split", "side", "device", "roughness_cutoff_mm",
                "roughness_short_cutoff_mm", "glcm_distance_mm", "thickness_columns",
                "fat_septa_width_mm"}


def _numeric(col: pd.Series) -> bool:
    """A marker column: numbers only (bools and text excluded), whatever its dtype."""
    if pd.api.types.is_bool_dtype(col):
        return False
    if pd.api.types.is_numeric_dtype(col):
        return True
    vals = col.dropna()
    return len(vals) > 0 and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
        for v in vals)


def bland_altman(a, b) -> dict:
    """Bland-Altman statistics of paired values (NaN pairs dropped).

    Parameters
    ----------
    a, b : array_like of float, shape (n,)

    Returns
    -------
    dict
        ``n``, ``bias``, ``sd_diff``, ``loa_lower``, ``loa_upper`` (None when n < 2).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    out = {"n": int(d.size), "bias": None, "sd_diff": None, "loa_lower": None, "loa_upper": None}
    if d.size >= 1:
        out["bias"] = float(d.mean())
    if d.size >= 2:
        sd = float(d.std(ddof=1))
        out.update(sd_diff=sd, loa_lower=out["bias"] - 1.96 * sd,
                   loa_upper=out["bias"] + 1.96 * sd)
    return out


def icc_a1(x, alpha: float = 0.05) -> tuple[float, float, float]:
    """ICC(A,1) of an n x k matrix (n targets, k raters, no missing values) and its
    ``1 - alpha`` confidence interval (McGraw and Wong 1996, case 2A).

    Returns
    -------
    (icc, lower, upper) : floats; NaN where undefined (no variance, or no residual variance for
    the interval).
    """
    from scipy.stats import f as f_dist

    x = np.asarray(x, dtype=np.float64)
    n, k = x.shape
    gm = x.mean()
    rm = x.mean(axis=1, keepdims=True)
    cm = x.mean(axis=0, keepdims=True)
    msr = k * float(((rm - gm) ** 2).sum()) / (n - 1)
    msc = n * float(((cm - gm) ** 2).sum()) / (k - 1)
    mse = float(((x - rm - cm + gm) ** 2).sum()) / ((n - 1) * (k - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        icc = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
        fj = np.float64(msc) / mse
        vn = (k - 1) * (n - 1) * (k * icc * fj + n * (1 + (k - 1) * icc) - k * icc) ** 2
        vd = (n - 1) * k ** 2 * icc ** 2 * fj ** 2 + (n * (1 + (k - 1) * icc) - k * icc) ** 2
        v = vn / vd
        fu = f_dist.ppf(1 - alpha / 2, n - 1, v)
        fl = f_dist.ppf(1 - alpha / 2, v, n - 1)
        lo = n * (msr - fu * mse) / (fu * (k * msc + (k * n - k - n) * mse) + n * msr)
        hi = n * (fl * msr - mse) / (k * msc + (k * n - k - n) * mse + n * fl * msr)
    return float(icc), float(lo), float(hi)


def _icc(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float | None, float | None, str | None]:
    n = a.size
    if n < 3:
        return None, None, None, f"ICC needs at least 3 paired frames, got {n}"
    if np.ptp(np.concatenate([a, b])) == 0:
        return None, None, None, "ICC undefined: every value is the same"
    icc, lo, hi = icc_a1(np.c_[a, b])
    if not np.isfinite(icc):
        return None, None, None, "ICC undefined (no between-frame variance)"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return icc, None, None, "ICC confidence interval undefined (no residual variance)"
    return icc, lo, hi, None


def agreement(table_a: pd.DataFrame, table_b: pd.DataFrame, markers=None) -> pd.DataFrame:
    """Per-marker agreement of two score tables for the same frames.

    Parameters
    ----------
    table_a, table_b : DataFrame
        Long tables (matched on ``id`` and ``layer``) or wide tables (matched on ``id``), e.g.
        from `score_dataset` on two label sources. ``a - b`` is the difference.
    markers : list of str, optional
        Marker columns to compare (default: every numeric column both tables share, except keys,
        ``*_z`` and QC columns).

    Returns
    -------
    DataFrame
        One row per (layer, marker): ``n`` paired frames, ``mean_a``, ``mean_b``, ``bias``,
        ``sd_diff``, ``loa_lower``, ``loa_upper``, ``icc`` (ICC(A,1)), ``icc_ci95_lower``,
        ``icc_ci95_upper``, ``icc_type``, ``reason`` (why a statistic is empty). ``layer`` is
        empty for wide tables.
    """
    keys = ["id", "layer"] if ("layer" in table_a.columns and "layer" in table_b.columns) \
        else ["id"]
    for t, name in ((table_a, "table_a"), (table_b, "table_b")):
        if "id" not in t.columns:
            raise ValueError(f"{name} has no 'id' column")
    a = table_a.dropna(subset=[k for k in keys if k != "layer"] or keys)
    b = table_b.dropna(subset=[k for k in keys if k != "layer"] or keys)
    if "layer" in keys:
        a, b = a[a["layer"].notna()], b[b["layer"].notna()]
    if markers is None:
        markers = [c for c in a.columns if c in b.columns and c not in _NOT_MARKERS
                   and not c.endswith(("_z", "_reason", "_ref")) and not c.startswith("qc_")
                   and _numeric(a[c]) and _numeric(b[c])]
    else:
        missing = [m for m in markers if m not in a.columns or m not in b.columns]
        if missing:
            raise ValueError(f"marker column(s) {missing} missing from one of the tables")
    merged = a[keys + list(markers)].merge(b[keys + list(markers)], on=keys, suffixes=("_a", "_b"))
    groups = merged.groupby("layer", sort=True) if "layer" in keys else [(None, merged)]
    rows = []
    for layer, g in groups:
        for m in markers:
            va = pd.to_numeric(g[f"{m}_a"], errors="coerce").to_numpy(dtype=np.float64)
            vb = pd.to_numeric(g[f"{m}_b"], errors="coerce").to_numpy(dtype=np.float64)
            ok = np.isfinite(va) & np.isfinite(vb)
            if not ok.any():
                continue
            ba = bland_altman(va[ok], vb[ok])
            icc, lo, hi, why = _icc(va[ok], vb[ok])
            if ba["sd_diff"] is None:
                why = "; ".join(x for x in (why, "limits of agreement need 2 paired frames") if x)
            rows.append({"layer": layer, "marker": m, "n": ba["n"],
                         "mean_a": float(va[ok].mean()), "mean_b": float(vb[ok].mean()),
                         "bias": ba["bias"], "sd_diff": ba["sd_diff"],
                         "loa_lower": ba["loa_lower"], "loa_upper": ba["loa_upper"], "icc": icc,
                         "icc_ci95_lower": lo, "icc_ci95_upper": hi, "icc_type": "ICC(A,1)",
                         "reason": why})
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))
