"""Follow-up visits: how much each marker varies between repeated scans of one subject and site
(repeatability), and whether a change between two visits is larger than that.

Repeatability (Bland and Altman 1999; de Vet et al. 2006). For a marker measured on ``k_i``
scans of subject ``i`` at one site, the within-subject variance is the pooled variance of the
repeats, ``s_w^2 = sum_i sum_j (x_ij - mean_i)^2 / sum_i (k_i - 1)``; with two scans per subject
that is ``mean(d^2) / 2`` of the scan differences ``d``. From it:

- ``within_sd`` ``s_w`` (same unit as the marker);
- ``repeatability_coefficient`` ``1.96 sqrt(2) s_w`` (about 2.77 ``s_w``): 95 % of the differences
  between two scans of the same subject lie within it;
- ``sdc``, the smallest detectable change between two single measurements (de Vet's SDC,
  ``1.96 sqrt(2) SEM`` with ``SEM = s_w``): numerically the repeatability coefficient, kept as its
  own column because it is what `compare_visits` reads;
- ``bias``/``icc`` between the first two scans, from `layerseg.scoring.agreement`;
- ``within_cv_percent``, the pooled within-subject CV (each repeat scaled by its subject's mean),
  and ``sdc_relative_percent`` ``1.96 sqrt(2) CV``: the SDC as a share of the value;
- ``sdc_basis``: ``relative`` where a within-subject SD proportional to the subject's mean fits the
  repeats better than a constant one (log-likelihood gain ``relative_loglik_gain`` above
  `RELATIVE_LOGLIK_GAIN`; e.g. deep fat thickness, whose scan-to-scan SD grows with its
  thickness), else ``absolute``. `compare_visits` then applies ``sdc_relative_percent`` of the
  baseline value.

Simulated repeat scans (`simulate_repeat_scan`): one subject's anatomy is fixed by its seed and
every scan draws, from its own seed, the probe position (shifted along the width by up to
``SCAN_VARIATION['shift_mm']``), a small tilt, gain, gel thickness, probe pressure (fat and deep
fat thinned by up to 3 %) and new texture, septa and speckle (`simulate_frame(...,
scan_seed=...)`); the classical segmenter and `score` are in the loop. `repeat_scan_scores`
builds the table, `repeatability` reduces it; ``layerseg repeatability`` does both and also takes
a user's own test-retest score table.

Visits (`compare_visits`): the baseline and follow-up tables (``layerseg score`` or ``layerseg
infer`` tables) are averaged per subject, region, side and layer over their frames, matched on
``subject_id``, ``region`` and ``side`` (where the tables have it) and compared marker by marker
against the SDC of that region, layer and marker (the ``all`` regions row where the region has
none; ``sdc_relative_percent`` of the baseline value where its ``sdc_basis`` is relative):
``change = followup - baseline``, ``change_sdc = change / sdc``, verdict ``increase`` when
``change > sdc``, ``decrease`` when ``change < -sdc``, else ``within measurement noise``;
``not assessed`` with a reason where a value or the SDC is missing, and for the thickness and
roughness markers of a layer cut off by the image's bottom or top edge (``thickness_truncated``
of the score table, True in any frame of either visit: its thickness is a lower bound that
moves with the layers above or the probe's placement, and one of its surfaces is partly the
image edge). `repeatability` leaves those truncated values out too, so the SDC describes the
layers it is applied to. The SDC is that of single
scans, so a visit averaged over several frames is judged conservatively. Pairs found in one
visit only are listed (`VisitComparison.unmatched`), never dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, DatasetError
from .agreement import bland_altman, icc_a1

__all__ = ["REPEAT_MARKERS", "SCAN_VARIATION", "REPEAT_SHAPE", "REPEATABILITY_COLUMNS",
           "CHANGE_COLUMNS", "UNMATCHED_COLUMNS", "VERDICTS", "draw_scan", "simulate_repeat_scan",
           "repeat_scan_scores", "repeatability", "load_repeatability", "compare_visits",
           "SDC_TABLES", "VisitComparison"]

REPEAT_MARKERS = ("thickness_mean_mm", "echo_mean_grey", "roughness_ra_um")
"""Markers of the shipped repeatability table (per layer and region)."""

SCAN_VARIATION = {"shift_mm": 2.0, "tilt_deg": 2.0, "gain_db": 2.0, "standoff_mm": (0.2, 0.6),
                  "compression": (0.0, 0.03)}
"""What changes between repeat scans (our choice): probe shift uniform in +-2 mm along the
width, tilt uniform in +-2 degrees, gain uniform in +-2 dB, gel thickness uniform in 0.2-0.6 mm,
pressure thinning fat and deep fat by a uniform 0-3 %; other settings nominal."""

REPEAT_SHAPE = (256, 256)
"""Pixel grid of the shipped table's simulated scans (over 12 mm x 12.8 mm)."""

