import numpy as np
import pydicom
import pytest

from layerseg.errors import ConfigError
from layerseg.frame import Frame, FrameMeta
from layerseg.io import read
from layerseg.io.colour import ColourBar, decode_colour
from layerseg.simulate.dicom_export import (MANUFACTURER, PRIVATE_CREATOR, PRIVATE_GROUP,
                                            US_MULTIFRAME_SOP_CLASS, default_exam_bar,
                                            screen_layout, write_exam_dicom)
from layerseg.simulate.elasto import draw_colour_bar, simulate_strain, simulate_swe

SPACING = (0.03, 0.05)
KPA = {"epidermis": 20.0, "dermis": 12.0, "fat": 4.0, "smas": 10.0, "deep_fat": 5.0,
       "muscle": 9.0, "bone": 1000.0}


def _labels(rows=96, cols=80):
    lab = np.zeros((rows, cols), np.int64)
    for top, label in ((6, 1), (10, 2), (40, 3), (60, 4), (64, 6), (88, 7)):
        lab[top:] = label
    return lab


def _frames(n=3, seed=0, kind="swe_kpa"):
    rng = np.random.default_rng(seed)
    lab = _labels()
    out = []
    for _ in range(n):
        if kind == "swe_kpa":
            e, _ = simulate_swe(lab, SPACING, KPA, rng, resolution_mm=0.5, noise_frac=0.15)
        else:
            e, _ = simulate_strain(lab, SPACING, KPA, rng)
        grey = np.clip(40 + 30 * lab + rng.normal(0, 20, lab.shape), 0, 255)
        out.append(Frame(grey, SPACING, elasto=e, elasto_kind=kind,
                         meta=FrameMeta(frequency_mhz=24.0)))
    return out


def _private(ds, elem):
    return ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)[elem].value


@pytest.mark.parametrize("jpeg", [False, True])
def test_header_round_trip(tmp_path, jpeg):
    frames = _frames()
    p = write_exam_dicom(tmp_path / "a" / "exam.dcm", frames, patient_name="SIM^SUBJECT^0001",
                         patient_id="SIM0001", jpeg=jpeg, patient_sex="F", patient_age=47.6)
    ds = pydicom.dcmread(p)
    assert ds.SOPClassUID == US_MULTIFRAME_SOP_CLASS == ds.file_meta.MediaStorageSOPClassUID
    assert ds.Modality == "US" and ds.Manufacturer == MANUFACTURER
    assert str(ds.PatientName) == "SIM^SUBJECT^0001" and ds.PatientID == "SIM0001"
    assert ds.PatientSex == "F" and ds.PatientAge == "047Y"
    assert int(ds.NumberOfFrames) == 3 and ds.SamplesPerPixel == 3
    lay = screen_layout(96, 80)
    assert (ds.Rows, ds.Columns) == lay["screen"]
    if jpeg:
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGBaseline8Bit
        assert ds.PhotometricInterpretation == "YBR_FULL_422"
    else:
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.PhotometricInterpretation == "RGB"
    regs = ds.SequenceOfUltrasoundRegions
    assert [r.RegionDataType for r in regs] == [1, 1, 14]
    for r, key in zip(regs[:2], ("bmode", "elasto")):
        r0, c0, r1, c1 = lay[key]
        assert r.RegionSpatialFormat == 1
        assert (r.RegionLocationMinX0, r.RegionLocationMinY0) == (c0, r0)
        assert (r.RegionLocationMaxX1, r.RegionLocationMaxY1) == (c1 - 1, r1 - 1)  # inclusive
        assert r.PhysicalUnitsXDirection == 3 and r.PhysicalUnitsYDirection == 3
        assert r.PhysicalDeltaY * 10 == pytest.approx(SPACING[0])
        assert r.PhysicalDeltaX * 10 == pytest.approx(SPACING[1])
        assert r.TransducerFrequency == 24000
    # the bar's value scale in the bar region and exactly in the private block
    b = regs[2]
    ref = default_exam_bar("swe_kpa")
    assert b.ReferencePixelPhysicalValueY == pytest.approx(ref.vmax)
    rows_bar = b.RegionLocationMaxY1 - b.RegionLocationMinY0 + 1
    assert (b.ReferencePixelPhysicalValueY + b.PhysicalDeltaY * (rows_bar - 1)
            == pytest.approx(ref.vmin, abs=1e-9))
    assert _private(ds, 0x01) == "swe_kpa"
    assert list(_private(ds, 0x03)) == [ref.vmin, ref.vmax]
    assert tuple(_private(ds, 0x04)) == lay["bar"]
    bar = ColourBar(np.frombuffer(_private(ds, 0x06), np.uint8).reshape(-1, 3),
                    _private(ds, 0x05))
    np.testing.assert_allclose(bar.values, ref.values)
    assert np.abs(bar.colours - ref.colours).max() <= 0.5
    # pixels: B-mode view grey and equal to the frame; overlay decodes back through the bar
    px = ds.pixel_array
    assert px.shape == (3, ds.Rows, ds.Columns, 3)
    r0, c0, r1, c1 = lay["bmode"]
    tol = 6 if jpeg else 0
    for k in range(3):
        view = px[k, r0:r1, c0:c1].astype(float)
        assert np.abs(view - np.rint(frames[k].bmode)[..., None]).mean() <= max(tol / 2, 0)
    # the bar drawn in its region, its end values printed in white beside it
    r0, c0, r1, c1 = lay["bar"]
    np.testing.assert_allclose(px[0, r0:r1, c0:c1], px[2, r0:r1, c0:c1], atol=tol)
    assert (px[0, :, c1:].max(axis=-1) > 200).sum() > 10
    if not jpeg:
        np.testing.assert_array_equal(px[0, r0:r1, c0:c1], draw_colour_bar(r1 - r0, c1 - c0,
                                                                           ref))
        r0, c0, r1, c1 = lay["elasto"]
        vals, ok = decode_colour(px[0, r0:r1, c0:c1], bar, bleed_px=0)
        truth = frames[0].elasto
        np.testing.assert_array_equal(ok, np.isfinite(truth))
        assert np.abs(vals[ok] - truth[ok]).max() <= bar.step


