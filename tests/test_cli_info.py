"""`layerseg info`: reads the bundled samples and prints each one's calibration."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pydicom
import pytest

from layerseg.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def _expected_spacing(path: Path) -> tuple[float, float, str]:
    """The calibration each sample states, read from its own header / sidecar."""
    if path.suffix == ".dcm":
        r = pydicom.dcmread(path, stop_before_pixels=True).SequenceOfUltrasoundRegions[0]
        assert r.PhysicalUnitsYDirection == 3 and r.PhysicalUnitsXDirection == 3  # cm
        return float(r.PhysicalDeltaY) * 10, float(r.PhysicalDeltaX) * 10, "dicom_region"
    side = json.loads(path.with_suffix(".json").read_text())
    return float(side["spacing_mm"][0]), float(side["spacing_mm"][1]), "sidecar"


def test_info_prints_each_sample_calibration(capsys):
    files = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".dcm", ".png"))
    assert len(files) >= 3
    assert sum(p.stat().st_size for p in SAMPLES.iterdir()) < 300_000
    rc = main(["info", str(SAMPLES)])
    out = capsys.readouterr().out
    assert rc == 0, out
    for p in files:
        ay, ax, prov = _expected_spacing(p)
        block = out.split(f"{p}:", 1)
        assert len(block) == 2, f"{p.name} missing from:\n{out}"
        m = re.search(r"spacing ([\d.]+) x ([\d.]+) mm \((\w+)\)", block[1])
        assert m, block[1]
        assert float(m.group(1)) == pytest.approx(ay, rel=1e-3)
        assert float(m.group(2)) == pytest.approx(ax, rel=1e-3)
        assert m.group(3) == prov


def test_info_cine_frame_count(capsys):
    p = SAMPLES / "us_cine_jpeg.dcm"
    n = int(pydicom.dcmread(p, stop_before_pixels=True).NumberOfFrames)
    assert main(["info", str(p)]) == 0
    assert f"{p}: {n} frame(s)" in capsys.readouterr().out


def test_info_reports_failures_and_exits_nonzero(tmp_path, capsys):
    bad = tmp_path / "junk.dcm"
    bad.write_text("not an image")
    rc = main(["info", str(bad), str(SAMPLES / "us_bmode_regions.dcm")])
    cap = capsys.readouterr()
    assert rc == 1
    assert "FAILED" in cap.err and "junk.dcm" in cap.err
    assert "us_bmode_regions.dcm: 1 frame(s)" in cap.out  # one bad input does not stop the rest


def test_info_user_spacing(capsys, tmp_path):
    assert main(["info", "--spacing", "0.01", "0.02", str(SAMPLES / "us_bmode_regions.dcm")]) == 0
    assert "spacing 0.01 x 0.02 mm (user)" in capsys.readouterr().out


# ---------------------------------------------------------------------------- elastography options
def _exam(tmp_path, name, kind="swe_kpa", layout="side_by_side", private=True):
    """A tiny simulated exam: B-mode beside a smooth elastography map (NaN over the top rows)."""
    import numpy as np

    from layerseg.frame import Frame
    from layerseg.simulate.dicom_export import default_exam_bar, write_exam_dicom

    r = np.random.default_rng(1)
    vmax = default_exam_bar(kind).vmax
    yy, xx = np.mgrid[0:40, 0:32] / 40.0
    e = vmax * (0.1 + 0.8 * (0.6 * yy + 0.4 * xx) / 1.4)
    e[:4] = np.nan
    f = Frame(np.clip(r.normal(90, 30, (40, 32)), 0, 255), (0.03, 0.05), elasto=e,
              elasto_kind=kind)
    p = write_exam_dicom(tmp_path / name, [f], patient_name="SIM^CLI", patient_id="SIMCLI",
                         layout=layout)
    if not private:
        ds = pydicom.dcmread(p)
        for tag in list(ds.group_dataset(0x0011).keys()):
            del ds[tag]
        ds.save_as(p)
    return p, f


def _valid_px(out: str, kind: str, source: str) -> int:
    m = re.search(rf"elastography {kind} \((\d+) valid px, colour bar from {source}\)", out)
    assert m, out
    return int(m.group(1))


def test_info_elastography_from_the_file(tmp_path, capsys):
    import numpy as np

    from layerseg.io import read

    for kind in ("swe_kpa", "strain"):
        p, truth = _exam(tmp_path, f"{kind}.dcm", kind=kind)
        assert main(["info", str(p)]) == 0
        out = capsys.readouterr().out
        n = _valid_px(out, kind, "private_block")
        assert n == int(read(p)[0].elasto_valid.sum())
        assert 0.8 * np.isfinite(truth.elasto).sum() < n <= np.isfinite(truth.elasto).sum()
        assert "SIMCLI" not in out and "SIM^CLI" not in out


def test_info_colour_bar_lut_and_colour_options(tmp_path, capsys):
    from layerseg.io.colour import _write_lut_csv
    from layerseg.simulate.dicom_export import default_exam_bar

    p, truth = _exam(tmp_path, "plain.dcm", private=False)      # kPa: no standard unit code
    assert main(["info", str(p)]) == 0
    out = capsys.readouterr().out
    assert "elastography not decoded (" in out and "PhysicalUnitsYDirection 0" in out
    lut = tmp_path / "bar.csv"
    _write_lut_csv(lut, default_exam_bar("swe_kpa"))
    png = SAMPLES / "bmode_capture.png"
    args = ["info", "--colour-bar", str(lut), "--colour", "refuse", str(p), str(png)]
    assert main(args) == 0                                     # the PNG reader takes no bar
    out = capsys.readouterr().out
    assert f"{png}: 1 frame(s)" in out
    assert _valid_px(out, "swe_kpa", "caller") > 0
    assert main(["info", "--colour-bar", str(lut), "--elasto-kind", "strain", str(p)]) == 0
    assert _valid_px(capsys.readouterr().out, "strain", "caller") > 0
    # colour over the B-mode and no usable bar: refused unless --colour luminance
    q, _ = _exam(tmp_path, "overlay.dcm", layout="overlay", private=False)
    assert main(["info", str(q)]) == 1
    assert "holds colour" in capsys.readouterr().err
    assert main(["info", "--colour", "luminance", str(q)]) == 0
    assert "elastography not decoded" in capsys.readouterr().out
    assert main(["info", "--colour-bar", str(lut), str(q)]) == 0
    assert _valid_px(capsys.readouterr().out, "swe_kpa", "caller") > 0
    bad = tmp_path / "bad.csv"
    bad.write_text("value,r,g,b\n0,1,2\n")
    assert main(["info", "--colour-bar", str(bad), str(p)]) == 2
    assert "bad.csv" in capsys.readouterr().err
