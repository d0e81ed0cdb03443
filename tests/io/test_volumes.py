import nibabel as nib
import nrrd
import numpy as np
import pytest

from layerseg.errors import (CalibrationError, CorruptFileError, InvalidImageError, ReadError,
                             UnsupportedFormatError)
from layerseg.io.dataset import load_array
from layerseg.io.volumes import read_volume


def _nifti(path, data, zooms=None, unit="mm"):
    img = nib.Nifti1Image(data, np.eye(4))
    if zooms is not None:
        img.header.set_zooms(zooms)
    if unit is not None:
        img.header.set_xyzt_units(xyz=unit)
    nib.save(img, str(path))
    return path


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_2d_axes_and_spacing(tmp_path, rng, suffix):
    x, y = 30, 20                                          # lateral, depth
    vol = rng.integers(0, 256, (x, y)).astype(np.uint8)
    p = _nifti(tmp_path / f"a{suffix}", vol, zooms=(0.05, 0.025))
    fs = read_volume(p)
    assert len(fs) == 1
    f = fs[0]
    assert f.shape == (y, x)                                # (rows=depth, cols=lateral)
    np.testing.assert_array_equal(f.bmode, vol.T)
    assert f.spacing_mm == pytest.approx((0.025, 0.05)) and f.meta.calibration == "header"
    # the same convention as the dataset loader
    a, sp = load_array(p)
    np.testing.assert_array_equal(a, f.bmode)
    assert sp == pytest.approx(f.spacing_mm)


def test_nifti_3d_stack_lazy(tmp_path, rng, monkeypatch):
    vol = rng.uniform(0, 255, (24, 16, 5)).astype(np.float32)
    p = _nifti(tmp_path / "cine.nii", vol, zooms=(0.04, 0.02, 33.0))
    fs = read_volume(p)
    assert len(fs) == 5
    f3 = fs[3]
    np.testing.assert_array_equal(f3.bmode, vol[:, :, 3].T)
    assert f3.meta.frame_index == 3 and f3.meta.extra["frame_step"] == pytest.approx(33.0)
    assert f3.spacing_mm == pytest.approx((0.02, 0.04))
    # a frame reads one slice of the proxy, never the whole volume
    import layerseg.io.volumes as mod
    seen = []
    orig = mod._NiftiSource.slice
    monkeypatch.setattr(mod._NiftiSource, "slice",
                        lambda self, idx: seen.append(idx) or orig(self, idx))
    fs[4]
    assert seen == [(slice(None), slice(None), 4)]


def test_nifti_units_and_placeholder(tmp_path, rng):
    vol = rng.integers(0, 256, (10, 12)).astype(np.uint8)
    f = read_volume(_nifti(tmp_path / "m.nii", vol, zooms=(5e-5, 2.5e-5), unit="meter"))[0]
    assert f.spacing_mm == pytest.approx((0.025, 0.05))
    f = read_volume(_nifti(tmp_path / "u.nii", vol, zooms=(50, 25), unit="micron"))[0]
    assert f.spacing_mm == pytest.approx((0.025, 0.05))
    f = read_volume(_nifti(tmp_path / "p.nii", vol, unit=None))[0]  # pixdim 1, no unit
    assert f.spacing_mm is None and f.meta.calibration is None
    assert "header_spacing_ignored" in f.meta.extra
    f = read_volume(tmp_path / "p.nii", spacing=(0.02, 0.03))[0]
    assert f.spacing_mm == (0.02, 0.03) and f.meta.calibration == "user"


def test_nifti_singleton_axes_dropped(tmp_path, rng):
    vol = rng.integers(0, 256, (10, 12, 1, 3)).astype(np.uint8)
    fs = read_volume(_nifti(tmp_path / "s.nii", vol, zooms=(0.1, 0.1, 1, 1)))
    assert len(fs) == 3
    np.testing.assert_array_equal(fs[2].bmode, vol[:, :, 0, 2].T)


def test_nrrd_raw_and_gzip(tmp_path, rng):
    vol = rng.integers(0, 256, (20, 14, 4)).astype(np.uint16)
    # axis 0 lateral 0.06 mm, axis 1 depth 0.03 mm, axis 2 frames (non-spatial: a NaN row)
    hdr = {"space directions": [[0.06, 0, 0], [0, 0.03, 0], [np.nan, np.nan, np.nan]],
           "space units": ["mm", "mm", ""], "kinds": ["domain", "domain", "list"]}
    for enc in ("raw", "gzip"):
        p = tmp_path / f"v_{enc}.nrrd"
        nrrd.write(str(p), vol, {**hdr, "encoding": enc})
        fs = read_volume(p)
        assert len(fs) == 4
        for k in range(4):
            np.testing.assert_array_equal(fs[k].bmode, vol[:, :, k].T)
        assert fs[1].spacing_mm == pytest.approx((0.03, 0.06))
        assert fs[1].meta.calibration == "header"


