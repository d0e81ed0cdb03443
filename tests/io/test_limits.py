"""Sizes a header claims are checked before anything is allocated (layerseg.io._limits), and a
multi-frame DICOM with a short last frame reads its whole frames."""

from __future__ import annotations

import gzip
import struct
import time
import tracemalloc
import zlib

import nibabel as nib
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from layerseg.errors import CorruptFileError, InvalidImageError, LayersegError
from layerseg.io import read, read_dataset, write_manifest
from layerseg.io._limits import MAX_PIXELS

PEAK_BYTES = 50 * 2 ** 20


@pytest.fixture(autouse=True, scope="module")
def _readers_imported():
    """Import the readers (and what they import lazily) before timing and tracing memory."""
    import nrrd  # noqa: F401
    import scipy.io  # noqa: F401

    import layerseg.io.dicom  # noqa: F401
    import layerseg.io.images  # noqa: F401
    import layerseg.io.rf  # noqa: F401
    import layerseg.io.volumes  # noqa: F401


# ------------------------------------------------------------------------- crafted files
def _npy(path, shape, descr="<f4"):
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False,
                                                 "shape": shape})
        f.write(b"\0" * 64)
    return path


def _nifti(path, shape, gz=False):
    h = nib.Nifti1Header()
    h.set_data_dtype(np.uint8)
    h.set_data_shape(shape)
    h["vox_offset"] = 352
    raw = h.binaryblock + b"\0" * 4 + b"\0" * 1024
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(path, w, h):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
                     + _chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _chunk(b"IEND", b""))
    return path


def _nrrd(path, sizes, encoding="raw"):
    hdr = (f"NRRD0004\ntype: uint8\ndimension: {len(sizes)}\n"
           f"sizes: {' '.join(map(str, sizes))}\nencoding: {encoding}\n\n").encode()
    body = gzip.compress(b"\0" * 100) if encoding == "gzip" else b"\0" * 100
    path.write_bytes(hdr + body)
    return path


def _dicom(path, rows, cols, frames, pixel_bytes):
    ds = Dataset()
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    fm.MediaStorageSOPInstanceUID = generate_uid()
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = fm
    ds.SOPClassUID, ds.SOPInstanceUID = fm.MediaStorageSOPClassUID, fm.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelSpacing = [0.05, 0.05]
    ds.PixelData = bytes(pixel_bytes)
    ds.save_as(path, enforce_file_format=True)
    return path


CASES = {
    "npy_huge.npy": (lambda p: _npy(p, (100000, 100000)), InvalidImageError),
    "npy_short.npy": (lambda p: _npy(p, (2000, 2000)), CorruptFileError),
    "nifti_huge.nii": (lambda p: _nifti(p, (30000, 30000, 300)), InvalidImageError),
    "nifti_short.nii": (lambda p: _nifti(p, (3000, 3000, 3)), CorruptFileError),
    "nifti_huge.nii.gz": (lambda p: _nifti(p, (30000, 30000, 300), gz=True), InvalidImageError),
    "png_huge.png": (lambda p: _png(p, 60000, 60000), InvalidImageError),
    "nrrd_huge.nrrd": (lambda p: _nrrd(p, (30000, 30000, 300)), InvalidImageError),
    "nrrd_short.nrrd": (lambda p: _nrrd(p, (3000, 3000, 3)), CorruptFileError),
    "nrrd_huge_gz.nrrd": (lambda p: _nrrd(p, (30000, 30000, 300), "gzip"), InvalidImageError),
    "dicom_huge.dcm": (lambda p: _dicom(p, 60000, 60000, 1000, 64), InvalidImageError),
    "dicom_short.dcm": (lambda p: _dicom(p, 4000, 4000, 10, 64), CorruptFileError),
}


def _read_all(path):
    for frame in read(path, spacing=(0.05, 0.05)):
        frame.bmode.sum()


@pytest.mark.parametrize("name", sorted(CASES))
def test_huge_header_refused_before_allocation(tmp_path, name):
    make, err = CASES[name]
    p = make(tmp_path / name)
    assert p.stat().st_size < 4096
    before = (p.stat().st_mtime_ns, p.read_bytes())
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(err) as ei:
            _read_all(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 5
    assert peak < PEAK_BYTES, f"{name}: peak {peak / 2 ** 20:.0f} MiB"
    assert str(p) in str(ei.value)
    if err is InvalidImageError:
        assert f"{MAX_PIXELS:,}" in str(ei.value)
    else:
        assert "claims" in str(ei.value) and "bytes" in str(ei.value)
    assert (p.stat().st_mtime_ns, p.read_bytes()) == before  # reading never modifies a file


@pytest.mark.parametrize("name", ["npy_huge.npy", "nifti_short.nii", "png_huge.png"])
def test_dataset_loader_checks_sizes_too(tmp_path, name):
    make, err = CASES[name]
    make(tmp_path / name)
    write_manifest(tmp_path, [{"id": "a", "image": name, "spacing_axial_mm": 0.05,
                               "spacing_lateral_mm": 0.05}])
    tracemalloc.start()
    try:
        with pytest.raises(LayersegError) as ei:
            read_dataset(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES and str(tmp_path / name) in str(ei.value)


def test_max_pixels_is_above_a_long_cine_loop():
    assert MAX_PIXELS >= 300 * 800 * 1000  # 12 s at 25 frames/s of 800 x 1000 screens


# ------------------------------------------------------------------ short last DICOM frame
def test_multiframe_dicom_short_last_frame(tmp_path, rng):
    frames = rng.integers(0, 256, (3, 20, 30)).astype(np.uint8)
    p = _dicom(tmp_path / "short.dcm", 20, 30, 3, 0)
    import pydicom

    ds = pydicom.dcmread(p)
    ds.PixelData = frames.tobytes()[: 2 * 600 + 100]  # frame 2 holds 100 of its 600 bytes
    ds.save_as(p, enforce_file_format=True)
    series = read(p)
    assert len(series) == 3
    for i in (0, 1):
        np.testing.assert_array_equal(series[i].bmode, frames[i])
    with pytest.raises(CorruptFileError, match="frame 2 is truncated") as ei:
        series[2]
    assert str(p) in str(ei.value) and "frames 0-1 of 3" in str(ei.value)
