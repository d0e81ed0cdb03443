import numpy as np
import pytest

from layerseg import Frame, FrameMeta
from layerseg.errors import DatasetError
from layerseg.io import DatasetWriter, read_dataset


def _frame(rng, shape=(20, 30), elasto=True):
    b = rng.uniform(0, 255, shape).astype(np.float32)
    e = rng.uniform(5, 30, shape).astype(np.float32) if elasto else None
    if e is not None:
        e[0, :] = np.nan
    return Frame(np.rint(b), (0.025, 0.05), dynamic_range_db=60, elasto=e,
                 elasto_kind="swe_kpa" if elasto else None,
                 meta=FrameMeta(region="cheek", frequency_mhz=24.0))


def test_round_trip(tmp_path, rng):
    f = _frame(rng)
    lab = rng.integers(0, 8, f.shape).astype(np.uint8)
    with DatasetWriter(tmp_path / "ds") as w:
        w.add(f, "f1", subject_id="s1", label=lab, truth={"a": np.float32(1.5)}, split="test",
              age=44, sex="F")
        w.add(_frame(rng, elasto=False), "f2", subject_id="s1")
    ds = read_dataset(tmp_path / "ds")
    assert ds.ids == ["f1", "f2"]
    it = ds["f1"]
    np.testing.assert_array_equal(it.frame.bmode, f.bmode)
    np.testing.assert_array_equal(it.label, lab)
    np.testing.assert_array_equal(np.isnan(it.frame.elasto), np.isnan(f.elasto))
    assert it.frame.elasto_kind == "swe_kpa"
    assert it.frame.spacing_mm == (0.025, 0.05) and it.frame.meta.calibration == "manifest"
    assert it.frame.dynamic_range_db == 60 and it.frame.meta.region == "cheek"
    assert it.truth == {"a": 1.5} and it.row["age"] == "44" and it.subject_id == "s1"
    assert ds[1].frame.elasto is None


def test_writer_never_overwrites(tmp_path, rng):
    with DatasetWriter(tmp_path) as w:
        w.add(_frame(rng), "f1")
    with pytest.raises(DatasetError, match="refusing to overwrite"):
        DatasetWriter(tmp_path)
    w = DatasetWriter(tmp_path / "other")
    w.add(_frame(rng), "a")
    with pytest.raises(DatasetError, match="duplicate"):
        w.add(_frame(rng), "a")
    with pytest.raises(DatasetError, match="safe file name"):
        w.add(_frame(rng), "../evil")


def test_validation_lists_every_problem(tmp_path, rng):
    root = tmp_path / "ds"
    with DatasetWriter(root) as w:
        for i in range(3):
            w.add(_frame(rng), f"f{i}", label=np.zeros((20, 30), np.uint8))
    # break it in three ways
    (root / "images" / "f0.png").unlink()
    from PIL import Image
    Image.fromarray(np.full((20, 30), 9, np.uint8)).save(root / "labels" / "f1.png")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(root / "labels" / "f2.png")
    with pytest.raises(DatasetError) as e:
        read_dataset(root)
    msg = str(e.value)
    assert "f0: image" in msg and "missing" in msg
    assert "f1: label" in msg and "outside 0-7" in msg
    assert "f2: label" in msg and "shape" in msg


def test_missing_spacing_and_manifest(tmp_path, rng):
    with pytest.raises(DatasetError, match="no manifest.csv"):
        read_dataset(tmp_path)
    (tmp_path / "images").mkdir()
    from PIL import Image
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "images" / "a.png")
    (tmp_path / "manifest.csv").write_text("id,image\na,images/a.png\n")
    with pytest.raises(DatasetError, match="no spacing"):
        read_dataset(tmp_path)
    (tmp_path / "manifest.csv").write_text("id,image\na,images/a.png\na,images/a.png\n")
    with pytest.raises(DatasetError, match="duplicate id"):
        read_dataset(tmp_path)


def test_nifti_header_spacing(tmp_path):
    import nibabel as nib
    img = np.arange(6 * 4, dtype=np.float32).reshape(6, 4)  # (rows=depth, cols=lateral)
    ni = nib.Nifti1Image(img.T[..., None], np.diag([0.05, 0.025, 1.0, 1.0]))
    nib.save(ni, tmp_path / "a.nii.gz")
    (tmp_path / "manifest.csv").write_text("id,image\na,a.nii.gz\n")
    it = read_dataset(tmp_path)[0]
    np.testing.assert_array_equal(it.frame.bmode, img)
    assert it.frame.spacing_mm == pytest.approx((0.025, 0.05)) and it.frame.meta.calibration == "header"


# ------------------------------------------------------------------ manifest encodings
def _one_frame_dataset(root, rng):
    with DatasetWriter(root) as w:
        w.add(_frame(rng, elasto=False), "f1", region="jowl", device="Écho-24")
    return (root / "manifest.csv").read_text(encoding="utf-8")


@pytest.mark.parametrize("encoding,bom", [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"),
                                          ("utf-16-le", b"\xff\xfe"),
                                          ("utf-16-be", b"\xfe\xff")])
def test_manifest_encodings_detected(tmp_path, rng, encoding, bom):
    root = tmp_path / "ds"
    text = _one_frame_dataset(root, rng)
    (root / "manifest.csv").write_bytes(bom + text.encode(encoding))
    ds = read_dataset(root)
    assert ds.ids == ["f1"]  # a BOM left in place would rename the first column
    assert ds[0].row["device"] == "Écho-24" and ds[0].frame.meta.device == "Écho-24"


def test_latin1_byte_in_utf8_manifest_is_named(tmp_path, rng):
    root = tmp_path / "ds"
    text = _one_frame_dataset(root, rng)
    raw = text.encode("utf-8").replace("Écho".encode("utf-8"), "Écho".encode("latin-1"))
    (root / "manifest.csv").write_bytes(raw)
    with pytest.raises(DatasetError) as ei:
        read_dataset(root)
    msg = str(ei.value)
    assert str(root / "manifest.csv") in msg and "not valid UTF-8" in msg
    at = raw.index(b"\xc9")
    assert f"byte offset {at}" in msg and "line 2" in msg
    assert not isinstance(ei.value, UnicodeDecodeError)


@pytest.mark.parametrize("garbage", [bytes(range(256)) * 4, b"\x00\x01id,image\n\x00\x00",
                                     b"\xff\xfe\x00\xd8"])  # last: UTF-16 BOM, lone surrogate
def test_binary_manifest_is_a_dataset_error(tmp_path, garbage):
    (tmp_path / "manifest.csv").write_bytes(garbage)
    with pytest.raises(DatasetError, match="manifest"):
        read_dataset(tmp_path)
