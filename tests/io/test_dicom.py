"""Tests of layerseg.io.dicom: DICOM files the tests write with pydicom, and pydicom's own
ultrasound example files."""

from __future__ import annotations

import dataclasses
import io as _io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

from layerseg.errors import (CalibrationError, ColourBarError, CorruptFileError,
                             InvalidImageError, ReadError, UnsupportedFormatError,
                             WrongModalityError)
from layerseg.io import deidentify_key, read, read_dicom
from layerseg.io.colour import ColourBar, default_colour_bar, encode_colour

US_SINGLE = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTI = "1.2.840.10008.5.1.4.1.1.3.1"
PATIENT_ID, PATIENT_NAME = "PID-998877", "Doe^Jane"


# ---------------------------------------------------------------------------- writers
def region(x0, y0, x1, y1, dy_cm, dx_cm, *, data_type=1, spatial=1, ux=3, uy=3, freq_khz=None,
           ref=None):
    it = Dataset()
    it.RegionSpatialFormat = spatial
    it.RegionDataType = data_type
    it.RegionFlags = 0
    it.RegionLocationMinX0, it.RegionLocationMinY0 = x0, y0
    it.RegionLocationMaxX1, it.RegionLocationMaxY1 = x1, y1
    it.PhysicalUnitsXDirection, it.PhysicalUnitsYDirection = ux, uy
    it.PhysicalDeltaX, it.PhysicalDeltaY = dx_cm, dy_cm
    if ref is not None:
        it.ReferencePixelX0, it.ReferencePixelY0 = ref[0], ref[1]
        it.ReferencePixelPhysicalValueX, it.ReferencePixelPhysicalValueY = ref[2], ref[3]
    if freq_khz is not None:
        it.TransducerFrequency = freq_khz
    return it


def write_dicom(path, pixels, *, photometric=None, regions=(), modality="US", jpeg=False,
                bits_stored=None, pixel_spacing=None, extra=None, pixels_tag="PixelData"):
    """Write `pixels` (frames, rows, cols[, 3]) or (rows, cols[, 3]) as a DICOM file."""
    a = np.asarray(pixels)
    multi = a.ndim == 4 or (a.ndim == 3 and a.shape[-1] != 3)
    frames = a if multi else a[None]
    colour = frames.ndim == 4
    ds = Dataset()
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = US_MULTI if multi else US_SINGLE
    fm.MediaStorageSOPInstanceUID = generate_uid()
    fm.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds.file_meta = fm
    ds.SOPClassUID, ds.SOPInstanceUID = fm.MediaStorageSOPClassUID, fm.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4.5.6", generate_uid()
    ds.Manufacturer, ds.ManufacturerModelName = "Acme Ultrasound", "HF-24"
    ds.Rows, ds.Columns = frames.shape[1], frames.shape[2]
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric or (
        ("YBR_FULL_422" if jpeg else "RGB") if colour else "MONOCHROME2")
    if colour:
        ds.PlanarConfiguration = 0
    if multi:
        ds.NumberOfFrames = frames.shape[0]
    if regions:
        ds.SequenceOfUltrasoundRegions = Sequence(list(regions))
    if pixel_spacing is not None:
        ds.PixelSpacing = list(pixel_spacing)
    if pixels_tag == "FloatPixelData":
        ds.BitsAllocated = 32
        ds.FloatPixelData = frames.astype(np.float32).tobytes()
    else:
        bits = 16 if frames.dtype.itemsize == 2 else 8
        ds.BitsAllocated = bits
        ds.BitsStored = bits_stored or bits
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = 0
        if jpeg:
            encoded = []
            for f in frames:
                buf = _io.BytesIO()
                Image.fromarray(f.astype(np.uint8)).save(buf, format="JPEG", quality=95,
                                                          subsampling=1)
                encoded.append(buf.getvalue())
            ds.PixelData = encapsulate(encoded)
            ds["PixelData"].VR = "OB"
            ds.LossyImageCompression = "01"
        else:
            ds.PixelData = frames.astype(np.uint16 if bits == 16 else np.uint8).tobytes()
    for k, v in (extra or {}).items():
        setattr(ds, k, v)
    ds.save_as(path, enforce_file_format=True)
    return Path(path)


