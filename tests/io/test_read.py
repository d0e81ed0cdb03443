"""Tests of layerseg.io.read: content sniffing, dispatch, errors."""

from __future__ import annotations

import gzip
import os
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from layerseg.errors import ReadError, UnsupportedFormatError
from layerseg.frame import Frame, FrameSeries
from layerseg.io import read, read_frame, sniff_format

US = "1.2.840.10008.5.1.4.1.1.6.1"


def _us_dataset(g: np.ndarray) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = US, generate_uid()
    ds.Modality = "US"
    ds.Rows, ds.Columns = g.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelSpacing = [0.02, 0.05]
    ds.PixelData = g.astype(np.uint8).tobytes()
    return ds


def write_dicom(path, g, preamble=True):
    ds = _us_dataset(g)
    if preamble:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = US
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(path, enforce_file_format=True)
    else:
        pydicom.dcmwrite(path, ds, implicit_vr=True, little_endian=True)
    return Path(path)


@pytest.fixture
def grey(rng):
    return rng.integers(0, 256, size=(30, 40)).astype(np.uint8)


def test_dicom_dispatched_by_content_not_extension(tmp_path, grey):
    p = write_dicom(tmp_path / "scan.png", grey)  # misleading extension
    assert sniff_format(p) == "dicom"
    s = read(p)
    assert isinstance(s, FrameSeries) and len(s) == 1
    f = s[0]
    np.testing.assert_array_equal(f.bmode, grey)
    assert f.spacing_mm == pytest.approx((0.02, 0.05))
    assert f.meta.calibration == "dicom_pixel_spacing"


def test_preambleless_dicom(tmp_path, grey):
    p = write_dicom(tmp_path / "raw_dataset", grey, preamble=False)
    assert p.read_bytes()[128:132] != b"DICM"
    assert sniff_format(p) == "dicom"
    np.testing.assert_array_equal(read_frame(p).bmode, grey)


def test_png_dispatched_with_sidecar(tmp_path, grey):
    p = tmp_path / "shot.dat"  # no image extension: content decides
    Image.fromarray(grey).save(p, format="PNG")
    (tmp_path / "shot.json").write_text(json.dumps({"spacing_mm": [0.03, 0.06]}))
    assert sniff_format(p) == "png"
    f = read_frame(p)
    np.testing.assert_array_equal(f.bmode, grey)
    assert f.spacing_mm == pytest.approx((0.03, 0.06)) and f.meta.calibration == "sidecar"
    g = read_frame(p, spacing=(0.01, 0.02))
    assert g.spacing_mm == (0.01, 0.02) and g.meta.calibration == "user"


def _write_each(tmp_path, grey):
    """One file per format, each under a meaningless extension."""
    import nibabel as nib
    import nrrd
    import scipy.io

    out = {}
    p = tmp_path / "a.bin"
    Image.fromarray(grey).save(p, format="JPEG")
    out["jpeg"] = p
    p = tmp_path / "b.bin"
    Image.fromarray(grey).save(p, format="TIFF")
    out["tiff"] = p
    img = nib.Nifti1Image(grey[None].astype(np.float32), np.eye(4))
    p = tmp_path / "c.nii"
    nib.save(img, p)
    out["nifti"] = p.rename(tmp_path / "c.bin")
    p = tmp_path / "d.nii.gz"
    nib.save(img, p)
    out["nifti_gz"] = p.rename(tmp_path / "d.bin")
    p = tmp_path / "e.nrrd"
    nrrd.write(str(p), grey)
    out["nrrd"] = p.rename(tmp_path / "e.bin")
    p = tmp_path / "f.npy"
    np.save(p, grey)
    out["npy"] = p.rename(tmp_path / "f.bin")
    p = tmp_path / "g.mat"
    scipy.io.savemat(p, {"rf": grey.astype(float)})
    out["mat"] = p.rename(tmp_path / "g.bin")
    try:
        import h5py
    except ImportError:
        h5py = None
    if h5py is not None:
        p = tmp_path / "h.bin"
        with h5py.File(p, "w") as f:
            f["rf"] = grey
        out["hdf5"] = p
    return out


def test_sniff_every_format(tmp_path, grey):
    for name, path in _write_each(tmp_path, grey).items():
        expected = "nifti" if name == "nifti_gz" else name
        assert sniff_format(path) == expected, name


def test_unknown_empty_missing_folder(tmp_path):
    t = tmp_path / "notes.dcm"
    t.write_text("just some text, with a .dcm extension\n")
    with pytest.raises(UnsupportedFormatError, match="notes.dcm.*unknown format"):
        read(t)
    e = tmp_path / "empty.png"
    e.write_bytes(b"")
    with pytest.raises(UnsupportedFormatError, match="empty.png.*empty"):
        read(e)
    with pytest.raises(ReadError, match="absent.dcm.*not found"):
        read(tmp_path / "absent.dcm")
    with pytest.raises(ReadError, match="folder"):
        read(tmp_path)
    z = tmp_path / "x.gz"
    z.write_bytes(gzip.compress(b"hello world" * 100))
    with pytest.raises(UnsupportedFormatError, match="gzip"):
        read(z)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_pipes_and_broken_links_are_refused_not_waited_on(tmp_path):
    # a named pipe would block an open() for reading until a writer comes: refused first
    fifo = tmp_path / "scan.png"
    os.mkfifo(fifo)
    with pytest.raises(ReadError, match="scan.png.*not a regular file"):
        read(fifo)
    dangling = tmp_path / "gone.dcm"
    dangling.symlink_to(tmp_path / "nowhere.dcm")
    with pytest.raises(ReadError, match="gone.dcm.*broken symbolic link"):
        read(dangling)
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    with pytest.raises(ReadError, match="loop.png.*broken symbolic link"):
        read(loop)


