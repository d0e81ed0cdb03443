"""Fuzz-style robustness: damaged and random files give a layerseg error naming the file, never
another exception type, and reading never modifies the file."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import scipy.io
from PIL import Image

from layerseg.errors import LayersegError
from layerseg.io import read

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
EXTENSIONS = (".dcm", ".png", ".tif", ".nii", ".nii.gz", ".nrrd", ".npy", ".mat")


def _seed_files(root: Path, rng) -> list[Path]:
    """Small valid files of every format, plus the bundled DICOM and PNG samples."""
    img = rng.integers(0, 256, (24, 20)).astype(np.uint8)
    out = [p for p in sorted(SAMPLES.glob("*")) if p.suffix in (".dcm", ".png")]
    Image.fromarray(img).save(root / "s.png")
    Image.fromarray(img).save(root / "s.tif")
    Image.fromarray((img.astype(np.uint16) * 257)).save(root / "s16.tif")
    vol = nib.Nifti1Image(np.stack([img.T, img.T], axis=2), np.eye(4))
    nib.save(vol, root / "s.nii")
    nib.save(vol, root / "s.nii.gz")
    import nrrd

    nrrd.write(str(root / "s.nrrd"), img.T.copy(), {"encoding": "raw"})
    nrrd.write(str(root / "sgz.nrrd"), img.T.copy(), {"encoding": "gzip"})
    rf = rng.normal(size=(2, 64, 16)).astype(np.float32)
    np.save(root / "s.npy", rf)
    scipy.io.savemat(root / "s.mat", {"rf": rf[0], "fs": 80e6})
    out += [root / n for n in ("s.png", "s.tif", "s16.tif", "s.nii", "s.nii.gz", "s.nrrd",
                               "sgz.nrrd", "s.npy", "s.mat")]
    return out


def _variants(src: Path, root: Path, rng, k: int):
    data = src.read_bytes()
    name = src.name
    suffix = ".nii.gz" if name.endswith(".nii.gz") else src.suffix
    n = len(data)
    for cut in sorted({8, 100, 400, n // 3, n // 2, n - 7}):
        if 0 < cut < n:
            yield root / f"{k}_cut{cut}{suffix}", data[:cut]
    for j in range(3):
        b = bytearray(data)
        pos = rng.integers(0, n, size=max(4, n // 500))
        b_arr = np.frombuffer(bytes(b), np.uint8).copy()
        b_arr[pos] ^= rng.integers(1, 256, size=pos.size).astype(np.uint8)
        yield root / f"{k}_flip{j}{suffix}", b_arr.tobytes()
    if name.endswith(".nii.gz"):  # damage the inflated content, not only the gzip stream
        raw = bytearray(gzip.decompress(data))
        raw[40:56] = rng.integers(0, 256, 16).astype(np.uint8).tobytes()
        yield root / f"{k}_gzflip{suffix}", gzip.compress(bytes(raw))


def _check(path: Path):
    before = (path.stat().st_mtime_ns, path.read_bytes())
    try:
        for frame in read(path, spacing=(0.05, 0.05)):
            assert frame.bmode.ndim == 2
    except LayersegError as e:
        assert str(path) in str(e), f"error does not name the file: {e!r}"
    except Exception as e:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{path.name}: {type(e).__name__} escaped: {e}")
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before, "reading modified the file"


def test_damaged_files_raise_only_layerseg_errors(tmp_path):
    rng = np.random.default_rng(20240611)
    seeds = _seed_files(tmp_path, rng)
    for src in seeds:
        _check(src)  # the intact file reads (or is refused) cleanly too
    work = tmp_path / "fuzz"
    work.mkdir()
    for k, src in enumerate(seeds):
        for path, data in _variants(src, work, rng, k):
            path.write_bytes(data)
            _check(path)


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_random_bytes_under_each_extension(tmp_path, ext):
    rng = np.random.default_rng(abs(hash(ext)) % 2 ** 32)
    for size in (1, 16, 131, 400, 3000):
        p = tmp_path / f"random{size}{ext}"
        p.write_bytes(rng.integers(0, 256, size).astype(np.uint8).tobytes())
        _check(p)