def test_same_inputs_same_bytes_and_uids(tmp_path):
    a = write_exam_dicom(tmp_path / "x.dcm", _frames(), patient_name="SIM^A", patient_id="S1")
    b = write_exam_dicom(tmp_path / "y" / "x.dcm", _frames(), patient_name="SIM^A",
                         patient_id="S1")
    assert a.read_bytes() == b.read_bytes()
    c = write_exam_dicom(tmp_path / "z.dcm", _frames(), patient_name="SIM^A", patient_id="S1",
                         study_uid="1.2.3.4")
    dc, da = pydicom.dcmread(c), pydicom.dcmread(a)
    assert dc.StudyInstanceUID == "1.2.3.4" and dc.SOPInstanceUID != da.SOPInstanceUID


def test_overlay_layout_and_bmode_only(tmp_path):
    p = write_exam_dicom(tmp_path / "o.dcm", _frames(1), patient_name="SIM^B", patient_id="S2",
                         layout="overlay")
    ds = pydicom.dcmread(p)
    assert [r.RegionDataType for r in ds.SequenceOfUltrasoundRegions] == [1, 14]
    assert _private(ds, 0x08) == "overlay"
    plain = [Frame(f.bmode, f.spacing_mm) for f in _frames(2)]
    p = write_exam_dicom(tmp_path / "b.dcm", plain, patient_name="SIM^B", patient_id="S2",
                         frequency_mhz=30)
    ds = pydicom.dcmread(p)
    assert (ds.Rows, ds.Columns) == (96, 80)
    assert len(ds.SequenceOfUltrasoundRegions) == 1
    assert ds.SequenceOfUltrasoundRegions[0].TransducerFrequency == 30000
    px = ds.pixel_array
    assert (px[..., 0] == px[..., 1]).all() and (px[..., 1] == px[..., 2]).all()


def test_bad_input_refused(tmp_path):
    f = _frames(2)
    other = Frame(np.zeros((50, 50)), (0.02, 0.05))
    with pytest.raises(ConfigError):
        write_exam_dicom(tmp_path / "e.dcm", [f[0], other], patient_name="S", patient_id="S")
    with pytest.raises(ConfigError):
        write_exam_dicom(tmp_path / "e.dcm", [], patient_name="S", patient_id="S")
    with pytest.raises(ConfigError):
        write_exam_dicom(tmp_path / "e.dcm", [Frame(np.zeros((8, 8)))], patient_name="S",
                         patient_id="S")
    with pytest.raises(ConfigError):
        write_exam_dicom(tmp_path / "e.dcm", f, patient_name="S", patient_id="S",
                         layout="stacked")
    with pytest.raises(ConfigError):
        write_exam_dicom(tmp_path / "e.dcm", [f[0], _frames(1, kind="strain")[0]],
                         patient_name="S", patient_id="S")


@pytest.mark.parametrize("jpeg,kind,layout", [(False, "swe_kpa", "side_by_side"),
                                              (True, "swe_kpa", "side_by_side"),
                                              (False, "strain", "side_by_side"),
                                              (False, "swe_kpa", "overlay")])
def test_reads_back_through_layerseg_read(tmp_path, jpeg, kind, layout):
    frames = _frames(2, seed=3, kind=kind)
    p = write_exam_dicom(tmp_path / "r.dcm", frames, patient_name="SIM^READ^BACK",
                         patient_id="SIMREAD42", jpeg=jpeg, layout=layout)
    ds = pydicom.dcmread(p)
    vmin, vmax = (float(v) for v in _private(ds, 0x03))
    series = read(p, colour_bar={"vmin": vmin, "vmax": vmax}, elasto_kind=kind)
    assert len(series) == 2
    for k, f in enumerate(series):
        assert f.spacing_mm == pytest.approx(SPACING)  # PhysicalDelta cm * 10
        assert f.shape == frames[k].shape
        assert f.elasto_kind == kind
        # no synthetic identifier leaks into what the reader returns
        text = repr(f.meta)
        assert "SIMREAD42" not in text and "READ^BACK" not in text
        truth, got = frames[k].elasto, f.elasto
        both = np.isfinite(truth) & np.isfinite(got)
        assert both.sum() > 0.8 * np.isfinite(truth).sum()
        assert not (np.isfinite(got) & ~np.isfinite(truth)).any()
        err = np.abs(got[both] - truth[both])
        bar_region = ds.SequenceOfUltrasoundRegions[-1]
        row_step = (vmax - vmin) / (bar_region.RegionLocationMaxY1 - bar_region.RegionLocationMinY0)
        if jpeg:
            assert np.median(err) <= 2 * row_step and np.quantile(err, 0.95) <= 0.06 * vmax
        else:
            assert err.max() <= 2 * row_step
        if layout == "overlay":
            continue  # the B-mode lies under the colour there
        d = np.abs(f.bmode - np.rint(frames[k].bmode))
        assert (d.mean() < 3 and d.max() < 20) if jpeg else d.max() == 0
