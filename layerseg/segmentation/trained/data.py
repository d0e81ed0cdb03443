"""The Lightning data module of the trained segmenters: dataset folders or frames simulated on the
fly, through MONAI dictionary transforms.

Samples are dictionaries: ``image`` float32 (C, rows, cols) (B-mode 0-1, then the elastography
channel when asked for), ``label`` int64 (1, rows, cols) with values 0-7, ``spacing_mm`` (the
network's), ``spacing_mm_orig`` (the frame's), ``region`` and ``id``.

Splits are by subject (``subject_id`` of the manifest), never by frame: the manifest's ``split``
column is honoured where given (one subject in two splits is refused); subjects without one are
drawn into train / val / test by `val_fraction` / `test_fraction` with `seed`. With no dataset
folder (the default) frames are simulated by `layerseg.simulate.simulate_frame`, each seeded by
(`seed`, split, index), so frame ``i`` of a split is the same in every worker and every run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from monai.transforms import (Compose, ConcatItemsd, EnsureTyped, RandAdjustContrastd,
                              RandAffined, RandFlipd, RandHistogramShiftd, RandSpatialCropd,
                              ScaleIntensityRanged, SelectItemsd, SpatialPadd)
from torch.utils.data import DataLoader, Dataset

from ...errors import DatasetError
from .transforms import (NormaliseElastod, RandDynamicRanged, RandGaind, RandLayerContrastd,
                         RandLayerTextured, RandLayerThicknessd, RandLowerFrequencyd,
                         RandSpacingScaled, RandSpeckled, RandSpeckleSized, RandTGCSloped,
                         ResampleToSpacingd)

__all__ = ["FrameDataModule", "SimulatedFrames", "FolderFrames", "frame_sample", "split_rows",
           "SPLITS"]

SPLITS = ("train", "val", "test")
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}


def frame_sample(frame, label: np.ndarray | None, *, frame_id: str = "",
                 with_elasto: bool = False) -> dict[str, Any]:
    """A raw sample dictionary (before the transforms) from a `layerseg.Frame`.

    Parameters
    ----------
    frame : Frame
        Its B-mode (grey 0-255), spacing and, with `with_elasto`, elastography are taken.
    label : ndarray of int, shape (rows, cols), optional
    frame_id : str
    with_elasto : bool

    Returns
    -------
    dict
        ``image`` (1, rows, cols) float32 grey 0-255, ``label`` (1, rows, cols) uint8 (zeros when
        none), ``elasto`` (1, rows, cols) with `with_elasto`, ``spacing_mm``, ``region``, ``id``.
    """
    d: dict[str, Any] = {"image": np.asarray(frame.display(), np.float32)[None],
                         "spacing_mm": tuple(float(s) for s in frame.spacing_mm),
                         "region": frame.meta.region or "", "id": frame_id}
    d["label"] = (np.zeros(frame.shape, np.uint8) if label is None
                  else np.asarray(label, np.uint8))[None]
    if with_elasto:
        if frame.elasto is None:
            raise DatasetError("the model takes elastography as a second channel but this frame "
                               "has none", frame.meta.source or frame_id or None)
        d["elasto"] = np.asarray(frame.elasto, np.float32)[None]
        d["elasto_kind"] = frame.elasto_kind or "swe_kpa"
    return d


class SimulatedFrames(Dataset):
    """`n` frames simulated on the fly, frame ``i`` seeded by (`seed`, `split`, ``i``).

    Parameters
    ----------
    n : int
    split : {'train', 'val', 'test'}
    seed : int
    shape : (rows, cols)
    depth_mm, width_mm : float
        Field of view (with `shape` it sets the spacing).
    regions : list of str or None
        Drawn uniformly; None: every simulated region.
    with_elasto : bool
    transform : callable, optional
    """

    def __init__(self, n: int, split: str, seed: int, shape=(256, 256), depth_mm: float = 12.0,
                 width_mm: float = 12.8, regions=None, with_elasto: bool = False, transform=None):
        from ...simulate import SIM_REGIONS

        self.n, self.split, self.seed = int(n), split, int(seed)
        self.shape, self.depth_mm, self.width_mm = tuple(shape), float(depth_mm), float(width_mm)
        self.regions = list(regions) if regions else list(SIM_REGIONS)
        self.with_elasto = with_elasto
        self.transform = transform

    def __len__(self) -> int:
        return self.n

    def raw(self, i: int) -> dict[str, Any]:
        """Sample `i` before the transforms."""
        from ...simulate import simulate_frame

        ss = np.random.SeedSequence([self.seed, _SPLIT_CODE[self.split], int(i)])
        rng = np.random.default_rng(ss)
        region = self.regions[int(rng.integers(len(self.regions)))]
        age = float(rng.uniform(20, 80))
        sim = simulate_frame(rng, region=region, age=age, shape=self.shape,
                             depth_mm=self.depth_mm, width_mm=self.width_mm,
                             with_elasto=self.with_elasto)
        return frame_sample(sim.frame, sim.labels, frame_id=f"sim-{self.split}-{i}",
                            with_elasto=self.with_elasto)

    def __getitem__(self, i: int) -> dict[str, Any]:
        d = self.raw(i)
        return self.transform(d) if self.transform is not None else d


class FolderFrames(Dataset):
    """Frames of dataset folders: a list of (`layerseg.io.dataset.Dataset`, row index)."""

    def __init__(self, items: list, with_elasto: bool = False, transform=None):
        self.items, self.with_elasto, self.transform = items, with_elasto, transform

    def __len__(self) -> int:
        return len(self.items)

    def raw(self, i: int) -> dict[str, Any]:
        """Sample `i` before the transforms."""
        ds, j = self.items[i]
        item = ds[j]
        return frame_sample(item.frame, item.label, frame_id=item.id,
                            with_elasto=self.with_elasto)

    def __getitem__(self, i: int) -> dict[str, Any]:
        d = self.raw(i)
        return self.transform(d) if self.transform is not None else d


def split_rows(datasets: list, val_fraction: float, test_fraction: float, seed: int
               ) -> dict[str, list]:
    """Assign every row of the datasets to a split, by subject (a subject is a ``subject_id``
    within one dataset folder: ids are local to their dataset).

    Parameters
    ----------
    datasets : list of `layerseg.io.dataset.Dataset`
    val_fraction, test_fraction : float
        Share of the subjects without a manifest ``split`` that go to val and test.
    seed : int

    Returns
    -------
    dict
        ``{'train': [(dataset, row index), ...], 'val': [...], 'test': [...]}``.

    Raises
    ------
    DatasetError
        A row without ``subject_id``, an unknown split name, or one subject in two splits (named,
        with the manifest).
    """
    # subject ids are local to their dataset folder: 'S001' of two cohorts (or of two simulated
    # sets) are two people, so a subject is keyed by (folder, subject_id)
    subject_split: dict[tuple[str, str], str] = {}
    where: dict[tuple[str, str], Path] = {}
    rows: list[tuple[Any, int, tuple[str, str]]] = []
    for ds in datasets:
        mpath = ds.root / "manifest.csv"
        for j, r in enumerate(ds.rows):
            sid = (r.get("subject_id") or "").strip()
            if not sid:
                raise DatasetError(f"frame {r['id']!r} has no subject_id; training splits are by "
                                   "subject, so every row needs one", mpath)
            key = (str(Path(ds.root).resolve()), sid)
            sp = (r.get("split") or "").strip().lower()
            if sp:
                if sp not in SPLITS:
                    raise DatasetError(f"frame {r['id']!r}: split must be one of {SPLITS}, got "
                                       f"{sp!r}", mpath)
                if subject_split.get(key, sp) != sp:
                    raise DatasetError(f"subject {sid!r} is in two splits ({subject_split[key]!r} "
                                       f"in {where[key]} and {sp!r} here, frame {r['id']!r}); a "
                                       "subject must stay in one split", mpath)
                subject_split[key] = sp
                where[key] = mpath
            rows.append((ds, j, key))
    free = sorted({key for _, _, key in rows if key not in subject_split})
    order = np.random.default_rng(seed).permutation(len(free))
    n_val = int(round(len(free) * val_fraction))
    n_test = int(round(len(free) * test_fraction))
    for rank, k in enumerate(order):
        subject_split[free[k]] = ("val" if rank < n_val else
                                  "test" if rank < n_val + n_test else "train")
    out: dict[str, list] = {s: [] for s in SPLITS}
    for ds, j, key in rows:
        out[subject_split[key]].append((ds, j))
    return out


class FrameDataModule(LightningDataModule):
    """Training, validation and test frames for a `SegmentationTask`.

    Parameters
    ----------
    datasets : list of str
        Dataset folders (DESIGN.md layout), mixed freely, simulated and real alike. Empty (the
        default): frames are simulated on the fly.
    spacing_mm : (float, float)
        Pixel spacing (axial, lateral) in mm every frame is resampled to.
    patch_size : (int, int)
        Training patch (rows, cols) at `spacing_mm`; frames smaller are padded.
    elasto : bool
        Elastography as a second input channel.
    batch_size : int
        Training batch size.
    val_batch_size : int
        Validation/test batch size (whole frames; 1 unless every frame has one size).
    num_workers : int
        Dataloader worker processes.
    augment : bool
        Ultrasound augmentation of the training frames (gain, dynamic range, TGC slope,
        speckle, lower-frequency blur, horizontal flip).
    scanner_augment : bool
        With `augment`, also what changes between scanners and subjects, so that no one
        speckle size, thickness range or brightness ranking identifies a layer: thickness
        scaling (stated spacing scaled, `RandSpacingScaled`), per-layer brightness offsets that
        re-rank the layers (`RandLayerContrastd`), speckle of another grain
        (`RandSpeckleSized`), monotone grey curves and gamma (MONAI `RandHistogramShiftd`,
        `RandAdjustContrastd`), and a probe tilt and skin-depth shift (MONAI `RandAffined`).
    layer_thickness_prob : float
        With `scanner_augment`, the probability that a training frame's layers are each
        stretched or compressed by their own factor (`RandLayerThicknessd`, 0.6-1.8), on the
        whole frame before it is cropped; 0 (default) leaves it out.
    layer_texture_prob : float
        With `scanner_augment`, the probability that a training patch's layers each lose their
        own texture for plain speckle around their local brightness (`RandLayerTextured`), before
        the layer brightness offsets; 0 (default) leaves it out.
    val_fraction, test_fraction : float
        Share of subjects without a manifest split sent to val / test.
    seed : int
        Split and simulation seed.
    sim_frames : (int, int, int)
        Simulated frames per epoch for train, val and test.
    sim_shape : (int, int)
        Simulated frame size (rows, cols); small keeps CPU runs feasible.
    sim_depth_mm, sim_width_mm : float
        Simulated field of view.
    sim_regions : list of str, optional
        Regions to simulate (default: all).
    """

    def __init__(self, datasets: list[str] | None = None,
                 spacing_mm: tuple[float, float] = (0.05, 0.05),
                 patch_size: tuple[int, int] = (128, 128), elasto: bool = False,
                 batch_size: int = 4, val_batch_size: int = 1, num_workers: int = 0,
                 augment: bool = True, scanner_augment: bool = False,
                 layer_thickness_prob: float = 0.0, layer_texture_prob: float = 0.0,
                 val_fraction: float = 0.2, test_fraction: float = 0.1,
                 seed: int = 0, sim_frames: tuple[int, int, int] = (64, 8, 8),
                 sim_shape: tuple[int, int] = (256, 256), sim_depth_mm: float = 12.0,
                 sim_width_mm: float = 12.8, sim_regions: list[str] | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.datasets = [str(p) for p in (datasets or [])]
        self.spacing_mm = tuple(float(s) for s in spacing_mm)
        self.patch_size = tuple(int(p) for p in patch_size)
        if len(self.spacing_mm) != 2 or min(self.spacing_mm) <= 0:
            raise DatasetError(f"spacing_mm must be two positive mm values, got {spacing_mm!r}")
        if len(self.patch_size) != 2 or min(self.patch_size) < 8:
            raise DatasetError(f"patch_size must be two sizes of at least 8, got {patch_size!r}")
        self.elasto = elasto
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.num_workers, self.augment = num_workers, augment
        self.scanner_augment = scanner_augment
        if not 0.0 <= float(layer_thickness_prob) <= 1.0:
            raise DatasetError(f"layer_thickness_prob must be within 0-1, got "
                               f"{layer_thickness_prob!r}")
        self.layer_thickness_prob = float(layer_thickness_prob)
        if not 0.0 <= float(layer_texture_prob) <= 1.0:
            raise DatasetError(f"layer_texture_prob must be within 0-1, got "
                               f"{layer_texture_prob!r}")
        self.layer_texture_prob = float(layer_texture_prob)
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.sim_frames, self.sim_shape = tuple(sim_frames), tuple(sim_shape)
        self.sim_depth_mm, self.sim_width_mm = sim_depth_mm, sim_width_mm
        self.sim_regions = sim_regions
        self._splits: dict[str, Dataset] = {}

    @property
    def in_channels(self) -> int:
        """Channels of the network input: 1 (B-mode), 2 with elastography."""
        return 2 if self.elasto else 1

    # transforms ----------------------------------------------------------------------
    def transforms(self, train: bool) -> Compose:
        """The MONAI pipeline of one split: resample to `spacing_mm`, scale grey to 0-1, pad
        and crop to the patch then augment (train), elastography channel, pad to the patch
        (val/test), tensors."""
        img_keys = ["image", "elasto"] if self.elasto else ["image"]
        all_keys = img_keys + ["label"]
        strong = train and self.augment and self.scanner_augment
        t: list = [RandSpacingScaled(prob=0.6)] if strong else []
        t += [ResampleToSpacingd(all_keys, self.spacing_mm,
                                 mode=["linear"] * len(img_keys) + ["nearest"]),
              ScaleIntensityRanged("image", a_min=0.0, a_max=255.0, b_min=0.0, b_max=1.0,
                                   clip=True)]
        if strong and self.layer_thickness_prob > 0:   # the whole frame, before the crop
            t += [RandLayerThicknessd(img_keys, prob=self.layer_thickness_prob)]
        if train:   # crop first: every augmentation then works on the patch alone
            t += [SpatialPadd(all_keys, spatial_size=self.patch_size, mode="constant"),
                  RandSpatialCropd(all_keys, roi_size=self.patch_size, random_size=False)]
        if strong and self.layer_texture_prob > 0:
            t += [RandLayerTextured("image", prob=self.layer_texture_prob)]
        if strong:
            t += [RandLayerContrastd("image", prob=0.7),
                  RandLowerFrequencyd("image", prob=0.4, axial_sigma_range_px=(0.3, 2.0),
                                      lateral_ratio=1.0),
                  RandSpeckleSized("image", prob=0.5)]
        if train and self.augment:
            t += [RandGaind("image", prob=0.5), RandDynamicRanged("image", prob=0.3),
                  RandTGCSloped("image", prob=0.3), RandSpeckled("image", prob=0.3),
                  RandLowerFrequencyd("image", prob=0.3)]
        if strong:
            t += [RandHistogramShiftd("image", num_control_points=(5, 10), prob=0.3),
                  RandAdjustContrastd("image", gamma=(0.6, 1.6), prob=0.3),
                  RandAffined(all_keys, prob=0.5, rotate_range=(0.1,),
                              translate_range=((-8, 40), (0, 0)),
                              mode=["bilinear"] * len(img_keys) + ["nearest"],
                              padding_mode="zeros")]
        if train and self.augment:
            t += [RandFlipd(all_keys, prob=0.5, spatial_axis=1)]
        if self.elasto:
            t += [NormaliseElastod("elasto")]
        t += [EnsureTyped(img_keys, dtype=torch.float32, track_meta=False)]
        if self.elasto:
            t += [ConcatItemsd(["image", "elasto"], "image", dim=0)]
        if not train:
            t += [SpatialPadd(["image", "label"], spatial_size=self.patch_size, mode="constant")]
        t += [SelectItemsd(["image", "label", "spacing_mm", "spacing_mm_orig", "region", "id"]),
              EnsureTyped(["image"], dtype=torch.float32, track_meta=False),
              EnsureTyped(["label"], dtype=torch.long, track_meta=False)]
        return Compose(t)

    # splits --------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Build the splits a stage needs; dataset folders are validated first (missing files,
        shape mismatches, labels outside 0-7, empty splits: `DatasetError`)."""
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",),
                  "predict": ("test",)}.get(stage or "fit", SPLITS)
        if not self.datasets:
            for s in needed:
                n = self.sim_frames[_SPLIT_CODE[s]]
                if n < 1:
                    raise DatasetError(f"the {s} split is empty: sim_frames gives it {n} frames")
                self._splits[s] = SimulatedFrames(
                    n, s, self.seed, self.sim_shape, self.sim_depth_mm, self.sim_width_mm,
                    self.sim_regions, self.elasto, self.transforms(train=s == "train"))
            return
        from ...io.dataset import read_dataset

        opened = [read_dataset(p) for p in self.datasets]   # validates every file
        for ds in opened:
            unlabelled = [r["id"] for r in ds.rows if not r.get("label")]
            if unlabelled:
                raise DatasetError(f"{len(unlabelled)} frame(s) have no label map (first: "
                                   f"{unlabelled[0]!r}); training needs labels",
                                   ds.root / "manifest.csv")
            if self.elasto:
                no_el = [r["id"] for r in ds.rows if not r.get("elasto")]
                if no_el:
                    raise DatasetError(f"elasto=true but {len(no_el)} frame(s) have no "
                                       f"elastography (first: {no_el[0]!r})",
                                       ds.root / "manifest.csv")
        parts = split_rows(opened, self.val_fraction, self.test_fraction, self.seed)
        for s in needed:
            if not parts[s]:
                raise DatasetError(f"the {s} split is empty (no subject assigned to it; set "
                                   f"'split' in the manifest or --data.val_fraction / "
                                   f"--data.test_fraction)", ", ".join(self.datasets))
            self._splits[s] = FolderFrames(parts[s], self.elasto,
                                           self.transforms(train=s == "train"))

    def split(self, name: str) -> Dataset:
        """The dataset of a split built by `setup`."""
        if name not in self._splits:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[name])
        return self._splits[name]

    def _loader(self, name: str, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(self.split(name), batch_size=batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, collate_fn=_collate,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.val_batch_size, False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.val_batch_size, False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", self.val_batch_size, False)


def _collate(batch: list[dict]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in batch[0]:
        v = [b[k] for b in batch]
        if isinstance(v[0], torch.Tensor):
            out[k] = torch.stack([torch.as_tensor(x) for x in v])
        else:
            out[k] = v
    return out
