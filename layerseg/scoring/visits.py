"""Reading two visits from disk and writing their comparison: `compare_folders` behind
``layerseg compare BASELINE FOLLOWUP --out DIR``.

A visit is a ``layerseg infer`` output folder (its combined ``scores.csv``/``.parquet``; overlays
under ``exams/<key>/overlay_fNNN.png``) or a ``layerseg score`` long table (.csv/.parquet). The
output folder gets ``changes.csv`` and ``changes.parquet`` (`compare_visits`' table),
``unmatched.csv`` (subjects found in one visit only) and ``compare.html``: a self-contained page
with, per matched subject, region and side, the changes layer by layer and the two visits'
overlays side by side where the infer folders hold them.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

import pandas as pd

from ..errors import DatasetError, ReadError
from .followup import VisitComparison, compare_visits, load_repeatability

__all__ = ["read_visit", "visit_model", "compare_folders", "comparison_html", "COMPARE_FILES"]

COMPARE_FILES = ("changes.csv", "changes.parquet", "unmatched.csv", "compare.html")
"""What `compare_folders` writes in its output folder."""


def _visit_file(path: Path) -> Path:
    if path.is_dir():
        for name in ("scores.parquet", "scores.csv"):
            if (path / name).is_file():
                return path / name
        raise ReadError("not a `layerseg infer` output folder (no scores.csv or scores.parquet)",
                        path)
    if path.is_file():
        return path
    raise ReadError("no such file or folder", path)


def read_visit(path: str | os.PathLike) -> pd.DataFrame:
    """One visit's long score table: an infer output folder or a score table file.

    Raises
    ------
    ReadError
        The path does not exist, or is a folder without ``scores.csv``/``.parquet``.
    DatasetError
        The table cannot be parsed.
    """
    f = _visit_file(Path(path))
    try:
        if f.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(f)
        return pd.read_csv(f, low_memory=False)
    except (OSError, ValueError, ImportError) as e:
        raise DatasetError(f"cannot read the score table ({e})", f) from e


def visit_model(baseline: pd.DataFrame, b_path, followup: pd.DataFrame, f_path) -> str:
    """The one segmenter both visits' tables were measured with (their ``model`` column;
    ``classical`` for a table without one, as `layerseg score` writes for given labels).

    Raises
    ------
    DatasetError
        The visits (or the frames of one visit) were measured with different segmenters: their
        difference would mix a change of the segmenter into the change of the tissue.
    """
    found = {}
    for t, p in ((baseline, b_path), (followup, f_path)):
        m = t["model"].dropna().astype(str).unique() if "model" in t.columns else []
        found[str(p)] = sorted(m) or ["classical"]
    models = sorted({m for v in found.values() for m in v})
    if len(models) > 1:
        raise DatasetError("the visits were measured with different segmenters ("
                           + "; ".join(f"{p}: {', '.join(v)}" for p, v in found.items())
                           + "); run 'layerseg infer' on both with the same --model, or pass an "
                           "SDC table that fits (--sdc)", b_path)
    return models[0]


def _overlays(visit: Path, exams: str) -> list[Path]:
    if not visit.is_dir() or not isinstance(exams, str):
        return []
    out = []
    for e in (x for x in exams.split(";") if x):
        d = visit / "exams" / e
        if d.resolve().parent == (visit / "exams").resolve() and d.is_dir():
            out += sorted(d.glob("overlay_f*.png"))
    return out


def _img(p: Path) -> str:
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    return (f'<img alt="{html.escape(p.parent.name)} {html.escape(p.name)}" '
            f'src="data:image/png;base64,{data}">')


def _fmt(v, nd=3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return f"{v:.{nd}g}" if isinstance(v, float) else html.escape(str(v))


_STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:2px 6px;
font-size:13px}th{background:#eee}.increase{background:#fdd}.decrease{background:#ddf}
.na{color:#888}.pair{display:flex;gap:1em}.pair div{flex:1}.pair img{max-width:100%}
.note{color:#555;font-size:13px}"""


