"""The per-exam HTML report, in Python and in a real headless browser (skipped without
``chromium``)."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image

from layerseg.infer import thickness_svg

_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _report(inputs, tmp_path, kit):
    out = tmp_path / "out"
    assert kit.run_cli(inputs / "exam_a.dcm", "--out", out, "--region", "jaw",
                       "--no-progress") == 0
    (ex,) = list((out / "exams").iterdir())
    return ex / "report.html"


def test_report_content(inputs, tmp_path, kit):
    report = _report(inputs, tmp_path, kit)
    text = report.read_text()
    assert "Research use only, not a medical device" in text
    from layerseg.segmentation import model_info
    sha = model_info("default", runtime=False)["checkpoint_sha256"]
    assert f'<td id="model">default (weights sha256 {sha[:12]})</td>' in text
    assert "layerseg 0.1.0" in text
    assert "<svg" in text and text.count("<polyline") >= 4        # thickness plots
    assert "QC flags and why" in text
    assert "10.7 &plusmn; 1.8" in text  # jaw muscle stiffness reference range, kPa
    uris = _URI.findall(text)
    assert len(uris) == 2  # one overlay per frame
    for u in uris:
        img = Image.open(io.BytesIO(base64.b64decode(u)))
        img.load()
        assert img.mode == "RGB" and img.size[0] > 400
    # a layer's notes sit on a full-width row under its figures (as a last column they ran
    # off the page of a narrow window), and the table scrolls rather than being cut
    table = text[text.index("Layers against the reference ranges"):]
    table = table[:table.index("</table>")]
    n_cols = len(re.findall(r"<th[ >]", table[:table.index("</tr>")]))
    notes = re.findall(r'<tr class="layer-notes"><td class=l colspan=(\d+)>([^<]+)</td>', table)
    assert notes and all(int(c) == n_cols for c, _ in notes)
    assert any("no published reference range" in t for _, t in notes)
    assert not any(m in t for _, t in notes                          # marker names in words
                   for m in ("thickness_mean_mm", "thickness_sd_mm", "stiffness_median_kpa"))
    assert ">notes</th>" not in table and '<div class=wide><table>' in text
    assert "src=\"http" not in text and "href=" not in text  # self-contained


def test_aging_profile_in_words():
    from layerseg.infer.report import _profile_words
    text = ("skin skin_thickness_mean_mm below (z=-3.50); dermis thickness_mean_mm above "
            "(z=+2.10); muscle stiffness_median_kpa below (z=-2.00)")
    assert _profile_words(text) == ("skin thickness below range (z=-3.50); dermis thickness "
                                    "above range (z=+2.10); muscle stiffness below range "
                                    "(z=-2.00)")
    assert _profile_words("all within range") == "all within range"


def test_thickness_svg_draws_gaps_where_absent():
    t = np.full((2, 10), np.nan)
    t[0] = 1.0
    t[1, :3] = 2.0
    t[1, 6:] = 2.0
    svg = thickness_svg(t, ["dermis", "fat"], 0.05)
    assert svg.count("<polyline") == 3 and ">dermis<" in svg and ">fat<" in svg


def test_report_in_headless_browser(inputs, tmp_path, kit, browser):
    report = _report(inputs, tmp_path, kit)
    shot = tmp_path / "shot.png"
    dom = browser(report, shot, (1200, 2000))
    # the DOM as the browser built it: table rows of layers, the notice, embedded images
    rows = re.findall(r'<tr class="layer-row" data-layer="(\w+)"', dom)
    assert len(rows) >= 8 and {"epidermis", "dermis", "fat", "smas"} <= set(rows)
    assert "Research use only, not a medical device" in dom
    uris = _URI.findall(dom)
    assert len(uris) == 2
    for u in uris:
        Image.open(io.BytesIO(base64.b64decode(u))).load()
    # the screenshot is not blank: the page's text, tables and images show
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert img.shape[:2] == (2000, 1200)
    assert img.std() > 20 and (img.mean(axis=2) < 60).mean() > 0.02
