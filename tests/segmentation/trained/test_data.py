"""The data module: simulated frames on the fly, dataset folders, subject splits."""

import csv

import numpy as np
import pytest

pytest.importorskip("lightning")

from layerseg.errors import DatasetError  # noqa: E402
from layerseg.io.dataset import read_dataset  # noqa: E402
from layerseg.segmentation.trained.data import (FrameDataModule, SimulatedFrames,  # noqa: E402
                                                split_rows)


def test_simulated_frames_are_reproducible_per_index():
    ds = SimulatedFrames(3, "train", seed=5, shape=(64, 64), depth_mm=6.0, width_mm=6.4)
    a, b, c = ds.raw(1), ds.raw(1), ds.raw(2)
    np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(a["image"], c["image"])
    other = SimulatedFrames(3, "val", seed=5, shape=(64, 64), depth_mm=6.0, width_mm=6.4)
    assert not np.array_equal(a["image"], other.raw(1)["image"])   # splits differ


def test_simulated_batches_at_the_network_spacing():
    dm = FrameDataModule(spacing_mm=(0.1, 0.1), patch_size=(32, 32), batch_size=2,
                         sim_frames=(2, 1, 1), sim_shape=(96, 96), sim_depth_mm=6.0,
                         sim_width_mm=6.4, elasto=True)
    dm.setup("fit")
    b = next(iter(dm.train_dataloader()))
    assert b["image"].shape == (2, 2, 32, 32) and b["label"].shape == (2, 1, 32, 32)
    assert b["label"].dtype.is_floating_point is False
    assert int(b["label"].min()) >= 0 and int(b["label"].max()) <= 7
    v = next(iter(dm.val_dataloader()))
    assert v["image"].shape == (1, 2, 60, 64)          # 6 mm x 6.4 mm at 0.1 mm
    assert v["spacing_mm"] == [(0.1, 0.1)]
    assert 0.0 <= float(v["image"][:, 0].min()) and float(v["image"][:, 0].max()) <= 1.0


def test_dataset_folder_split_by_manifest(tiny_dataset):
    dm = FrameDataModule(datasets=[str(tiny_dataset)], patch_size=(64, 64), batch_size=2)
    dm.setup("fit")
    assert len(dm.split("train")) == 2 and len(dm.split("val")) == 1
    b = next(iter(dm.train_dataloader()))
    assert b["image"].shape == (2, 1, 64, 64)
    dm.setup("test")
    assert [dm.split("test").raw(0)["id"]] == ["f3"]