def test_extension_breaks_ties(tmp_path, grey):
    # a dual-personality file: TIFF header in the DICOM preamble
    p = write_dicom(tmp_path / "dual.dcm", grey)
    data = bytearray(p.read_bytes())
    data[0:4] = b"II*\x00"
    for name, expected in (("dual.dcm", "dicom"), ("dual.tif", "tiff"), ("dual.xyz", "dicom")):
        q = tmp_path / name
        q.write_bytes(bytes(data))
        assert sniff_format(q) == expected


def test_unknown_option_named(tmp_path, grey):
    p = write_dicom(tmp_path / "s.dcm", grey)
    with pytest.raises(TypeError, match="no_such_option"):
        read(p, no_such_option=1)


def test_read_frame_index(tmp_path, grey):
    p = write_dicom(tmp_path / "s.dcm", grey)
    assert isinstance(read_frame(p, 0), Frame)
    assert read_frame(p, -1).meta.frame_index == 0
    with pytest.raises(IndexError, match="s.dcm"):
        read_frame(p, 3)


def test_import_io_pulls_no_torch_or_monai():
    code = ("import sys, layerseg, layerseg.io; "
            "bad = [m for m in ('torch', 'monai', 'lightning') if m in sys.modules]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_nifti_and_nrrd_dispatched_with_header_spacing(tmp_path, grey):
    import nibabel as nib
    import nrrd

    vol = grey.T[:, :, None].astype(np.float32)  # axis 0 lateral, axis 1 depth, axis 2 frames
    img = nib.Nifti1Image(vol, np.diag([0.05, 0.02, 1.0, 1.0]))
    img.header.set_xyzt_units("mm")
    for name in ("v.nii", "v.nii.gz"):  # nibabel itself needs the NIfTI extension
        nib.save(img, tmp_path / name)
        assert sniff_format(tmp_path / name) == "nifti"
        f = read_frame(tmp_path / name)
        np.testing.assert_array_equal(f.bmode, grey)
        assert f.spacing_mm == pytest.approx((0.02, 0.05)) and f.meta.calibration == "header"
    p = tmp_path / "v.nrrd"
    nrrd.write(str(p), vol[:, :, 0], {"spacings": [0.05, 0.02]})
    f = read_frame(p.rename(tmp_path / "v.data"))
    np.testing.assert_array_equal(f.bmode, grey)
    assert f.spacing_mm == pytest.approx((0.02, 0.05))


def test_rf_npy_dispatched_by_content(tmp_path, rng):
    fs, f0, c = 100.0, 24.0, 1540.0
    t = np.arange(400)[:, None] / fs  # microseconds
    rf = np.sin(2 * np.pi * f0 * t) * (1 + rng.random((1, 32))) * np.exp(-t)
    p = tmp_path / "lines.bin"  # content, not extension
    with open(p, "wb") as fh:
        np.save(fh, rf.astype(np.float32))
    assert sniff_format(p) == "npy"
    f = read_frame(p, fs_mhz=fs, f0_mhz=f0, line_pitch_mm=0.1)
    assert f.shape == (400, 32)
    # sample k lies at depth k * c / (2 fs): 1540 m/s over 2 x 100 MHz = 7.7 um
    assert f.spacing_mm == pytest.approx((c / (2 * fs) / 1000, 0.1))
    assert f.meta.calibration == "rf_sampling" and f.dynamic_range_db == 60.0


def test_public_names_resolve():
    import layerseg.io as lio

    for name in lio.__all__:
        assert getattr(lio, name) is not None, name
    with pytest.raises(AttributeError):
        lio.no_such_reader  # noqa: B018


def test_missing_file_error_from_every_reader(tmp_path):
    """A path that does not exist: `MissingFileError`, which is a ReadError, a
    FileNotFoundError (errno ENOENT) and names the file."""
    import errno

    from layerseg.errors import MissingFileError
    from layerseg.io.dicom import read_dicom
    from layerseg.io.images import read_image
    from layerseg.io.rf import read_rf
    from layerseg.io.volumes import read_volume

    readers = {"x.dcm": read, "y.dcm": read_dicom, "z.png": read_image, "w.nii": read_volume,
               "v.npy": read_rf, "u.png": sniff_format}
    for name, fn in readers.items():
        with pytest.raises(MissingFileError, match=rf"{name}: .*(not found|does not exist)") as ei:
            fn(tmp_path / name)
        e = ei.value
        assert isinstance(e, ReadError) and isinstance(e, FileNotFoundError)
        assert e.errno == errno.ENOENT and e.path == str(tmp_path / name)
    with pytest.raises(FileNotFoundError):  # callers that only know the built-in
        read(tmp_path / "absent.tif")
    # a folder is a ReadError, not a missing file
    with pytest.raises(ReadError) as ei:
        read(tmp_path)
    assert not isinstance(ei.value, FileNotFoundError)