REPEATABILITY_COLUMNS = ("region", "layer", "marker", "n_subjects", "n_scans", "mean", "within_sd",
                         "cv_within_percent", "repeatability_coefficient", "sdc", "bias", "icc",
                         "reason", "within_cv_percent", "sdc_relative_percent",
                         "relative_loglik_gain", "sdc_basis")

RELATIVE_LOGLIK_GAIN = 2.0
"""`repeatability` picks the relative SDC (a share of the value) for a row when the normal model
whose within-subject SD is proportional to the subject's mean (``sd_i = cv * mean_i``) fits the
repeats better than the constant-SD model by more than this log-likelihood (a likelihood ratio of
e^2, about 7.4; both models have one parameter)."""
CHANGE_COLUMNS = ("subject_id", "region", "side", "layer", "marker", "baseline", "followup",
                  "change", "sdc", "sdc_region", "change_sdc", "verdict", "reason",
                  "baseline_frames", "followup_frames", "baseline_exams", "followup_exams")
UNMATCHED_COLUMNS = ("subject_id", "region", "side", "found_in", "missing_from", "exams",
                     "reason")
VERDICTS = ("increase", "decrease", "within measurement noise", "not assessed")

_KEYS = ("subject_id", "region", "side")

TRUNCATION_MARKERS = ("thickness_", "roughness_")
"""Marker name prefixes that a layer cut off by the image bottom makes unmeasurable: its
thickness is then a lower bound and its lower surface (whose roughness is measured) is partly
the image edge. Such values are left out of `repeatability` and not assessed by
`compare_visits`."""


def _truncation_bound(marker: str) -> bool:
    return str(marker).startswith(TRUNCATION_MARKERS)


def _truncated(col) -> pd.Series:
    """``thickness_truncated`` as booleans (CSV round trips give strings; missing is False)."""
    return col.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))


# ----------------------------------------------------------------------------- simulation
def draw_scan(rng: np.random.Generator) -> dict:
    """Draw one repeat scan's probe placement and settings from `SCAN_VARIATION`.

    Parameters
    ----------
    rng : numpy Generator

    Returns
    -------
    dict
        ``shift_mm``, ``tilt_deg``, ``gain_db``, ``standoff_mm``, ``compression`` (keyword
        arguments of `layerseg.simulate.simulate_frame`).
    """
    v = SCAN_VARIATION
    return {"shift_mm": float(rng.uniform(-v["shift_mm"], v["shift_mm"])),
            "tilt_deg": float(rng.uniform(-v["tilt_deg"], v["tilt_deg"])),
            "gain_db": float(rng.uniform(-v["gain_db"], v["gain_db"])),
            "standoff_mm": float(rng.uniform(*v["standoff_mm"])),
            "compression": float(rng.uniform(*v["compression"]))}