def _rewrite(root, tmp_path, edit):
    import shutil
    dst = tmp_path / "ds"
    shutil.copytree(root, dst)
    with open(dst / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    rows = edit(rows) or rows
    with open(dst / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return dst


def test_subject_in_two_splits_is_refused(tiny_dataset, tmp_path):
    def edit(rows):
        rows[1]["subject_id"] = "s2"       # s2 is also the val subject
    dst = _rewrite(tiny_dataset, tmp_path, edit)
    with pytest.raises(DatasetError, match="subject 's2' is in two splits") as e:
        FrameDataModule(datasets=[str(dst)]).setup("fit")
    assert "manifest.csv" in str(e.value)


def test_subject_ids_are_local_to_their_dataset_folder(tiny_dataset, tmp_path):
    # two simulated sets (or two cohorts) both number their subjects from s0: the same id in
    # two folders is two people, so its frames may sit in different splits of each folder
    a = _rewrite(tiny_dataset, tmp_path / "a", lambda rows: None)

    def flip(rows):
        for r in rows:
            r["split"] = {"train": "val", "val": "train"}.get(r["split"], r["split"])
    b = _rewrite(tiny_dataset, tmp_path / "b", flip)
    dm = FrameDataModule(datasets=[str(a), str(b)])
    dm.setup("fit")
    assert len(dm.split("train")) == 3 and len(dm.split("val")) == 3


def test_empty_split_is_refused(tiny_dataset, tmp_path):
    def edit(rows):
        rows[2]["split"] = "train"
    dst = _rewrite(tiny_dataset, tmp_path, edit)
    with pytest.raises(DatasetError, match="the val split is empty"):
        FrameDataModule(datasets=[str(dst)]).setup("fit")
    with pytest.raises(DatasetError, match="the train split is empty"):
        FrameDataModule(sim_frames=(0, 1, 1)).setup("fit")


def test_unsplit_subjects_never_straddle(tiny_dataset, tmp_path):
    def edit(rows):
        extra = [dict(r, id=r["id"] + "b") for r in rows]
        for r in rows + extra:
            r["split"] = ""
        return rows + extra                  # every subject has two frames, no split
    ds = read_dataset(_rewrite(tiny_dataset, tmp_path, edit), validate=False)
    parts = split_rows([ds], 0.25, 0.25, seed=1)
    where = {}
    for s, items in parts.items():
        for d, j in items:
            where.setdefault(d.rows[j]["subject_id"], set()).add(s)
    assert all(len(v) == 1 for v in where.values()) and len(where) == 4
    assert [len(parts[s]) for s in ("train", "val", "test")] == [4, 2, 2]


def test_bad_labels_and_shapes_are_refused(tiny_dataset, tmp_path):
    from PIL import Image
    dst = _rewrite(tiny_dataset, tmp_path, lambda rows: None)
    lab = np.array(Image.open(dst / "labels" / "f0.png"))
    lab[0, 0] = 9
    Image.fromarray(lab).save(dst / "labels" / "f0.png")
    Image.fromarray(lab[:-1]).save(dst / "labels" / "f1.png")
    with pytest.raises(DatasetError) as e:
        FrameDataModule(datasets=[str(dst)]).setup("fit")
    msg = str(e.value)
    assert "f0" in msg and "f1" in msg and "shape" in msg


def test_scanner_augmented_patches_are_valid_and_reproducible():
    import torch

    dm = FrameDataModule(spacing_mm=(0.05, 0.05), patch_size=(96, 48), scanner_augment=True,
                         layer_thickness_prob=1.0, layer_texture_prob=1.0, sim_frames=(3, 1, 1),
                         sim_shape=(160, 128),
                         sim_depth_mm=8.0, sim_width_mm=6.4, seed=4)
    ds = dm.split("train")
    raw = ds.raw(0)
    outs = []
    for _ in range(2):
        ds.transform.set_random_state(5)
        outs.append(ds.transform(dict(raw)))
    a, b = outs
    assert a["image"].shape == (1, 96, 48) and a["label"].shape == (1, 96, 48)
    assert a["image"].dtype == torch.float32 and a["label"].dtype == torch.long
    assert 0.0 <= float(a["image"].min()) and float(a["image"].max()) <= 1.0
    assert set(a["label"].unique().tolist()) <= set(range(8))
    torch.testing.assert_close(a["image"], b["image"])
    torch.testing.assert_close(a["label"], b["label"])
    # the strong pipeline holds the scanner augmentations; the plain one does not
    names = {type(t).__name__ for t in ds.transform.transforms}
    assert {"RandLayerContrastd", "RandSpeckleSized", "RandSpacingScaled", "RandAffined",
            "RandHistogramShiftd", "RandLayerThicknessd", "RandLayerTextured"} <= names
    plain = FrameDataModule(sim_frames=(1, 1, 1)).transforms(train=True)
    assert "RandLayerContrastd" not in {type(t).__name__ for t in plain.transforms}
    # the per-layer thickness warp only when asked (the shipped config's pipeline unchanged)
    no_warp = FrameDataModule(sim_frames=(1, 1, 1), scanner_augment=True).transforms(train=True)
    assert "RandLayerThicknessd" not in {type(t).__name__ for t in no_warp.transforms}
    with pytest.raises(DatasetError, match="layer_thickness_prob"):
        FrameDataModule(layer_thickness_prob=1.5)
    with pytest.raises(DatasetError, match="layer_texture_prob"):
        FrameDataModule(layer_texture_prob=-0.1)
