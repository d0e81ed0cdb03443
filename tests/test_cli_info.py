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