def test_nrrd_spacings_units_and_none(tmp_path, rng):
    img = rng.integers(0, 256, (12, 9)).astype(np.uint8)
    p = tmp_path / "s.nrrd"
    nrrd.write(str(p), img, {"spacings": [5e-5, 2.5e-5], "space units": ["m", "m"]})
    f = read_volume(p)[0]
    assert f.spacing_mm == pytest.approx((0.025, 0.05))
    q = tmp_path / "n.nrrd"
    nrrd.write(str(q), img)
    f = read_volume(q)[0]
    assert f.spacing_mm is None and f.meta.calibration is None
    np.testing.assert_array_equal(f.bmode, img.T)


def test_envelope_intensity_and_range_errors(tmp_path, rng):
    vol = rng.uniform(0, 5000, (10, 12)).astype(np.float32)
    p = _nifti(tmp_path / "e.nii", vol, zooms=(0.1, 0.1))
    with pytest.raises(InvalidImageError, match="intensity='envelope'") as ei:
        read_volume(p)
    assert "e.nii" in str(ei.value)
    f = read_volume(p, intensity="envelope")[0]
    assert f.intensity == "envelope"
    np.testing.assert_array_equal(f.bmode, vol.T)
    with pytest.raises(InvalidImageError, match="intensity"):
        read_volume(p, intensity="log")
    neg = _nifti(tmp_path / "neg.nii", vol - 10000, zooms=(0.1, 0.1))
    with pytest.raises(InvalidImageError, match="negative"):
        read_volume(neg, intensity="envelope")


def test_nan_empty_single_pixel(tmp_path, rng):
    vol = rng.uniform(0, 255, (10, 12, 2)).astype(np.float32)
    vol[2, 3, 1] = np.nan
    fs = read_volume(_nifti(tmp_path / "nan.nii", vol, zooms=(0.1, 0.1, 1)))
    with pytest.raises(InvalidImageError, match="NaN") as ei:
        fs[1]
    assert "nan.nii" in str(ei.value)
    with pytest.raises(InvalidImageError, match="single pixel"):
        read_volume(_nifti(tmp_path / "one.nii", np.zeros((1, 1, 4), np.uint8)))
    with pytest.raises(InvalidImageError, match="too small"):
        read_volume(_nifti(tmp_path / "thin.nii", np.zeros((1, 9), np.uint8)))
    e = tmp_path / "empty.nii"
    e.write_bytes(b"")
    with pytest.raises(CorruptFileError, match="empty"):
        read_volume(e)


def test_bad_files(tmp_path, rng):
    with pytest.raises(ReadError, match="does not exist"):
        read_volume(tmp_path / "nope.nii")
    g = tmp_path / "garbage.nii"
    g.write_bytes(b"this is not a nifti header" * 20)
    with pytest.raises(CorruptFileError, match="NIfTI") as ei:
        read_volume(g)
    assert "garbage.nii" in str(ei.value)
    t = _nifti(tmp_path / "trunc.nii", rng.integers(0, 256, (64, 64, 3)).astype(np.uint8),
               zooms=(0.1, 0.1, 1))
    t.write_bytes(t.read_bytes()[:2000])
    with pytest.raises(CorruptFileError, match="truncated"):
        read_volume(t)
    n = tmp_path / "trunc.nrrd"
    nrrd.write(str(n), rng.integers(0, 256, (64, 64)).astype(np.uint8), {"encoding": "raw"})
    n.write_bytes(n.read_bytes()[:1000])
    with pytest.raises(CorruptFileError, match="truncated"):
        read_volume(n)
    b = tmp_path / "bad.nrrd"
    b.write_text("NRRD0004\ntype: nonsense\n\n")
    with pytest.raises(CorruptFileError, match="NRRD"):
        read_volume(b)
    u = tmp_path / "thing.bin"
    u.write_bytes(b"\x00" * 400)
    with pytest.raises(UnsupportedFormatError, match="not a NIfTI or NRRD"):
        read_volume(u)


