"""The per-exam HTML report: one self-contained file a clinician opens in a browser.

Images are embedded as base64 ``data:`` URIs and the thickness plots are inline SVG, so the file
needs nothing beside it. It holds, per frame: the overlay (layer outlines and names, elastography
beside), a table of each layer's values against the reference ranges with z-scores, the
thickness along the width, and the QC flags with their reasons; and for the exam: the model,
the layerseg version and the statement that this is research software, not a medical device.
No file name, path or header field of the input is written (the exam is named by its key).
"""

from __future__ import annotations

import base64
import html
import math

import numpy as np

from .writers import LABEL_COLOURS

__all__ = ["exam_report_html", "thickness_svg", "RESEARCH_NOTICE"]

RESEARCH_NOTICE = ("Research use only, not a medical device. These measurements are produced "
                   "automatically by research software that has not been cleared or approved "
                   "for clinical use; do not use them on their own to diagnose or treat anyone.")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;
color:#1b1f24;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-top:1px solid #ccd;
padding-top:16px} h3{font-size:15px;margin:16px 0 6px}
.notice{background:#fff4d6;border:1px solid #e0b84c;padding:8px 12px;margin:12px 0;
font-weight:600}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #ccd;padding:3px 8px;text-align:right} th{background:#eef}
td.l,th.l{text-align:left} .out{background:#ffe3e3} .meta td{text-align:left}
.flags li{margin:2px 0} .ok{color:#11772b;font-weight:600} .bad{color:#b3261e;font-weight:600}
img.overlay{max-width:100%;border:1px solid #99a;image-rendering:auto}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px;border:1px solid #555}
.wide{overflow-x:auto;max-width:100%}
tr.layer-notes td{font-size:12px;color:#3d4550;background:#fafafc}
"""


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "&ndash;"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    try:
        return f"{float(v):.{digits}g}"
    except (TypeError, ValueError):
        return html.escape(str(v))


_MARKER_WORDS = (("skin skin_thickness_mean_mm", "skin thickness"),
                 ("thickness_mean_mm", "thickness"), ("thickness_sd_mm", "thickness SD"),
                 ("stiffness_median_kpa", "stiffness"))
"""The scores table's marker names as the report says them (aging profile)."""


def _marker_words(text: str) -> str:
    """A scores-table text with its marker names in words ("thickness_mean_mm" -> "thickness")."""
    for name, words in _MARKER_WORDS:
        text = text.replace(name, words)
    return text


def _profile_words(text: str) -> str:
    """The aging profile of the scores table ("dermis thickness_mean_mm below (z=-2.10)") in
    words: "dermis thickness below range (z=-2.10)"."""
    text = _marker_words(text)
    return text.replace(" above (z=", " above range (z=").replace(" below (z=", " below range (z=")


def _zval(z) -> str:
    return "&ndash;" if z is None or not math.isfinite(float(z)) else f"{float(z):+.2f}"


def _z(z, limit: float) -> str:
    cls = ' class="out"' if _zval(z) != "&ndash;" and abs(float(z)) > limit else ""
    return f"<td{cls}>{_zval(z)}</td>"


def _swatch(layer: str) -> str:
    from ..layers.profiles import LABEL_NAMES
    rgb = LABEL_COLOURS.get(LABEL_NAMES.index(layer), (0, 0, 0))
    return f'<span class="swatch" style="background:rgb{rgb}"></span>'


def thickness_svg(thickness_mm: np.ndarray, layers, lateral_mm: float, *, width: int = 640,
                  height: int = 200) -> str:
    """Thickness along the width of the frame as an inline SVG line plot.

    Parameters
    ----------
    thickness_mm : ndarray of float, shape (K, cols)
        Thickness along the normal per layer and column, mm; NaN where absent or undefined.
    layers : sequence of str
        The K layer names (profile order).
    lateral_mm : float
        Lateral pixel spacing, mm (the x axis is the position across the frame, mm).
    width, height : int
        SVG size in CSS pixels.

    Returns
    -------
    str
        An ``<svg>`` element: one coloured polyline per layer with finite values (gaps where
        NaN), axes with mm ticks, and a legend.
    """
    from ..layers.profiles import LABEL_NAMES
    t = np.asarray(thickness_mm, dtype=np.float64)
    k, n = t.shape
    finite = t[np.isfinite(t)]
    ymax = float(finite.max()) * 1.1 if finite.size else 1.0
    ymax = ymax if ymax > 0 else 1.0
    xmax = max(n - 1, 1) * lateral_mm
    ml, mr, mt, mb = 48, 110, 10, 34
    pw, ph = width - ml - mr, height - mt - mb

    def X(c):
        return ml + pw * (c * lateral_mm) / xmax

    def Y(v):
        return mt + ph * (1 - v / ymax)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="thickness along the width">',
             f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="#fafbff" '
             'stroke="#99a"/>']
    for i in range(5):
        v = ymax * i / 4
        parts.append(f'<line x1="{ml - 4}" y1="{Y(v):.1f}" x2="{ml}" y2="{Y(v):.1f}" '
                     'stroke="#555"/>'
                     f'<text x="{ml - 6}" y="{Y(v) + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{v:.2g}</text>')
        xv = xmax * i / 4
        xp = ml + pw * i / 4
        parts.append(f'<line x1="{xp:.1f}" y1="{mt + ph}" x2="{xp:.1f}" y2="{mt + ph + 4}" '
                     'stroke="#555"/>'
                     f'<text x="{xp:.1f}" y="{mt + ph + 15}" font-size="10" '
                     f'text-anchor="middle">{xv:.3g}</text>')
    parts.append(f'<text x="{ml + pw / 2:.0f}" y="{height - 4}" font-size="11" '
                 'text-anchor="middle">position across the frame (mm)</text>'
                 f'<text x="12" y="{mt + ph / 2:.0f}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {mt + ph / 2:.0f})">thickness (mm)</text>')
    ly = mt + 4
    for j, name in enumerate(layers):
        row = t[j]
        if not np.isfinite(row).any():
            continue
        v = LABEL_NAMES.index(name)
        col = "rgb(%d,%d,%d)" % tuple(int(c * 0.8) for c in LABEL_COLOURS.get(v, (0, 0, 0)))
        runs, cur = [], []
        for c in range(n):
            if np.isfinite(row[c]):
                cur.append(f"{X(c):.1f},{Y(row[c]):.1f}")
            elif cur:
                runs.append(cur)
                cur = []
        if cur:
            runs.append(cur)
        for r in runs:
            parts.append(f'<polyline fill="none" stroke="{col}" stroke-width="1.5" '
                         f'points="{" ".join(r)}"/>')
        parts.append(f'<line x1="{ml + pw + 8}" y1="{ly + 4}" x2="{ml + pw + 24}" '
                     f'y2="{ly + 4}" stroke="{col}" stroke-width="3"/>'
                     f'<text x="{ml + pw + 28}" y="{ly + 8}" font-size="11">'
                     f'{html.escape(name)}</text>')
        ly += 15
    parts.append("</svg>")
    return "".join(parts)


def _ref_text(refs, marker, layer, region) -> str:
    r, _ = refs.find(marker, layer, region)
    if r is None:
        return "&ndash;"
    return f"{r['mean']:.3g} &plusmn; {r['sd']:.2g}"


def _layer_table(fr, refs, z_limit: float) -> str:
    sc = fr.scores
    region = sc.keys.get("region")
    head = ("<tr><th class=l>layer</th><th>thickness mean (mm)</th><th>median (mm)</th>"
            "<th>reference mean &plusmn; SD (mm)</th><th>z</th><th>depth (mm)</th>"
            "<th>echo mean (grey)</th><th>stiffness median (kPa)</th>"
            "<th>reference mean &plusmn; SD (kPa)</th><th>z</th></tr>")
    rows = []
    for r in sc.layers:
        name = r["layer"]
        cells = [f'<td class=l>{_swatch(name)}{html.escape(name)}</td>',
                 f"<td>{_fmt(r.get('thickness_mean_mm'))}</td>",
                 f"<td>{_fmt(r.get('thickness_median_mm'))}</td>",
                 f"<td>{_ref_text(refs, 'thickness_mean_mm', name, region)}</td>",
                 _z(r.get("thickness_mean_mm_z"), z_limit),
                 f"<td>{_fmt(r.get('depth_mm'))}</td>",
                 f"<td>{_fmt(r.get('echo_mean_grey'))}</td>",
                 f"<td>{_fmt(r.get('stiffness_median_kpa'))}</td>",
                 f"<td>{_ref_text(refs, 'stiffness_median_kpa', name, region)}</td>",
                 _z(r.get("stiffness_median_kpa_z"), z_limit)]
        rows.append(f'<tr class="layer-row" data-layer="{html.escape(name)}">'
                    + "".join(cells) + "</tr>")
        # the layer's notes on a full-width row of their own, under its figures
        notes = [x for x in (r.get("thickness_reason"), r.get("reference_reason")) if x]
        if notes:
            rows.append(f'<tr class="layer-notes"><td class=l colspan={len(cells)}>'
                        f"{html.escape(_marker_words('; '.join(notes)))}</td></tr>")
    # a narrow window scrolls the table rather than cutting its notes off
    return f"<div class=wide><table>{head}{''.join(rows)}</table></div>"


def _frame_section(fr, overlay_png: bytes, refs, z_limit: float) -> str:
    sc, seg, frame = fr.scores, fr.segmentation, fr.frame
    f = sc.frame
    profile = html.escape(_profile_words(str(f.get("aging_profile") or "")))
    uri = "data:image/png;base64," + base64.b64encode(overlay_png).decode("ascii")
    ay, ax = frame.spacing_mm
    qc_ok = bool(f.get("qc_pass"))
    flags = [("QC", f.get("qc_reason")), ("QC note", f.get("qc_notes")),
             ("calibration", f.get("qc_calibration"))]
    # the model's own uncertainty flag is already a QC fail reason
    flags += [("segmentation", x) for x in seg.flags if x != seg.uncertain]
    items = "".join(f"<li><b>{html.escape(k)}:</b> {html.escape(str(v))}</li>"
                    for k, v in flags if v)
    skin = f.get("skin_thickness_mean_mm")
    th = sc.arrays.get("thickness_normal_mm")
    plot = thickness_svg(th, sc.arrays["profile"], ax) if th is not None else \
        "<p>no thickness (no spacing)</p>"
    rows, cols = frame.shape
    elasto = (f"{frame.elasto_kind}" if frame.elasto is not None else "none")
    return f"""
<section class="frame" id="frame-{fr.frame_index}">
<h2>Frame {fr.frame_index}</h2>
<table class="meta">
<tr><td>size</td><td>{rows} &times; {cols} px, {rows * ay:.2f} mm deep &times; {cols * ax:.2f} mm
wide (spacing {ay:.4g} &times; {ax:.4g} mm, {html.escape(str(frame.meta.calibration))})</td></tr>
<tr><td>layer profile</td><td>{html.escape(seg.profile.region)}: {html.escape(', '.join(seg.profile.layers))}</td></tr>
<tr><td>elastography</td><td>{html.escape(elasto)}</td></tr>
<tr><td>QC</td><td class="{'ok' if qc_ok else 'bad'}">{'pass' if qc_ok else 'FAIL'}</td></tr>
<tr><td>skin thickness (epidermis + dermis)</td><td>{_fmt(skin)} mm (z {_zval(f.get('skin_thickness_mean_mm_z'))})</td></tr>
<tr><td>aging profile</td><td>{profile}</td></tr>
</table>
<img class="overlay" alt="frame {fr.frame_index}: layer outlines on the B-mode" src="{uri}">
<h3>Layers against the reference ranges</h3>
{_layer_table(fr, refs, z_limit)}
<h3>Thickness along the width</h3>
{plot}
<h3>QC flags and why</h3>
<ul class="flags">{items or '<li>none</li>'}</ul>
</section>"""


def exam_report_html(exam, overlays: dict, *, model: str, version: str,
                     failures: list | None = None, z_limit: float | None = None) -> str:
    """The self-contained HTML report of one exam.

    Parameters
    ----------
    exam : layerseg.infer.ExamResult
        The exam's frames (scored ones are shown).
    overlays : dict of int -> bytes
        PNG bytes of each scored frame's overlay, by frame index (embedded as data URIs).
    model : str
        Model name shown.
    version : str
        layerseg version shown.
    failures : list of dict, optional
        ``{"frame_index", "error"}`` of frames that failed (listed with their reasons).
    z_limit : float, optional
        |z| above which a value is highlighted (default the scoring's `Z_LIMIT`).

    Returns
    -------
    str
        A complete HTML document (UTF-8), deterministic for the same inputs.
    """
    from ..scoring import load_reference_ranges
    from ..scoring.reference import Z_LIMIT
    refs = load_reference_ranges()
    zl = Z_LIMIT if z_limit is None else z_limit
    ok = exam.ok_frames
    secs = "".join(_frame_section(fr, overlays[fr.frame_index], refs, zl) for fr in ok)
    fail = ""
    if failures:
        fail = ("<h2>Frames that failed</h2><ul>" + "".join(
            f"<li>frame {html.escape(str(x.get('frame_index')))}: "
            f"{html.escape(str(x.get('error')))}</li>" for x in failures) + "</ul>")
    n = len([f for f in exam.frames if f.frame_index >= 0])
    legend = " ".join(f"{_swatch(nm)}{html.escape(nm)}" for nm in
                      ("epidermis", "dermis", "fat", "smas", "deep_fat", "muscle", "bone"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>layerseg report: exam {html.escape(exam.key)}</title>
<style>{_CSS}</style></head>
<body>
<h1>Facial ultrasound layer report</h1>
<p class="notice" id="research-notice">{html.escape(RESEARCH_NOTICE)}</p>
<table class="meta">
<tr><td>exam</td><td id="exam-key">{html.escape(exam.key)}</td></tr>
<tr><td>frames</td><td>{len(ok)} of {n} scored</td></tr>
<tr><td>model</td><td id="model">{html.escape(model)}</td></tr>
<tr><td>software</td><td id="version">layerseg {html.escape(version)}</td></tr>
<tr><td>reference ranges</td><td>{html.escape(refs.version)}; z = (value &minus; mean) / SD,
|z| &gt; {zl:g} highlighted</td></tr>
<tr><td>layers</td><td>{legend}</td></tr>
</table>
{fail}
{secs}
<p class="notice">{html.escape(RESEARCH_NOTICE)}</p>
</body></html>
"""