def simulate_repeat_scan(subject_seed: int, scan: int, *, region: str = "cheek",
                         age: float = 45.0, sex: str = "F",
                         shape: tuple[int, int] = REPEAT_SHAPE,
                         thickness_change_mm: dict | None = None, with_elasto: bool = False):
    """One scan of a simulated subject: same anatomy for every `scan`, new placement and speckle.

    Parameters
    ----------
    subject_seed : int
        Fixes the anatomy (thicknesses, lateral shapes, layer presence...).
    scan : int
        Scan number (>= 0); the scan's placement, settings and speckle come from
        ``SeedSequence([subject_seed, scan])``.
    region, age, sex, shape, with_elasto
        As `layerseg.simulate.simulate_frame`.
    thickness_change_mm : dict, optional
        ``{layer: mm}`` anatomical thickness added at this scan (a real change between visits).

    Returns
    -------
    SimulatedFrame
        ``truth['scan']`` records the placement and settings.
    """
    from ..simulate import simulate_frame
    if int(scan) < 0:
        raise ConfigError(f"scan must be >= 0, got {scan}")
    ss = np.random.SeedSequence([int(subject_seed), int(scan)])
    rng = np.random.default_rng(ss)
    settings = draw_scan(rng)
    scan_seed = int(rng.integers(0, 2 ** 63 - 1))
    sim = simulate_frame(int(subject_seed), region=region, age=age, sex=sex, shape=shape,
                         vary=False, with_elasto=with_elasto, scan_seed=scan_seed,
                         thickness_change_mm=thickness_change_mm, **settings)
    sim.truth["scan"].update(settings)
    return sim


def _subjects(n: int, seed: int, regions) -> list[dict]:
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7919]))
    out = []
    for i in range(int(n)):
        age = float(np.round(rng.uniform(25, 75), 1))
        sex = "F" if rng.random() < 0.5 else "M"
        sseed = int(rng.integers(0, 2 ** 31 - 1))
        for r in regions:
            out.append({"subject_id": f"sim{i:03d}", "subject_seed": sseed, "region": r,
                        "age": age, "sex": sex})
    return out