def test_too_many_axes_colour_and_bad_spacing(tmp_path, rng):
    with pytest.raises(UnsupportedFormatError, match="more than one"):
        read_volume(_nifti(tmp_path / "4d.nii", np.zeros((5, 5, 2, 2), np.uint8)))
    c = tmp_path / "rgb.nrrd"
    nrrd.write(str(c), np.zeros((3, 8, 8), np.uint8), {"kinds": ["RGB-color", "domain", "domain"]})
    with pytest.raises(UnsupportedFormatError, match="colour"):
        read_volume(c)
    rgb = np.zeros((8, 8), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    with pytest.raises(UnsupportedFormatError, match="colour"):
        read_volume(_nifti(tmp_path / "rgb.nii", rgb))
    s = tmp_path / "cm.nrrd"
    nrrd.write(str(s), np.zeros((8, 8), np.uint8), {"spacings": [1.0, 1.0],
                                                    "space units": ["furlong", "furlong"]})
    with pytest.raises(CalibrationError, match="unit"):
        read_volume(s)
    big = _nifti(tmp_path / "big.nii", np.zeros((8, 8), np.uint8), zooms=(20.0, 30.0))
    with pytest.raises(CalibrationError, match="implausible"):
        read_volume(big)


@pytest.mark.parametrize("version,gz", [(1, False), (1, True), (2, False)])
def test_nifti_content_under_another_extension(tmp_path, rng, version, gz):
    """nibabel picks the format by extension; the header is taken from the content instead."""
    from layerseg.io import read

    vol = rng.integers(0, 256, (30, 20, 3)).astype(np.uint8)
    klass = nib.Nifti1Image if version == 1 else nib.Nifti2Image
    img = klass(vol, np.eye(4))
    img.header.set_zooms((0.05, 0.025, 0.5))
    img.header.set_xyzt_units(xyz="mm")
    proper = tmp_path / ("ref.nii.gz" if gz else "ref.nii")
    nib.save(img, str(proper))
    odd = tmp_path / "export.bin"
    odd.write_bytes(proper.read_bytes())
    for fs in (read_volume(odd), read(odd)):
        assert len(fs) == 3
        for k in range(3):
            f = fs[k]
            np.testing.assert_array_equal(f.bmode, vol[:, :, k].T)
            assert f.spacing_mm == pytest.approx((0.025, 0.05)) and f.meta.calibration == "header"
        assert f.meta.extra["frame_step"] == pytest.approx(0.5)


def test_nifti_pair_header_under_another_name_refused(tmp_path, rng):
    img = nib.Nifti1Pair(rng.integers(0, 256, (8, 6)).astype(np.uint8), np.eye(4))
    nib.save(img, str(tmp_path / "pair.hdr"))
    odd = tmp_path / "pair.header"
    odd.write_bytes((tmp_path / "pair.hdr").read_bytes())
    with pytest.raises(UnsupportedFormatError, match=r"pair\.header.*\.hdr/\.img pair"):
        read_volume(odd)


def test_missing_files_are_missing_file_errors(tmp_path, rng):
    from layerseg.errors import MissingFileError

    with pytest.raises(MissingFileError, match="nope.nrrd.*does not exist") as ei:
        read_volume(tmp_path / "nope.nrrd")
    assert isinstance(ei.value, FileNotFoundError) and isinstance(ei.value, ReadError)
    img = nib.Nifti1Pair(rng.integers(0, 256, (8, 6)).astype(np.uint8), np.eye(4))
    nib.save(img, str(tmp_path / "pair.hdr"))
    (tmp_path / "pair.img").unlink()
    with pytest.raises(MissingFileError, match="pair is missing"):
        read_volume(tmp_path / "pair.hdr")
    with pytest.raises(ReadError, match="not a file") as ei:
        read_volume(tmp_path)
    assert not isinstance(ei.value, MissingFileError)


def test_nifti_reader_notes(tmp_path, rng, capfd):
    """What the reader assumed or did not apply is in meta.extra['reader_notes'] (carried into
    QC notes): nibabel's header corrections (which it would print with no file name), an
    unstated unit, an affine that turns the image plane; a plain header gives none."""
    vol = rng.integers(0, 256, (30, 20)).astype(np.uint8)
    f = read_volume(_nifti(tmp_path / "plain.nii", vol, zooms=(0.05, 0.025)))[0]
    assert "reader_notes" not in f.meta.extra
    # pixdim 0: nibabel sets it to 1 and logs it; the note names it, nothing goes to stderr
    img = nib.Nifti1Image(vol, np.eye(4))
    img.header["pixdim"][1:4] = 0
    nib.save(img, str(tmp_path / "zero.nii"))
    capfd.readouterr()
    f = read_volume(tmp_path / "zero.nii")[0]
    assert "pixdim" not in capfd.readouterr().err
    notes = f.meta.extra["reader_notes"]
    assert any(n.startswith("NIfTI header: ") and "pixdim" in n for n in notes), notes
    assert f.spacing_mm is None
    # no unit: taken as mm, said so
    f = read_volume(_nifti(tmp_path / "nounit.nii", vol, zooms=(0.05, 0.025), unit=None))[0]
    assert f.spacing_mm == pytest.approx((0.025, 0.05))
    assert any("no spatial unit" in n for n in f.meta.extra["reader_notes"])
    # an affine turning the image plane by 30 degrees: read as stored, noted
    a = np.radians(30.0)
    aff = np.eye(4)
    aff[:2, :2] = [[np.cos(a) * 0.05, -np.sin(a) * 0.025], [np.sin(a) * 0.05, np.cos(a) * 0.025]]
    img = nib.Nifti1Image(vol, aff)
    img.header.set_xyzt_units(xyz="mm")
    nib.save(img, str(tmp_path / "turned.nii"))
    f = read_volume(tmp_path / "turned.nii")[0]
    np.testing.assert_array_equal(f.bmode, vol.T)
    assert any("turns the image plane by 30 degrees" in n for n in f.meta.extra["reader_notes"])
    # flips are not turns
    img = nib.Nifti1Image(vol, np.diag([-0.05, 0.025, 1.0, 1.0]))
    img.header.set_xyzt_units(xyz="mm")
    nib.save(img, str(tmp_path / "flipped.nii"))
    assert "reader_notes" not in read_volume(tmp_path / "flipped.nii")[0].meta.extra
