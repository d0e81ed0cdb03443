"""One owner of grey conversion (layerseg.io._grey): every path scales pixel values the same way,
and every reader tells grey from colour with the same thresholds."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from layerseg.errors import InvalidImageError
from layerseg.io import read, read_dataset, write_manifest
from layerseg.io._grey import (GREY_CHROMA_MAX, GREY_FRACTION_MAX, is_effectively_grey,
                               pixels_to_grey)

SPACING = (0.025, 0.05)


def _dataset(root, images, labels=None):
    rows = []
    for i, (name, intensity) in enumerate(images):
        row = {"id": f"f{i}", "image": name, "intensity": intensity,
               "spacing_axial_mm": SPACING[0], "spacing_lateral_mm": SPACING[1]}
        if labels:
            row["label"] = labels[i]
        rows.append(row)
    write_manifest(root, rows)
    return read_dataset(root)


def test_16bit_and_float_images_read_alike_alone_and_through_a_dataset(tmp_path, rng):
    tifffile = pytest.importorskip("tifffile")
    a16 = rng.integers(0, 65536, (24, 32)).astype(np.uint16)
    a16[0, 0], a16[0, 1] = 0, 65535
    f32 = rng.uniform(0, 255, (24, 32)).astype(np.float32)
    Image.fromarray(a16).save(tmp_path / "a16.png")
    tifffile.imwrite(tmp_path / "a16.tif", a16)
    tifffile.imwrite(tmp_path / "f32.tif", f32)
    np.save(tmp_path / "f32.npy", f32)
    ds = _dataset(tmp_path, [("a16.png", "display"), ("a16.tif", "display"),
                             ("f32.tif", "display"), ("f32.npy", "display")])
    alone = {n: read(tmp_path / n, spacing=SPACING)[0].bmode
             for n in ("a16.png", "a16.tif", "f32.tif")}
    # .npy through layerseg.io.read is raw RF (envelope + log compression), so the float .npy
    # of a dataset is compared with the same float image as a TIFF read alone
    alone["f32.npy"] = alone["f32.tif"]
    for item in ds:
        name = item.row["image"]
        np.testing.assert_array_equal(item.frame.bmode, alone[name], err_msg=name)
        assert item.frame.bmode.dtype == np.float32
    expected = a16.astype(np.float32) * np.float32(255 / 65535)
    np.testing.assert_array_equal(alone["a16.png"], expected)
    assert alone["a16.png"].max() == pytest.approx(255) and ds[0].frame.bmode.max() <= 255


def test_label_maps_are_not_rescaled(tmp_path, rng):
    grey = rng.integers(0, 256, (16, 20)).astype(np.uint8)
    lab = rng.integers(0, 8, (16, 20))
    Image.fromarray(grey).save(tmp_path / "img.png")
    Image.fromarray(lab.astype(np.uint16)).save(tmp_path / "lab16.png")  # a 16-bit label PNG
    ds = _dataset(tmp_path, [("img.png", "display")], labels=["lab16.png"])
    np.testing.assert_array_equal(ds[0].label, lab)
    np.testing.assert_array_equal(ds[0].frame.bmode, grey)


def test_out_of_range_float_image_refused_in_a_dataset(tmp_path):
    np.save(tmp_path / "big.npy", np.full((8, 8), 300.0, np.float32))
    with pytest.raises(Exception, match="outside display grey 0-255"):
        _dataset(tmp_path, [("big.npy", "display")])


def test_pixels_to_grey_scales_by_bit_depth_only_when_asked():
    a = np.array([[0, 65535], [300, 1000]], np.uint16)
    np.testing.assert_allclose(pixels_to_grey(a, scale="bit_depth"), a * (255 / 65535),
                               rtol=1e-6)
    with pytest.raises(InvalidImageError, match="outside display grey"):
        pixels_to_grey(a, scale="as_is")
    np.testing.assert_array_equal(pixels_to_grey(a, scale="as_is", intensity="envelope"), a)


# ------------------------------------------------------------------------- grey or colour
def _tinted(n_coloured, shape=(40, 50), chroma=GREY_CHROMA_MAX + 1):
    rgb = np.repeat(np.linspace(30, 200, shape[1]).astype(np.uint8)[None, :, None], shape[0], 0)
    rgb = np.repeat(rgb, 3, axis=2)
    flat = rgb.reshape(-1, 3)
    idx = np.arange(n_coloured) * 7 % flat.shape[0]
    flat[idx, 0] = np.clip(flat[idx, 1].astype(int) + int(chroma), 0, 255)
    return rgb


def _write_rgb_dicom(path, rgb):
    ds = Dataset()
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    fm.MediaStorageSOPInstanceUID = generate_uid()
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = fm
    ds.SOPClassUID, ds.SOPInstanceUID = fm.MediaStorageSOPClassUID, fm.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.Rows, ds.Columns = rgb.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelSpacing = list(SPACING)
    ds.PixelData = rgb.astype(np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_faint_tint_at_the_limit_is_grey_for_png_and_dicom_alike(tmp_path):
    n_limit = int(GREY_FRACTION_MAX * 40 * 50)
    at, over = _tinted(n_limit), _tinted(n_limit + 1)
    assert is_effectively_grey(at) and not is_effectively_grey(over)
    assert is_effectively_grey(_tinted(5 * n_limit, chroma=GREY_CHROMA_MAX))  # not coloured
    results = {}
    for name, rgb in (("at", at), ("over", over)):
        Image.fromarray(rgb).save(tmp_path / f"{name}.png")
        _write_rgb_dicom(tmp_path / f"{name}.dcm", rgb)
        for ext in ("png", "dcm"):
            try:
                results[name, ext] = read(tmp_path / f"{name}.{ext}", spacing=SPACING)[0].bmode
            except InvalidImageError as e:
                assert f"{name}.{ext}" in str(e) and "colour" in str(e)
                results[name, ext] = None
    assert results["at", "png"] is not None and results["over", "png"] is None
    assert results["at", "dcm"] is not None and results["over", "dcm"] is None
    np.testing.assert_array_equal(results["at", "png"], results["at", "dcm"])
    ref = at.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(results["at", "png"], ref, atol=1e-3)