def repeat_scan_scores(n_subjects: int, *, seed: int = 0, regions=("cheek",), n_scans: int = 2,
                       shape: tuple[int, int] = REPEAT_SHAPE, model: str = "classical",
                       change: dict | None = None, change_scan: int = 1, log=None,
                       progress: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Simulate `n_scans` repeat scans of `n_subjects` subjects per region, segment and score.

    Parameters
    ----------
    n_subjects : int
    seed : int
        Draws each subject's age (25-75), sex and anatomy seed: same seed, same table.
    regions : sequence of str
    n_scans : int
        Scans per subject and region (>= 2).
    shape : (rows, cols)
    model : str
        Segmenter, as `layerseg.segment` takes it.
    change : dict, optional
        ``{layer: mm}`` anatomical thickness change applied from scan `change_scan` on.
    log : callable(str), optional
    progress : bool
        Show a progress bar.

    Returns
    -------
    table : DataFrame
        Long score table (one row per scan and layer) with ``subject_id``, ``region``,
        ``scan``, ``id`` and every `score` column.
    failures : list of str
        Scans that could not be simulated, segmented or scored, with the reason (the run goes on).
    """
    from .. import segment
    from ..batch import run_each
    from .markers import score
    if int(n_scans) < 2:
        raise ConfigError(f"n_scans must be >= 2, got {n_scans}")
    items = [(s, k) for s in _subjects(n_subjects, seed, regions) for k in range(int(n_scans))]

    def work(item):
        s, k = item
        ch = change if (change and k >= change_scan) else None
        sim = simulate_repeat_scan(s["subject_seed"], k, region=s["region"], age=s["age"],
                                   sex=s["sex"], shape=shape, thickness_change_mm=ch)
        labels = segment(sim.frame, model=model)
        fid = f"{s['subject_id']}_{s['region']}_scan{k}"
        t = score(sim.frame, labels, frame_id=fid, subject_id=s["subject_id"], age=s["age"],
                  sex=s["sex"], region=s["region"]).to_long()
        t.insert(1, "scan", k)
        return t

    parts, failures = [], []
    for o in run_each(items, work, key=lambda it: f"{it[0]['subject_id']}_{it[0]['region']}_"
                      f"scan{it[1]}", progress="repeat scans" if progress else None,
                      unit="scan"):
        if o.ok:
            parts.append(o.value)
        else:
            failures.append(f"{o.key}: {o.error}")
            if log:
                log(f"failed {o.key}: {o.error}")
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return table, failures


# ----------------------------------------------------------------------------- statistics
def _group_keys(table: pd.DataFrame) -> list[str]:
    return [k for k in ("subject_id", "region", "side") if k in table.columns]


def repeatability(table: pd.DataFrame, markers=REPEAT_MARKERS, *,
                  pooled_region: bool = True) -> pd.DataFrame:
    """Within-subject SD, repeatability coefficient and SDC per region, layer and marker.

    Parameters
    ----------
    table : DataFrame
        Long score table, one row per scan (frame) and layer: ``subject_id``, ``layer``, the
        markers, and ``region`` (and ``side``) where known. Rows sharing subject, region, side
        and layer are repeat scans (two or more; subjects with one scan are left out).
    markers : sequence of str
    pooled_region : bool
        Add rows with region ``all`` pooling every region's repeats.

    Returns
    -------
    DataFrame
        `REPEATABILITY_COLUMNS`: ``n_subjects`` with >= 2 scans, ``n_scans`` used, ``mean``,
        ``within_sd``, ``cv_within_percent`` (100 within_sd / mean), ``repeatability_coefficient``
        and ``sdc`` (both 1.96 sqrt(2) within_sd), ``bias`` (mean of scan 2 - scan 1 over
        subjects, Bland-Altman) and ``icc`` (ICC(A,1) of the first two scans), ``reason`` where a
        figure is empty; ``within_cv_percent``, ``sdc_relative_percent``,
        ``relative_loglik_gain`` and ``sdc_basis`` (`_relative_fit`). Thickness and roughness
        values of frames with ``thickness_truncated`` True are left out.

    Raises
    ------
    DatasetError
        The table lacks ``subject_id``, ``layer`` or a marker column.
    """
    need = ["subject_id", "layer", *markers]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise DatasetError(f"the score table lacks the column(s) {missing} needed for "
                           "repeatability")
    t = table[table["layer"].notna() & table["subject_id"].notna()].copy()
    if "region" not in t.columns:
        t["region"] = "default"
    t["region"] = t["region"].fillna("default").astype(str)
    keys = _group_keys(t)
    order = "scan" if "scan" in t.columns else ("id" if "id" in t.columns else None)
    if order:
        t = t.sort_values(order, kind="stable")
    sets = [(r, g) for r, g in t.groupby("region", sort=True)]
    if pooled_region and len(sets) > 1:
        sets.append(("all", t))
    rows = []
    for region, g in sets:
        for layer, gl in g.groupby("layer", sort=True):
            trunc = (_truncated(gl["thickness_truncated"])
                     if "thickness_truncated" in gl.columns else None)
            for m in markers:
                v = gl[keys + [m]].copy()
                v[m] = pd.to_numeric(v[m], errors="coerce")
                if trunc is not None and _truncation_bound(m):
                    v.loc[trunc.to_numpy(), m] = np.nan       # a lower bound, not a measure
                v = v[np.isfinite(v[m].to_numpy(dtype=np.float64))]
                rows.append(_repeat_row(region, layer, m, v, keys))
    return pd.DataFrame(rows, columns=list(REPEATABILITY_COLUMNS))


def _repeat_row(region, layer, marker, v: pd.DataFrame, keys) -> dict:
    row = {"region": region, "layer": layer, "marker": marker, "n_subjects": 0, "n_scans": 0,
           "mean": None, "within_sd": None, "cv_within_percent": None,
           "repeatability_coefficient": None, "sdc": None, "bias": None, "icc": None,
           "reason": None, "within_cv_percent": None, "sdc_relative_percent": None,
           "relative_loglik_gain": None, "sdc_basis": "absolute"}
    ss, dof, n_subj, n_scans, first, second, vals = 0.0, 0, 0, 0, [], [], []
    for _, g in v.groupby(keys, sort=True):
        x = g[marker].to_numpy(dtype=np.float64)
        if x.size < 2:
            continue
        ss += float(((x - x.mean()) ** 2).sum())
        dof += x.size - 1
        n_subj += 1
        n_scans += x.size
        first.append(x[0])
        second.append(x[1])
        vals.append(x)
    row.update(n_subjects=n_subj, n_scans=n_scans)
    if n_subj == 0:
        row["reason"] = "no subject with two or more scans of this layer"
        return row
    sw = math.sqrt(ss / dof)
    mean = float(np.mean(np.concatenate(vals)))
    row.update(mean=mean, within_sd=sw, repeatability_coefficient=1.96 * math.sqrt(2.0) * sw,
               sdc=1.96 * math.sqrt(2.0) * sw,
               cv_within_percent=100.0 * sw / mean if mean != 0 else None,
               bias=bland_altman(second, first)["bias"])
    row.update(_relative_fit(vals, sw))
    reasons = []
    if n_subj >= 3 and np.ptp(np.r_[first, second]) > 0:
        icc = icc_a1(np.c_[first, second])[0]
        row["icc"] = icc if np.isfinite(icc) else None
    else:
        reasons.append("ICC needs 3 subjects and some spread")
    if n_subj < 5:
        reasons.append(f"only {n_subj} subject(s): the SDC is imprecise")
    row["reason"] = "; ".join(reasons) or None
    return row


def _relative_fit(vals: list, sw: float) -> dict:
    """Within-subject CV (pooled over subjects, each repeat scaled by its subject's mean), the
    relative SDC and the log-likelihood gain of the proportional-SD model over the constant-SD
    one; ``sdc_basis`` relative where the gain exceeds `RELATIVE_LOGLIK_GAIN`."""
    if not vals or any(np.mean(x) <= 0 for x in vals):
        return {}
    ss = sum(float((((x - x.mean()) / x.mean()) ** 2).sum()) for x in vals)
    dof = sum(x.size - 1 for x in vals)
    cv = math.sqrt(ss / dof)
    out = {"within_cv_percent": 100.0 * cv, "sdc_relative_percent": 100.0 * 1.96 * math.sqrt(2) * cv}
    if cv <= 0 or sw <= 0:
        return out
    # normal log-likelihoods of the deviations from each subject's mean, one SD parameter each
    ll_abs = ll_rel = 0.0
    for x in vals:
        e = x - x.mean()
        sd_rel = cv * x.mean()
        ll_abs += float(-(e ** 2).sum() / (2 * sw ** 2) - x.size * math.log(sw))
        ll_rel += float(-(e ** 2).sum() / (2 * sd_rel ** 2) - x.size * math.log(sd_rel))
    gain = ll_rel - ll_abs
    out.update(relative_loglik_gain=gain,
               sdc_basis="relative" if gain > RELATIVE_LOGLIK_GAIN else "absolute")
    return out


SDC_TABLES = {"classical": "repeatability.csv", "default": "repeatability_default.csv"}
"""The packaged SDC table of each shipped segmenter (``layerseg/data``; how each was made:
``repeatability.md``). A marker's test-retest noise depends on the segmenter that measured it."""


def load_repeatability(path: str | Path | None = None, model: str = "classical"
                       ) -> pd.DataFrame:
    """The SDC table: the packaged one of a shipped segmenter (`SDC_TABLES`; how they were
    made: ``layerseg/data/repeatability.md``) or a table `layerseg repeatability` wrote.

    Parameters
    ----------
    path : path, optional
        A table of your own; it wins over `model`.
    model : str
        The segmenter whose packaged table is wanted (``classical`` or ``default``).

    Raises
    ------
    DatasetError
        The file cannot be read or lacks ``region``, ``layer``, ``marker`` or ``sdc``; or no
        table is packaged for `model` (a checkpoint of your own: make its table with
        ``layerseg repeatability --model PATH`` and pass it).
    """
    if path is None and model not in SDC_TABLES:
        raise DatasetError(f"no packaged SDC table for the model {model!r} (packaged: "
                           f"{', '.join(SDC_TABLES)}); make one with 'layerseg repeatability "
                           f"--model {model} --out FILE.csv' and pass it (--sdc FILE.csv)")
    try:
        if path is None:
            with resources.files("layerseg.data").joinpath(SDC_TABLES[model]).open() as f:
                t = pd.read_csv(f)
        else:
            t = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read the SDC table ({e})", path) from e
    missing = [c for c in ("region", "layer", "marker", "sdc") if c not in t.columns]
    if missing:
        raise DatasetError(f"the SDC table lacks the column(s) {missing}", path)
    return t


# ----------------------------------------------------------------------------- visits
@dataclass
class VisitComparison:
    """What `compare_visits` found.

    Attributes
    ----------
    changes : DataFrame
        `CHANGE_COLUMNS`, one row per matched subject/region/side, layer and marker.
    unmatched : DataFrame
        `UNMATCHED_COLUMNS`: subject/region/side found in one visit only.
    """

    changes: pd.DataFrame
    unmatched: pd.DataFrame


def _visit_means(table: pd.DataFrame, markers, name: str) -> pd.DataFrame:
    need = ["subject_id", "layer"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise DatasetError(f"the {name} table lacks the column(s) {missing}; it must be a "
                           "`layerseg score` or `layerseg infer` long table")
    if not any(m in table.columns for m in markers):
        raise DatasetError(f"the {name} table has none of the marker columns {list(markers)}")
    t = table.copy()
    for k in ("region", "side"):
        if k not in t.columns:
            t[k] = None
    if "frame_status" in t.columns:
        t = t[t["frame_status"].fillna("ok") != "failed"]
    t = t[t["subject_id"].notna()]
    t["region"] = t["region"].fillna("default").astype(str)
    t["side"] = t["side"].fillna("").astype(str)
    exam_col = "exam" if "exam" in t.columns else ("id" if "id" in t.columns else None)
    ms = [m for m in markers if m in t.columns]
    for m in ms:
        t[m] = pd.to_numeric(t[m], errors="coerce")
    rows = []
    for key, g in t.groupby(list(_KEYS), sort=True):
        exams = sorted(set(g[exam_col].dropna().astype(str))) if exam_col else []
        n_frames = g["id"].nunique() if "id" in g.columns else len(g)
        for layer, gl in g[g["layer"].notna()].groupby("layer", sort=True):
            row = dict(zip(_KEYS, key), layer=layer, frames=int(n_frames),
                       exams=";".join(exams))
            for m in ms:
                vals = gl[m].dropna()
                row[m] = float(vals.mean()) if len(vals) else None
            row["truncated_frames"] = (int(_truncated(gl["thickness_truncated"]).sum())
                                       if "thickness_truncated" in gl.columns else 0)
            rows.append(row)
        if g["layer"].notna().sum() == 0:
            rows.append(dict(zip(_KEYS, key), layer=None, frames=int(n_frames),
                             exams=";".join(exams)))
    return pd.DataFrame(rows, columns=[*_KEYS, "layer", "frames", "exams", "truncated_frames",
                                       *ms])


def _sdc_lookup(sdc_table: pd.DataFrame) -> dict:
    """``(region, layer, marker) -> (sdc, relative percent or None)``; the relative SDC only
    where the table's ``sdc_basis`` says relative."""
    out = {}
    rel = "sdc_basis" in sdc_table.columns and "sdc_relative_percent" in sdc_table.columns
    for r in sdc_table.to_dict("records"):
        v = r["sdc"]
        if not (_finite(v) and float(v) > 0):
            continue
        pct = r.get("sdc_relative_percent") if rel and r.get("sdc_basis") == "relative" else None
        out[(str(r["region"]), str(r["layer"]), str(r["marker"]))] = (
            float(v), float(pct) if _finite(pct) and float(pct) > 0 else None)
    return out


def compare_visits(baseline_table: pd.DataFrame, followup_table: pd.DataFrame,
                   sdc_table: pd.DataFrame | None = None, markers=None) -> VisitComparison:
    """Per subject, region, side, layer and marker: the change between two visits and its
    verdict against the smallest detectable change.

    Parameters
    ----------
    baseline_table, followup_table : DataFrame
        Long score tables (``layerseg score`` / ``layerseg infer``): ``subject_id``, ``layer``
        and marker columns; ``region``, ``side``, ``exam``/``id`` where known. Frames of one
        subject, region and side are averaged per layer.
    sdc_table : DataFrame, optional
        ``region``, ``layer``, ``marker``, ``sdc`` (default: the packaged table,
        `load_repeatability`). Looked up by region, then region ``all``.
    markers : sequence of str, optional
        Default: the SDC table's markers.

    Returns
    -------
    VisitComparison

    Raises
    ------
    DatasetError
        A table lacks the needed columns.
    """
    sdc_table = load_repeatability() if sdc_table is None else sdc_table
    for c in ("region", "layer", "marker", "sdc"):
        if c not in sdc_table.columns:
            raise DatasetError(f"the SDC table lacks the column {c!r}")
    if markers is None:
        markers = list(dict.fromkeys(sdc_table["marker"].astype(str)))
    markers = list(markers)
    a = _visit_means(baseline_table, markers, "baseline")
    b = _visit_means(followup_table, markers, "follow-up")
    lookup = _sdc_lookup(sdc_table)
    ka = a.groupby(list(_KEYS), sort=True)
    kb = b.groupby(list(_KEYS), sort=True)
    keys_a, keys_b = set(ka.groups), set(kb.groups)
    unmatched = []
    for key, src, dst, g in ([(k, "baseline", "follow-up", ka.get_group(k))
                              for k in sorted(keys_a - keys_b)]
                             + [(k, "follow-up", "baseline", kb.get_group(k))
                                for k in sorted(keys_b - keys_a)]):
        unmatched.append({**dict(zip(_KEYS, key)), "found_in": src, "missing_from": dst,
                          "exams": ";".join(sorted(set(";".join(g["exams"]).split(";")) - {""})),
                          "reason": f"no {dst} exam of this subject, region and side"})
    rows = []
    for key in sorted(keys_a & keys_b):
        ga = ka.get_group(key).set_index("layer")
        gb = kb.get_group(key).set_index("layer")
        layers = [ly for ly in dict.fromkeys([*ga.index, *gb.index]) if isinstance(ly, str)]
        for layer in layers:
            for m in markers:
                va = ga.at[layer, m] if (layer in ga.index and m in ga.columns) else None
                vb = gb.at[layer, m] if (layer in gb.index and m in gb.columns) else None
                rows.append(_change_row(key, layer, m, va, vb, lookup, ga, gb))
    return VisitComparison(pd.DataFrame(rows, columns=list(CHANGE_COLUMNS)),
                           pd.DataFrame(unmatched, columns=list(UNMATCHED_COLUMNS)))


def _finite(v) -> bool:
    try:
        return v is not None and np.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _change_row(key, layer, marker, va, vb, lookup, ga, gb) -> dict:
    region = key[1]
    row = {**dict(zip(_KEYS, key)), "layer": layer, "marker": marker,
           "baseline": float(va) if _finite(va) else None,
           "followup": float(vb) if _finite(vb) else None, "change": None, "sdc": None,
           "sdc_region": None, "change_sdc": None, "verdict": "not assessed", "reason": None,
           "baseline_frames": int(ga["frames"].iloc[0]), "followup_frames":
           int(gb["frames"].iloc[0]), "baseline_exams": ga["exams"].iloc[0],
           "followup_exams": gb["exams"].iloc[0]}
    ent, src = lookup.get((region, layer, marker)), region
    if ent is None:
        ent, src = lookup.get(("all", layer, marker)), "all"
    sdc = None
    if ent is not None:
        sdc, pct = ent
        if pct is not None and row["baseline"] is not None and row["baseline"] > 0:
            sdc = pct / 100.0 * row["baseline"]            # relative SDC: a share of the baseline
        row.update(sdc=sdc, sdc_region=src)
    if row["baseline"] is None or row["followup"] is None:
        missing = [n for n, v in (("baseline", row["baseline"]), ("follow-up", row["followup"]))
                   if v is None]
        where = ("layer not found" if (layer not in ga.index if "baseline" in missing
                                       else layer not in gb.index) else "no value")
        row["reason"] = f"{where} at the {' and '.join(missing)} visit"
        return row
    row["change"] = row["followup"] - row["baseline"]
    if _truncation_bound(marker):
        cut = [f"{n} ({int(g.at[layer, 'truncated_frames'])} of {int(g['frames'].iloc[0])} "
               "frame(s))" for n, g in (("baseline", ga), ("follow-up", gb))
               if _finite(g.at[layer, "truncated_frames"]) and g.at[layer, "truncated_frames"] > 0]
        if cut:
            what = "thickness is a lower bound" if marker.startswith("thickness_") else \
                "lower surface partly the image edge"
            row["reason"] = (f"{layer} cut off by the image bottom at the {' and '.join(cut)}: "
                             f"{what}, not measurable")
            return row
    if sdc is None:
        row["reason"] = f"no SDC for {layer} {marker} (region {region} or all)"
        return row
    row["change_sdc"] = row["change"] / sdc
    row["verdict"] = ("increase" if row["change"] > sdc else
                      "decrease" if row["change"] < -sdc else "within measurement noise")
    return row