def comparison_html(cmp: VisitComparison, baseline: Path | None = None,
                    followup: Path | None = None, max_overlays: int = 2) -> str:
    """A self-contained HTML page of a `VisitComparison` (overlays embedded as data URIs).

    Parameters
    ----------
    cmp : VisitComparison
    baseline, followup : path, optional
        Infer output folders whose ``exams/<key>/overlay_fNNN.png`` are shown side by side.
    max_overlays : int
        Overlays per visit and subject.
    """
    h = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>layerseg follow-up</title>",
         f"<style>{_STYLE}</style></head><body><h1>Follow-up: change since the last visit</h1>",
         "<p class='note'>Research software, not a medical device. A change is called an "
         "increase or decrease when it exceeds the smallest detectable change (SDC) of that "
         "region, layer and marker between two single scans; otherwise it is within "
         "measurement noise.</p>"]
    ch = cmp.changes
    counts = ch["verdict"].value_counts().to_dict() if len(ch) else {}
    h.append("<p>" + ", ".join(f"{html.escape(k)}: {v}" for k, v in sorted(counts.items()))
             + f"; unmatched: {len(cmp.unmatched)}</p>")
    if len(cmp.unmatched):
        h.append("<h2>Not matched</h2><table><tr>" + "".join(
            f"<th>{c}</th>" for c in cmp.unmatched.columns) + "</tr>")
        for r in cmp.unmatched.itertuples(index=False):
            h.append("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r) + "</tr>")
        h.append("</table>")
    cols = ["layer", "marker", "baseline", "followup", "change", "sdc", "change_sdc", "verdict",
            "reason"]
    for key, g in ch.groupby(["subject_id", "region", "side"], sort=True, dropna=False):
        sid, region, side = key
        h.append(f"<h2>Subject {html.escape(str(sid))}, {html.escape(str(region))}"
                 + (f", {html.escape(str(side))}" if side else "") + "</h2>")
        ob = _overlays(baseline, g["baseline_exams"].iloc[0]) if baseline else []
        of = _overlays(followup, g["followup_exams"].iloc[0]) if followup else []
        if ob or of:
            h.append("<div class='pair'><div><h3>Baseline</h3>"
                     + "".join(_img(p) for p in ob[:max_overlays])
                     + "</div><div><h3>Follow-up</h3>"
                     + "".join(_img(p) for p in of[:max_overlays]) + "</div></div>")
        h.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>")
        for r in g[cols].itertuples(index=False):
            cls = {"increase": "increase", "decrease": "decrease",
                   "not assessed": "na"}.get(r.verdict, "")
            h.append(f"<tr class='{cls}'>" + "".join(f"<td>{_fmt(v)}</td>" for v in r) + "</tr>")
        h.append("</table>")
    h.append("</body></html>")
    return "\n".join(h)


def compare_folders(baseline: str | os.PathLike, followup: str | os.PathLike,
                    out: str | os.PathLike, *, sdc: str | os.PathLike | None = None,
                    markers=None) -> VisitComparison:
    """Compare two visits on disk and write `COMPARE_FILES` into `out`.

    Parameters
    ----------
    baseline, followup : path
        ``layerseg infer`` output folders or ``layerseg score`` long tables.
    out : path
        Output folder (created; refused when it would overwrite an input).
    sdc : path, optional
        SDC table (default: the packaged table of the segmenter both visits were measured with,
        from their ``model`` column: `layerseg.scoring.followup.SDC_TABLES`).
    markers : sequence of str, optional

    Returns
    -------
    VisitComparison

    Raises
    ------
    ReadError, DatasetError, OutputError
        Before anything is written: a missing visit, a table without the needed columns, an
        output that would overwrite an input or cannot be written; without `sdc`, visits
        measured with different segmenters, or with one that has no packaged table.
    """
    from ..io.safe_write import check_outputs, check_writable, write_text_atomic
    from .table import write_table
    b, f, o = Path(baseline), Path(followup), Path(out)
    fb, ff = _visit_file(b), _visit_file(f)
    outs = [o / n for n in COMPARE_FILES]
    check_outputs(outs, [b, f] + ([Path(sdc)] if sdc else []))
    tb, tf = read_visit(fb), read_visit(ff)
    sdc_table = load_repeatability(sdc) if sdc else load_repeatability(
        model=visit_model(tb, fb, tf, ff))
    cmp = compare_visits(tb, tf, sdc_table, markers=markers)
    check_writable(o)
    write_table(cmp.changes, o / "changes.csv")
    write_table(cmp.changes, o / "changes.parquet")
    write_table(cmp.unmatched, o / "unmatched.csv")
    write_text_atomic(o / "compare.html", comparison_html(cmp, b if b.is_dir() else None,
                                                          f if f.is_dir() else None))
    return cmp