def speckle(rng, shape):
    """Layered bands times Rayleigh speckle, uint8 grey."""
    rows = np.arange(shape[0])[:, None]
    bands = 60 + 90 * ((rows // 12) % 2)
    img = bands * rng.rayleigh(0.8, size=shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def grey_rgb(g):
    return np.repeat(np.asarray(g)[..., None], 3, axis=-1)


# ---------------------------------------------------------------------------- spacing + crop
def test_multiframe_rgb_region_spacing_and_crop(tmp_path, rng):
    n, rows, cols = 3, 120, 160
    frames = np.stack([grey_rgb(speckle(rng, (rows, cols))) for _ in range(n)])
    frames[:, :5, :, :] = (255, 0, 0)  # coloured banner outside the tissue region
    frames[:, :, 150:, :] = (0, 200, 0)
    r = region(10, 5, 149, 104, dy_cm=0.0025, dx_cm=0.005, freq_khz=24000)
    p = write_dicom(tmp_path / "us.dcm", frames, regions=[r])
    series = read_dicom(p)
    assert len(series) == n
    for i in (0, 2):
        f = series[i]
        assert f.spacing_mm == pytest.approx((0.025, 0.05))
        assert f.meta.calibration == "dicom_region"
        assert f.shape == (100, 140)
        np.testing.assert_allclose(f.bmode, frames[i, 5:105, 10:150, 0], atol=1e-3)
        assert f.meta.frame_index == i
    assert series[0].meta.frequency_mhz == pytest.approx(24.0)
    assert series[0].meta.device == "Acme Ultrasound HF-24"


def test_frames_are_decoded_lazily(tmp_path, rng, monkeypatch):
    frames = np.stack([speckle(rng, (40, 50)) for _ in range(6)])
    p = write_dicom(tmp_path / "cine.dcm", frames,
                    regions=[region(0, 0, 49, 39, 0.002, 0.004)])
    import pydicom.pixels

    calls = []
    real = pydicom.pixels.pixel_array

    def spy(src, **kw):
        calls.append(kw.get("index"))
        return real(src, **kw)

    monkeypatch.setattr(pydicom.pixels, "pixel_array", spy)
    series = read_dicom(p)
    assert calls == []
    f = series[4]
    assert calls == [4]
    np.testing.assert_array_equal(f.bmode, frames[4])
    sub = read_dicom(p, frames=[5, 1])
    assert len(sub) == 2 and sub[0].meta.frame_index == 5
    np.testing.assert_array_equal(sub[1].bmode, frames[1])


def test_jpeg_baseline_multiframe_decodes(tmp_path, rng):
    g = np.stack([speckle(rng, (64, 80)) for _ in range(4)])
    rgb = np.stack([grey_rgb(x) for x in g])
    r = region(0, 0, 79, 63, 0.0025, 0.0025)
    p = write_dicom(tmp_path / "jpeg_rgb.dcm", rgb, jpeg=True, regions=[r])
    assert pydicom.dcmread(p).file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    s = read_dicom(p)
    assert len(s) == 4
    for i in range(4):
        err = np.abs(s[i].bmode - g[i].astype(np.float32))
        assert err.mean() < 4.0, err.mean()  # JPEG quality 95 of speckle
        assert s[i].spacing_mm == pytest.approx((0.025, 0.025))
    pm = write_dicom(tmp_path / "jpeg_grey.dcm", g, jpeg=True, regions=[r],
                     photometric="MONOCHROME2")
    sg = read_dicom(pm)
    assert np.abs(sg[3].bmode - g[3]).mean() < 4.0


def test_monochrome1_16bit_inverted_and_scaled(tmp_path, rng):
    v = rng.integers(0, 4096, size=(30, 40)).astype(np.uint16)
    p = write_dicom(tmp_path / "m1.dcm", v, photometric="MONOCHROME1", bits_stored=12,
                    regions=[region(0, 0, 39, 29, 0.003, 0.003)])
    f = read_dicom(p)[0]
    np.testing.assert_allclose(f.bmode, (4095 - v.astype(np.float64)) * 255 / 4095, atol=1e-3)
    p2 = write_dicom(tmp_path / "m2.dcm", v, bits_stored=12,
                     regions=[region(0, 0, 39, 29, 0.003, 0.003)])
    np.testing.assert_allclose(read_dicom(p2)[0].bmode, v.astype(np.float64) * 255 / 4095,
                               atol=1e-3)


def test_palette_colour_applies_lut(tmp_path, rng):
    idx = rng.integers(0, 256, size=(30, 40)).astype(np.uint8)
    lut = ((255 - np.arange(256)) * 257).astype(np.uint16)  # inverted grey, 16-bit entries
    extra = {}
    for c in ("Red", "Green", "Blue"):
        extra[f"{c}PaletteColorLookupTableDescriptor"] = [256, 0, 16]
        extra[f"{c}PaletteColorLookupTableData"] = lut.tobytes()
    p = write_dicom(tmp_path / "pal.dcm", idx, photometric="PALETTE COLOR", extra=extra,
                    regions=[region(0, 0, 39, 29, 0.003, 0.003)])
    f = read_dicom(p)[0]
    np.testing.assert_allclose(f.bmode, 255.0 - idx, atol=1e-2)


def test_ybr_full_converted_to_rgb(tmp_path, rng):
    from pydicom.pixels import convert_color_space

    g = speckle(rng, (30, 40))
    ybr = convert_color_space(grey_rgb(g), "RGB", "YBR_FULL")
    p = write_dicom(tmp_path / "ybr.dcm", ybr, photometric="YBR_FULL",
                    regions=[region(0, 0, 39, 29, 0.003, 0.003)])
    np.testing.assert_allclose(read_dicom(p)[0].bmode, g, atol=1.01)


# ---------------------------------------------------------------------------- elastography
def _elasto_scene(rng, colour_shape, colour_dy, colour_dx, bm_dy=0.003, bm_dx=0.003):
    """B-mode region left (80 x 100 px), elastography region right, colour bar at the far right.

    Truth: stiffness linear in physical depth and width. Returns image, regions, truth function."""
    bar = default_colour_bar(0.0, 180.0)
    rows, cols = 90, 240
    img = np.zeros((rows, cols, 3), np.uint8)
    img[0:80, 0:100] = grey_rgb(speckle(rng, (80, 100)))
    cr, cc = colour_shape
    y_mm = np.arange(cr)[:, None] * colour_dy * 10
    x_mm = np.arange(cc)[None, :] * colour_dx * 10

    def truth(y, x):
        return 20.0 + 30.0 * y + 20.0 * x  # 20-150 kPa over the field

    values = truth(y_mm, x_mm)
    img[0:cr, 110:110 + cc] = encode_colour(values, bar)
    img[0:3, 110:110 + cc] = 128  # grey showing through: must come back invalid
    bar_rows = np.linspace(180, 0, 80)
    img[0:80, 225:232] = encode_colour(bar_rows, bar)[:, None, :]
    regs = [region(0, 0, 99, 79, bm_dy, bm_dx),
            region(110, 0, 110 + cc - 1, cr - 1, colour_dy, colour_dx, data_type=2),
            region(225, 0, 231, 79, 0, 0, data_type=14, spatial=0, ux=0, uy=0)]
    return img, regs, truth, bar


def test_side_by_side_elastography_round_trip_same_grid(tmp_path, rng):
    img, regs, truth, bar = _elasto_scene(rng, (80, 100), 0.003, 0.003)
    p = write_dicom(tmp_path / "sbs.dcm", img, regions=regs)
    f = read_dicom(p, colour_bar=bar)[0]
    assert f.shape == (80, 100) and f.elasto.shape == f.shape
    assert f.elasto_kind == "swe_kpa"
    assert not f.elasto_valid[:3].any()  # the grey rows
    ok = f.elasto_valid
    assert ok.mean() > 0.85
    yy, xx = np.meshgrid(np.arange(80) * 0.03, np.arange(100) * 0.03, indexing="ij")
    err = np.abs(f.elasto - truth(yy, xx))[ok]
    assert err.max() <= bar.step + 1e-3
    # the same through the bar drawn in the image (colour-bar region, end values given)
    f2 = read_dicom(p, colour_bar={"vmin": 0.0, "vmax": 180.0})[0]
    ok2 = f2.elasto_valid
    assert ok2.mean() > 0.85
    step2 = 180.0 / 79
    assert np.abs(f2.elasto - truth(yy, xx))[ok2].max() <= step2 + bar.step
    # through a LUT file
    lut = tmp_path / "bar.csv"
    lut.write_text("value,r,g,b\n" + "\n".join(
        f"{float(v)!r},{c[0]:.17g},{c[1]:.17g},{c[2]:.17g}"
        for v, c in zip(bar.values, bar.colours)))
    f3 = read_dicom(p, colour_bar=lut, elasto_kind="strain")[0]
    assert f3.elasto_kind == "strain"
    np.testing.assert_allclose(f3.elasto[ok], f.elasto[ok], atol=1e-4)


def test_side_by_side_registered_when_spacings_differ(tmp_path, rng):
    # colour view at half resolution: 40 x 50 px of 0.006 cm over the same 2.4 x 3.0 mm field
    img, regs, truth, bar = _elasto_scene(rng, (40, 50), 0.006, 0.006)
    p = write_dicom(tmp_path / "sbs2.dcm", img, regions=regs)
    f = read_dicom(p, colour_bar=bar)[0]
    assert f.elasto.shape == (80, 100)
    ok = f.elasto_valid
    assert ok.mean() > 0.8
    yy, xx = np.meshgrid(np.arange(80) * 0.03, np.arange(100) * 0.03, indexing="ij")
    # bilinear resampling of a linear field is exact up to the bar quantisation
    assert np.abs(f.elasto - truth(yy, xx))[ok].max() <= bar.step + 1e-3
    assert not ok[:, 99].any()  # beyond the colour field's last sample: outside, invalid


def test_side_by_side_without_bar_gives_bmode_only(tmp_path, rng):
    img, regs, _, _ = _elasto_scene(rng, (80, 100), 0.003, 0.003)
    p = write_dicom(tmp_path / "sbs.dcm", img, regions=regs)
    f = read_dicom(p)[0]
    assert f.elasto is None and f.shape == (80, 100)
    assert "elasto_ignored" in f.meta.extra


def test_colour_bar_that_does_not_match_is_refused(tmp_path, rng):
    img, regs, _, _ = _elasto_scene(rng, (80, 100), 0.003, 0.003)
    p = write_dicom(tmp_path / "sbs.dcm", img, regions=regs)
    wrong = ColourBar([[0, 0, 0], [40, 40, 40]], [0.0, 1.0])
    with pytest.raises(ColourBarError, match="sbs.dcm"):
        read_dicom(p, colour_bar=wrong)[0]


def test_overlay_in_tissue_region_and_colour_refusal(tmp_path, rng):
    bar = default_colour_bar(0.0, 100.0)
    img = grey_rgb(speckle(rng, (60, 80)))
    img[20:40, 30:60] = encode_colour(np.full((20, 30), 55.0), bar)
    p = write_dicom(tmp_path / "ov.dcm", img, regions=[region(0, 0, 79, 59, 0.003, 0.003)])
    with pytest.raises(InvalidImageError, match="colour"):
        read_dicom(p)[0]
    assert read_dicom(p, colour="luminance")[0].meta.extra["colour_converted"] == "luminance"
    f = read_dicom(p, colour_bar=bar)[0]
    assert f.elasto_valid[22:38, 33:57].all()
    assert not f.elasto_valid[:18].any()
    np.testing.assert_allclose(f.elasto[f.elasto_valid], 55.0, atol=bar.step)


# ---------------------------------------------------------------------------- calibration
def test_region_outside_image_refused_unless_spacing_given(tmp_path, rng):
    g = speckle(rng, (40, 50))
    p = write_dicom(tmp_path / "out.dcm", g, regions=[region(0, 0, 60, 39, 0.003, 0.003)])
    with pytest.raises(CalibrationError, match="outside"):
        read_dicom(p)
    f = read_dicom(p, spacing=(0.03, 0.04))[0]
    assert f.meta.calibration == "user" and f.spacing_mm == (0.03, 0.04)
    assert f.shape == (40, 50)


def test_non_centimetre_units_refused(tmp_path, rng):
    p = write_dicom(tmp_path / "sec.dcm", speckle(rng, (40, 50)),
                    regions=[region(0, 0, 49, 39, 0.003, 0.003, uy=4)])
    with pytest.raises(CalibrationError, match="PhysicalUnitsYDirection = 4 \\(seconds\\)"):
        read_dicom(p)


def test_no_calibration_refused_user_spacing_recorded(tmp_path, rng):
    g = speckle(rng, (40, 50))
    p = write_dicom(tmp_path / "nocal.dcm", g)
    with pytest.raises(CalibrationError, match="no physical calibration"):
        read_dicom(p)
    f = read_dicom(p, spacing=(0.02, 0.05))[0]
    assert f.meta.calibration == "user" and f.spacing_mm == (0.02, 0.05)
    np.testing.assert_array_equal(f.bmode, g)
    # a PixelSpacing that is there but unusable is named with its value, not called missing
    for bad in ([0, 0], [-0.03, 0.03], [0.1]):
        q = write_dicom(tmp_path / "badps.dcm", g, pixel_spacing=bad)
        with pytest.raises(CalibrationError, match=r"PixelSpacing \(0028,0030\) .* is not two "
                                                   r"positive numbers") as e:
            read_dicom(q)
        assert "neither" not in str(e.value)
    # one value alone (pydicom reads it as a number, not a sequence)
    q = write_dicom(tmp_path / "oneps.dcm", g)
    ds = pydicom.dcmread(q)
    ds.PixelSpacing = "0.1"
    ds.save_as(q)
    assert not hasattr(pydicom.dcmread(q).PixelSpacing, "__len__")
    with pytest.raises(CalibrationError, match=r"PixelSpacing \(0028,0030\) \['0.1'\] is not"):
        read_dicom(q)


def test_user_spacing_overrides_region(tmp_path, rng):
    p = write_dicom(tmp_path / "r.dcm", speckle(rng, (40, 50)),
                    regions=[region(5, 5, 44, 34, 0.003, 0.004)])
    f = read_dicom(p, spacing=(0.01, 0.01))[0]
    assert f.spacing_mm == (0.01, 0.01) and f.meta.calibration == "user"
    assert f.shape == (30, 40)
    assert f.meta.extra["header_spacing_mm"] == pytest.approx([0.03, 0.04])


def test_pixel_spacing_fallback(tmp_path, rng):
    p = write_dicom(tmp_path / "ps.dcm", speckle(rng, (40, 50)), pixel_spacing=(0.021, 0.042))
    f = read_dicom(p)[0]
    assert f.spacing_mm == pytest.approx((0.021, 0.042))
    assert f.meta.calibration == "dicom_pixel_spacing"


def test_contradictory_tissue_regions(tmp_path, rng):
    img = np.zeros((40, 100), np.uint8)
    img[:, :45] = speckle(rng, (40, 45))
    img[:, 50:95] = speckle(rng, (40, 45))
    regs = [region(0, 0, 44, 39, 0.003, 0.003), region(50, 0, 94, 39, 0.005, 0.005)]
    p = write_dicom(tmp_path / "two.dcm", img, regions=regs)
    with pytest.raises(CalibrationError, match="contradictory"):
        read_dicom(p)
    f = read_dicom(p, region=1)[0]
    assert f.spacing_mm == pytest.approx((0.05, 0.05))
    np.testing.assert_array_equal(f.bmode, img[:, 50:95])
    same = [region(0, 0, 44, 39, 0.003, 0.003), region(50, 0, 94, 39, 0.003, 0.003)]
    p2 = write_dicom(tmp_path / "dual.dcm", img, regions=same)
    np.testing.assert_array_equal(read_dicom(p2)[0].bmode, img[:, :45])


# ---------------------------------------------------------------------------- metadata
def test_no_patient_identifiers_in_frame(tmp_path, rng):
    p = write_dicom(tmp_path / "id.dcm", speckle(rng, (40, 50)),
                    regions=[region(0, 0, 49, 39, 0.003, 0.003)])
    f = read_dicom(p, salt="s3cret")[0]
    text = repr(dataclasses.asdict(f.meta))
    assert PATIENT_ID not in text and "Doe" not in text and "Jane" not in text
    assert f.meta.subject_key is not None and len(f.meta.subject_key) == 16
    assert f.meta.study_key is not None and f.meta.study_key != f.meta.subject_key
    other = read_dicom(p, salt="other")[0]
    assert other.meta.subject_key != f.meta.subject_key


def test_deidentify_key():
    k = deidentify_key("PID-1", salt="a")
    assert len(k) == 16 and int(k, 16) >= 0
    assert k == deidentify_key("PID-1", salt="a")
    assert k != deidentify_key("PID-2", salt="a") != deidentify_key("PID-1", salt="b")
    assert deidentify_key("", None, salt="a") is None
    assert "PID" not in k


# ---------------------------------------------------------------------------- bad input
def test_truncated_file(tmp_path, rng):
    p = write_dicom(tmp_path / "full.dcm", speckle(rng, (40, 50)),
                    regions=[region(0, 0, 49, 39, 0.003, 0.003)])
    data = p.read_bytes()
    for cut in (len(data) - 500, 200, 400):
        q = tmp_path / f"cut{cut}.dcm"
        q.write_bytes(data[:cut])
        with pytest.raises(CorruptFileError, match=q.name):
            read_dicom(q)[0]


def test_non_dicom_and_missing(tmp_path):
    t = tmp_path / "notes.dcm"
    t.write_text("hello, this is not a DICOM file at all\n" * 10)
    with pytest.raises(UnsupportedFormatError, match="notes.dcm"):
        read_dicom(t)
    with pytest.raises(ReadError, match="not found"):
        read_dicom(tmp_path / "absent.dcm")


def test_other_modality(tmp_path, rng):
    p = write_dicom(tmp_path / "ct.dcm", speckle(rng, (40, 50)), modality="CT")
    with pytest.raises(WrongModalityError, match="'CT'"):
        read_dicom(p)


def test_no_pixel_data(tmp_path):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = US_SINGLE
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.Modality = US_SINGLE, "US"
    p = tmp_path / "nopix.dcm"
    ds.save_as(p, enforce_file_format=True)
    with pytest.raises(WrongModalityError, match="no pixel data"):
        read_dicom(p)


@pytest.mark.parametrize("shape", [(1, 1), (1, 40)])
def test_tiny_image(tmp_path, shape):
    p = write_dicom(tmp_path / "tiny.dcm", np.zeros(shape, np.uint8))
    with pytest.raises(InvalidImageError, match="tiny.dcm.*at least 2 x 2"):
        read_dicom(p, spacing=(0.1, 0.1))


def test_nan_pixels(tmp_path):
    a = np.ones((20, 30), np.float32)
    a[3, 4] = np.nan
    p = write_dicom(tmp_path / "nan.dcm", a, pixels_tag="FloatPixelData")
    with pytest.raises(InvalidImageError, match="nan.dcm.*NaN"):
        read_dicom(p, spacing=(0.1, 0.1))[0]


def test_bad_user_spacing(tmp_path, rng):
    p = write_dicom(tmp_path / "s.dcm", speckle(rng, (20, 30)))
    with pytest.raises(CalibrationError, match="s.dcm"):
        read_dicom(p, spacing=(0.0, 0.1))


# ---------------------------------------------------------------------------- pydicom examples
def _testdata(name):
    from pydicom.data import get_testdata_file

    try:
        path = get_testdata_file(name, download=False)
    except Exception:  # noqa: BLE001 - any lookup failure means the file is not installed
        path = None
    if path is None or not Path(path).is_file():
        pytest.skip(f"pydicom test file {name} is not installed")
    return Path(path)


def _header(path):
    return pydicom.dcmread(path, stop_before_pixels=True)


def test_example_philips_cx50_palette_refused_region_outside_image():
    p = _testdata("examples_palette.dcm")
    h = _header(p)
    assert h.PhotometricInterpretation == "PALETTE COLOR"
    tissue = [r for r in h.SequenceOfUltrasoundRegions
              if r.RegionSpatialFormat == 1 and r.RegionDataType == 1]
    assert len(tissue) == 1
    r = tissue[0]
    # the header's tissue region reaches beyond the stored image: its calibration is unusable
    assert r.RegionLocationMaxY1 >= h.Rows
    with pytest.raises(CalibrationError, match=f"rows {r.RegionLocationMinY0}-"
                                               f"{r.RegionLocationMaxY1}.*outside the "
                                               f"{h.Rows} x {h.Columns}"):
        read(p)
    # with the caller's spacing it reads; the screen holds colour graphics
    with pytest.raises(InvalidImageError, match="colour"):
        read(p, spacing=(0.2, 0.2))[0]
    f = read(p, spacing=(0.2, 0.2), colour="luminance")[0]
    assert f.shape == (h.Rows, h.Columns) and f.meta.calibration == "user"
    assert f.meta.device == f"{h.Manufacturer} {h.ManufacturerModelName}"
    assert f.bmode.max() > 200  # the LUT's 16-bit entries scaled to 0-255


def test_example_sonosite_jpeg_cine_refused_region_outside_image():
    p = _testdata("examples_ybr_color.dcm")
    h = _header(p)
    assert h.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert h.PhotometricInterpretation == "YBR_FULL_422"
    r = h.SequenceOfUltrasoundRegions[0]
    assert r.RegionLocationMaxX1 >= h.Columns  # exported at 640 x 480, stored at 320 x 240
    with pytest.raises(CalibrationError, match="outside the 240 x 320"):
        read(p)
    s = read(p, spacing=(0.5, 0.5), colour="luminance")
    assert len(s) == int(h.NumberOfFrames) == 30
    from pydicom.pixels import pixel_array

    ref = pixel_array(p, index=29).astype(np.float32).mean(axis=-1)
    f = s[29]
    assert f.shape == (240, 320)
    assert np.median(np.abs(f.bmode - ref)) < 1.0


@pytest.mark.parametrize("name", ["examples_rgb_color.dcm", "examples_jpeg2k.dcm",
                                  "ExplVR_BigEnd.dcm"])
def test_example_ge_logiq_without_calibration_refused(name):
    p = _testdata(name)
    h = _header(p)
    assert h.Modality == "US" and "LOGIQ" in h.ManufacturerModelName
    assert "SequenceOfUltrasoundRegions" not in h and "PixelSpacing" not in h
    with pytest.raises(CalibrationError, match="no physical calibration"):
        read(p)
    # readable with the caller's spacing; the colour-flow screens are colour, not grey B-mode
    with pytest.raises(InvalidImageError, match="holds colour"):
        read(p, spacing=(0.1, 0.1))[0]
    f = read(p, spacing=(0.1, 0.1), colour="luminance")[0]
    assert f.shape == (h.Rows, h.Columns)
    assert f.meta.calibration == "user"
    from pydicom.pixels import pixel_array

    rgb = pixel_array(p).astype(np.float32)
    grey = rgb.max(-1) - rgb.min(-1) < 1
    np.testing.assert_allclose(f.bmode[grey], rgb[..., 0][grey], atol=1e-3)


def test_jpeg2000_lossless_12bit_multiframe(tmp_path, rng):
    from pydicom.uid import JPEG2000Lossless

    v = rng.integers(0, 4096, size=(2, 64, 80)).astype(np.uint16)
    p = write_dicom(tmp_path / "raw.dcm", v, bits_stored=12,
                    regions=[region(0, 0, 79, 63, 0.0025, 0.005)])
    ds = pydicom.dcmread(p)
    try:
        ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    except RuntimeError as e:  # pragma: no cover - encoder plugin missing
        pytest.skip(f"no JPEG 2000 encoder: {e}")
    q = tmp_path / "j2k.dcm"
    ds.save_as(q, enforce_file_format=True)
    s = read_dicom(q)
    assert len(s) == 2 and s[1].meta.extra["transfer_syntax"].startswith("JPEG 2000")
    np.testing.assert_allclose(s[1].bmode, v[1].astype(np.float64) * 255 / 4095, atol=1e-3)
    assert s[1].spacing_mm == pytest.approx((0.025, 0.05))


def test_second_tissue_region_in_colour_is_the_elastography(tmp_path, rng):
    # some scanners label both views of a side-by-side layout as tissue: the grey one is B-mode
    img, regs, truth, bar = _elasto_scene(rng, (80, 100), 0.003, 0.003)
    regs[1].RegionDataType = 1
    regs = [regs[1], regs[0], regs[2]]  # colour view listed first
    p = write_dicom(tmp_path / "sbs_tt.dcm", img, regions=regs)
    f = read_dicom(p, colour_bar=bar)[0]
    np.testing.assert_allclose(f.bmode, img[0:80, 0:100, 0], atol=1e-3)
    assert f.meta.extra["elasto_layout"] == "side_by_side"
    yy, xx = np.meshgrid(np.arange(80) * 0.03, np.arange(100) * 0.03, indexing="ij")
    ok = f.elasto_valid
    assert ok.mean() > 0.85
    assert np.abs(f.elasto - truth(yy, xx))[ok].max() <= bar.step + 1e-3


def test_frames_out_of_range(tmp_path, rng):
    p = write_dicom(tmp_path / "c.dcm", np.stack([speckle(rng, (20, 30))] * 3),
                    pixel_spacing=(0.1, 0.1))
    with pytest.raises(IndexError, match="c.dcm"):
        read_dicom(p, frames=[0, 3])
    assert len(read_dicom(p, frames=slice(1, None))) == 2


def test_truncated_or_damaged_jpeg_cine(tmp_path, rng):
    g = np.stack([speckle(rng, (40, 48)) for _ in range(3)])
    p = write_dicom(tmp_path / "cine.dcm", g, jpeg=True, photometric="MONOCHROME2",
                    regions=[region(0, 0, 47, 39, 0.003, 0.003)])
    data = p.read_bytes()
    q = tmp_path / "cut.dcm"
    q.write_bytes(data[: len(data) - 700])
    with pytest.raises(CorruptFileError, match="cut.dcm.*truncated"):
        read_dicom(q)
    # damage the last frame's JPEG stream: its start-of-image marker
    last = data.rfind(b"\xff\xd8\xff")
    bad = bytearray(data)
    bad[last:last + 4] = b"\x00\x00\x00\x00"
    r = tmp_path / "damaged.dcm"
    r.write_bytes(bytes(bad))
    s = read_dicom(r)
    np.testing.assert_allclose(s[0].bmode, g[0], atol=40)  # intact frames still decode
    with pytest.raises(CorruptFileError, match="damaged.dcm.*frame 2"):
        s[2]


def test_undecodable_transfer_syntax(tmp_path, rng):
    p = write_dicom(tmp_path / "x.dcm", speckle(rng, (20, 30)), pixel_spacing=(0.1, 0.1))
    ds = pydicom.dcmread(p)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.MPEG2MPML  # video: no pixel decoder
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    q = tmp_path / "odd.dcm"
    ds.save_as(q, enforce_file_format=False)
    with pytest.raises(UnsupportedFormatError, match="odd.dcm.*transfer syntax"):
        read_dicom(q)


def test_corrupted_bytes_raise_only_layerseg_errors(tmp_path, rng):
    """Damage a valid file at seeded random places: every failure is a named layerseg error."""
    from layerseg.errors import LayersegError

    p = write_dicom(tmp_path / "ok.dcm", np.stack([speckle(rng, (24, 32))] * 2),
                    regions=[region(0, 0, 31, 23, 0.003, 0.003, freq_khz=24000)])
    data = p.read_bytes()
    fuzz = np.random.default_rng(7)
    for k in range(60):
        bad = bytearray(data)
        pos = fuzz.integers(0, len(data) - 2200, size=3)  # header part, not the pixels
        for q in pos:
            bad[q] = int(fuzz.integers(0, 256))
        f = tmp_path / f"fz{k}.dcm"
        f.write_bytes(bytes(bad))
        try:
            for fr in read_dicom(f):
                assert fr.bmode.shape[0] >= 2
        except LayersegError as e:
            assert f.name in str(e)


def test_signed_16bit_shifted_to_display_range(tmp_path, rng):
    v = rng.integers(-32768, 32768, size=(20, 30)).astype(np.int16)
    p = write_dicom(tmp_path / "s16.dcm", v.view(np.uint16),
                    regions=[region(0, 0, 29, 19, 0.003, 0.003)],
                    extra={"PixelRepresentation": 1})
    f = read_dicom(p)[0]
    np.testing.assert_allclose(f.bmode, (v.astype(np.float64) + 32768) * 255 / 65535, atol=1e-3)


def test_user_spacing_rescales_the_colour_view_too(tmp_path, rng):
    # colour view at half resolution; the caller doubles the scale of both views
    img, regs, truth, bar = _elasto_scene(rng, (40, 50), 0.006, 0.006)
    p = write_dicom(tmp_path / "sbs2.dcm", img, regions=regs)
    f = read_dicom(p, colour_bar=bar, spacing=(0.06, 0.06))[0]
    assert f.meta.calibration == "user"
    ok = f.elasto_valid
    assert ok.mean() > 0.8
    # registration is unchanged in pixels: the header's field, sampled on the B-mode grid
    yy, xx = np.meshgrid(np.arange(80) * 0.03, np.arange(100) * 0.03, indexing="ij")
    assert np.abs(f.elasto - truth(yy, xx))[ok].max() <= bar.step + 1e-3


def test_side_by_side_registered_through_reference_pixels(tmp_path, rng):
    # the colour view's physical x = 0 lies at its column 10 (ReferencePixelX0), the B-mode's at
    # its column 0: colour column c shows x = (c - 10) * dx
    img, regs, truth, bar = _elasto_scene(rng, (80, 100), 0.003, 0.003)
    y_mm = np.arange(80)[:, None] * 0.03
    x_mm = (np.arange(100)[None, :] - 10) * 0.03
    img[0:80, 110:210] = encode_colour(truth(y_mm, np.maximum(x_mm, 0)), bar)
    img[0:3, 110:210] = 128
    for r, ref_x in ((regs[0], 0), (regs[1], 10)):
        r.ReferencePixelX0, r.ReferencePixelY0 = ref_x, 0
        r.ReferencePixelPhysicalValueX = r.ReferencePixelPhysicalValueY = 0.0
    p = write_dicom(tmp_path / "ref.dcm", img, regions=regs)
    f = read_dicom(p, colour_bar=bar)[0]
    ok = f.elasto_valid
    assert not ok[:, 90:].any()  # beyond the colour view's last column
    assert ok[5:, :88].mean() > 0.9
    yy, xx = np.meshgrid(np.arange(80) * 0.03, np.arange(100) * 0.03, indexing="ij")
    assert np.abs(f.elasto - truth(yy, xx))[ok].max() <= bar.step + 1e-3


# ---------------------------------------------------------------------------- elastography found in
# the file itself: the simulator's exact colour-bar record, or a percent-scaled colour-bar region
def _sim_frames(kind, n=2, seed=0, blank_first=False, shape=(48, 40)):
    """Frames with a smooth elastography field (random plane + bumps) inside the bar's range and a
    NaN hole, as the simulator's exporter takes them."""
    from layerseg.frame import Frame, FrameMeta

    r = np.random.default_rng(seed)
    vmax = 40.0 if kind == "swe_kpa" else 0.05
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] / np.array(shape, float)[:, None, None]
    out = []
    for k in range(n):
        a, b, c = r.uniform(0.1, 0.9, 3)
        e = vmax * np.clip(0.05 + 0.9 * (a * yy + (1 - a) * xx) * b + 0.1 * c * np.sin(9 * xx),
                           0.0, 1.0)
        e[:5] = np.nan                                          # no elastography over the gel
        grey = np.clip(r.normal(90, 30, shape), 0, 255)
        out.append(Frame(grey, (0.03, 0.05), elasto=None if (blank_first and k == 0) else e,
                         elasto_kind=kind, meta=FrameMeta(frequency_mhz=24.0)))
    return out


def _drop_private_block(p: Path, q: Path) -> Path:
    from layerseg.io.dicom import SIM_PRIVATE_GROUP

    ds = pydicom.dcmread(p)
    for tag in list(ds.group_dataset(SIM_PRIVATE_GROUP).keys()):
        del ds[tag]
    ds.save_as(q)
    return q


def _check_elasto(series, frames, kind, tol_max, jpeg, source):
    from layerseg.simulate.dicom_export import default_exam_bar

    vmax = default_exam_bar(kind).vmax
    for k, f in enumerate(series):
        truth = frames[k].elasto
        assert f.elasto_kind == kind and f.meta.extra["colour_bar_source"] == source
        got = f.elasto
        assert not (f.elasto_valid & ~np.isfinite(truth)).any()   # nothing decoded off the map
        both = np.isfinite(truth) & f.elasto_valid
        assert both.sum() > 0.8 * np.isfinite(truth).sum()
        err = np.abs(got[both] - truth[both])
        if jpeg:
            assert np.median(err) <= tol_max and np.quantile(err, 0.95) <= 0.06 * vmax
        else:
            assert err.max() <= tol_max


@pytest.mark.parametrize("jpeg,kind,layout", [(False, "swe_kpa", "side_by_side"),
                                              (True, "swe_kpa", "side_by_side"),
                                              (False, "strain", "side_by_side"),
                                              (True, "strain", "side_by_side"),
                                              (False, "swe_kpa", "overlay"),
                                              (True, "strain", "overlay")])
def test_simulated_exam_elastography_without_colour_bar(tmp_path, jpeg, kind, layout):
    """write_exam_dicom's private block gives the exact bar and the kind: no colour_bar needed."""
    from layerseg.simulate.dicom_export import (PRIVATE_CREATOR, PRIVATE_GROUP, default_exam_bar,
                                                write_exam_dicom)
    from layerseg.io.dicom import SIM_PRIVATE_CREATOR, SIM_PRIVATE_GROUP

    assert (SIM_PRIVATE_GROUP, SIM_PRIVATE_CREATOR) == (PRIVATE_GROUP, PRIVATE_CREATOR)
    frames = _sim_frames(kind)
    p = write_exam_dicom(tmp_path / "exam.dcm", frames, patient_name="SIM^A", patient_id="S1",
                         jpeg=jpeg, layout=layout)
    series = read(p)
    assert len(series) == 2
    # the exact bar: quantised to its own step (plus float32 rounding)
    _check_elasto(series, frames, kind, default_exam_bar(kind).step * (1 + 1e-3), jpeg,
                  "private_block")
    # elasto_kind matching the file's is accepted; a contradicting one is refused
    assert read(p, elasto_kind=kind)[0].elasto_kind == kind
    other = "strain" if kind == "swe_kpa" else "swe_kpa"
    with pytest.raises(ColourBarError, match=f"exam.dcm.*elasto_kind='{other}'"):
        read(p, elasto_kind=other)


@pytest.mark.parametrize("jpeg", [False, True])
def test_strain_from_percent_colour_bar_region(tmp_path, jpeg):
    """No private block: a colour-bar region calibrated in percent (a standard unit code) gives
    strain, the bar sampled from the image with the values of its calibration."""
    from layerseg.simulate.dicom_export import write_exam_dicom

    frames = _sim_frames("strain", seed=4)
    p = write_exam_dicom(tmp_path / "exam.dcm", frames, patient_name="SIM^A", patient_id="S1",
                         jpeg=jpeg)
    q = _drop_private_block(p, tmp_path / "plain.dcm")
    bar_region = pydicom.dcmread(q).SequenceOfUltrasoundRegions[-1]
    assert bar_region.RegionDataType == 14 and bar_region.PhysicalUnitsYDirection == 1
    rows = bar_region.RegionLocationMaxY1 - bar_region.RegionLocationMinY0 + 1
    top = bar_region.ReferencePixelPhysicalValueY / 100
    bottom = top + bar_region.PhysicalDeltaY * (rows - 1) / 100
    row_step = abs(top - bottom) / (rows - 1)
    _check_elasto(read(q), frames, "strain", 2 * row_step, jpeg, "colour_bar_region")


def test_kpa_colour_bar_region_without_unit_is_ignored_with_reason(tmp_path):
    """kPa has no DICOM unit code: without the private block the elastography is left out (the
    reason recorded), the B-mode still read; a caller's bar then decodes it."""
    from layerseg.simulate.dicom_export import default_exam_bar, write_exam_dicom

    frames = _sim_frames("swe_kpa", seed=5)
    p = write_exam_dicom(tmp_path / "exam.dcm", frames, patient_name="SIM^A", patient_id="S1")
    q = _drop_private_block(p, tmp_path / "plain.dcm")
    f = read(q)[0]
    assert f.elasto is None and f.shape == frames[0].shape
    assert "PhysicalUnitsYDirection 0" in f.meta.extra["elasto_ignored"]
    assert "colour_bar" in f.meta.extra["elasto_ignored"]
    _check_elasto(read(q, colour_bar=default_exam_bar("swe_kpa")), frames, "swe_kpa",
                  default_exam_bar("swe_kpa").step * (1 + 1e-3), False, "caller")
    # the overlay layout without a usable bar: today's refusal, now with the reason
    p = write_exam_dicom(tmp_path / "ov.dcm", frames, patient_name="SIM^A", patient_id="S1",
                         layout="overlay")
    q = _drop_private_block(p, tmp_path / "ov_plain.dcm")
    with pytest.raises(InvalidImageError, match="ov_plain.dcm.*PhysicalUnitsYDirection 0"):
        read(q)[0]
    g = read(q, colour="luminance")[0]
    assert g.elasto is None and "PhysicalUnitsYDirection 0" in g.meta.extra["elasto_ignored"]


def test_caller_colour_bar_wins_over_the_file(tmp_path):
    from layerseg.simulate.dicom_export import default_exam_bar, write_exam_dicom

    frames = _sim_frames("swe_kpa", seed=6)
    p = write_exam_dicom(tmp_path / "exam.dcm", frames, patient_name="SIM^A", patient_id="S1")
    ref = default_exam_bar("swe_kpa")
    doubled = ref.rescaled(2 * ref.vmin, 2 * ref.vmax)
    f = read(p, colour_bar=doubled)[0]
    assert f.meta.extra["colour_bar_source"] == "caller" and f.elasto_kind == "swe_kpa"
    ok = f.elasto_valid & np.isfinite(frames[0].elasto)
    assert ok.sum() > 0.8 * np.isfinite(frames[0].elasto).sum()
    assert np.abs(f.elasto[ok] - 2 * frames[0].elasto[ok]).max() <= doubled.step * 1.001
    # a damaged record does not matter when the caller gives the bar, and is refused otherwise
    ds = pydicom.dcmread(p)
    blk = ds.private_block(0x0011, "LAYERSEG_SIM 1")
    blk[0x06].value = blk[0x06].value[:-3]                  # one colour short
    ds.save_as(tmp_path / "bad.dcm")
    with pytest.raises(ColourBarError, match="bad.dcm.*private colour-bar block.*colour bytes"):
        read(tmp_path / "bad.dcm")
    assert read(tmp_path / "bad.dcm", colour_bar=ref)[0].elasto is not None


def test_private_block_names_the_elastography_view(tmp_path):
    """Frame 0 without elastography shows grey in both views: the record's view box still tells
    the elastography view from the B-mode, so frame 1's map is decoded."""
    from layerseg.simulate.dicom_export import default_exam_bar, write_exam_dicom

    frames = _sim_frames("swe_kpa", seed=7, blank_first=True)
    p = write_exam_dicom(tmp_path / "exam.dcm", frames, patient_name="SIM^A", patient_id="S1")
    s = read(p)
    f0, f1 = s[0], s[1]
    assert f0.meta.extra["bmode_region"]["index"] == 0
    assert f0.meta.extra["colour_region"]["index"] == 1
    assert "private block" in f0.meta.extra["region_choice"]
    assert not f0.elasto_valid.any()                        # grey view: nothing decoded
    _check_elasto([f1], frames[1:], "swe_kpa", default_exam_bar("swe_kpa").step * 1.001, False,
                  "private_block")


@pytest.mark.parametrize("right_is_max,ref_px", [(True, 0), (True, 40), (False, 99)])
def test_horizontal_percent_colour_bar_region(tmp_path, rng, right_is_max, ref_px):
    """A hand-built screen: strain over a Colour Flow region, its bar horizontal under it, the
    bar region calibrated in percent along X with a reference pixel anywhere along it."""
    lut = default_colour_bar(0.0, 0.05)                      # strain 0-5 %
    img = np.zeros((92, 240, 3), np.uint8)
    img[0:80, 0:100] = grey_rgb(speckle(rng, (80, 100)))
    xx = np.arange(100)[None, :] / 99.0
    ripple = 1 + 0.1 * np.sin(np.arange(80) / 9)
    truth = np.repeat(0.005 + 0.04 * xx, 80, axis=0) * ripple[:, None]
    img[0:80, 110:210] = encode_colour(truth, lut)
    along = np.linspace(0.0, 0.05, 100) if right_is_max else np.linspace(0.05, 0.0, 100)
    img[84:90, 110:210] = encode_colour(along, lut)[None, :, :]
    dx_pct = (along[1] - along[0]) * 100                     # percent per column, signed
    bar_region = region(110, 84, 209, 89, 0, dx_pct, data_type=14, spatial=5, ux=1, uy=0,
                        ref=(ref_px, 0, along[ref_px] * 100, 0.0))
    regs = [region(0, 0, 99, 79, 0.003, 0.003),
            region(110, 0, 209, 79, 0.003, 0.003, data_type=2), bar_region]
    p = write_dicom(tmp_path / "strain.dcm", img, regions=regs)
    f = read_dicom(p)[0]
    assert f.elasto_kind == "strain" and f.meta.extra["colour_bar_source"] == "colour_bar_region"
    assert f.elasto_valid.mean() > 0.95
    step = 0.05 / 99
    assert np.abs(f.elasto - truth)[f.elasto_valid].max() <= 2 * step


@pytest.mark.parametrize("sex, age, want_sex, want_age", [
    ("F", "045Y", "F", 45.0), ("m", "006M", "M", 0.5), ("O", "095Y", None, 90.0),
    ("", "", None, None), ("F", "45", "F", None), ("X", "012W", None, 12 / 52.18)])
def test_sex_and_age_for_the_reference_ranges(tmp_path, rng, sex, age, want_sex, want_age):
    # PatientSex / PatientAge feed the reference ranges (z-scores); anything else is dropped,
    # and ages of 90 and over read as 90 (de-identification practice)
    frames = np.stack([grey_rgb(speckle(rng, (40, 50)))])
    r = region(0, 0, 49, 39, dy_cm=0.0025, dx_cm=0.0025, freq_khz=24000)
    p = write_dicom(tmp_path / "us.dcm", frames, regions=[r])
    ds = pydicom.dcmread(p)
    ds.PatientSex, ds.PatientAge = sex, age
    ds.save_as(p, enforce_file_format=True)
    extra = read_dicom(p)[0].meta.extra
    assert extra.get("sex") == want_sex
    if want_age is None:
        assert "age_years" not in extra
    else:
        assert extra["age_years"] == pytest.approx(want_age)


def test_jpeg_stream_cut_short_inside_its_item(tmp_path, rng):
    """A frame whose JPEG stream was cut short (no end-of-image marker) inside a well-formed
    item is refused as truncated, naming the file and the frame; the whole frames still
    decode, and an intact file passes the check."""
    g = np.stack([speckle(rng, (40, 48)) for _ in range(3)])
    p = write_dicom(tmp_path / "cine.dcm", g, jpeg=True, photometric="MONOCHROME2",
                    regions=[region(0, 0, 47, 39, 0.003, 0.003)])
    ds = pydicom.dcmread(p)
    frames = []
    for f in g:
        buf = _io.BytesIO()
        Image.fromarray(f.astype(np.uint8)).save(buf, format="JPEG", quality=95)
        frames.append(buf.getvalue())
    frames[1] = frames[1][:500]  # the stream cut, the item well formed
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    q = tmp_path / "cut stream.dcm"
    ds.save_as(q, enforce_file_format=True)
    s = read_dicom(q)
    np.testing.assert_allclose(s[0].bmode, g[0], atol=40)
    np.testing.assert_allclose(s[2].bmode, g[2], atol=40)
    with pytest.raises(CorruptFileError, match="cut stream.dcm.*frame 1 is truncated.*end-of"):
        s[1]
    s_ok = read_dicom(p)
    for k in range(3):
        np.testing.assert_allclose(s_ok[k].bmode, g[k], atol=40)
