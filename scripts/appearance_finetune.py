#!/usr/bin/env python
"""Appearance-augmentation experiments on the shipped default model (model card, "Tried and not
adopted"): fine-tune `layerseg/data/models/default.ckpt` for a few steps on the training frames
with one extra augmentation, inserted after the per-layer contrast change, and compare with the
same fine-tune without it (MODE ``plain``).

MODE:

* ``plain``     no extra augmentation (the control);
* ``ramp``      a -12 to +3 dB linear ramp across the dermis, top to bottom (half the patches);
* ``compress``  every tissue layer's mean grey level pulled towards the tissue's common mean,
                keeping 20-90 % of its contrast (half the patches);
* ``deep``      where deep fat or muscle runs to the frame bottom, cut at a drawn depth and the
                rest filled with plain speckle at its local level -15 to +4 dB, labelled 0
                (unmodelled deep tissue), under a fascia line in half of them (30 %);
* ``bone``      the bone shadow filled with dim speckle, -22 to -3 dB re the tissue above,
                fading with depth (40 %).

Usage::

    python scripts/appearance_finetune.py MODE OUT_DIR [STEPS] [--data DIR] [--extra DIR ...]
        [--patch ROWS COLS] [--batch N]
    python scripts/ship_model.py OUT_DIR/last.ckpt --out OUT.ckpt --name NAME \
        --config configs/default_cpu.yaml
    layerseg bench accuracy --data EVAL_SET --model OUT.ckpt --json OUT.json

DIR holds the ``default`` and ``wide`` training sets of `scripts/train_default.sh`
(``runs/default_data`` there). 1,200 steps take about 10 min on 2 CPU cores. Research code for
the model card's figures; none of these augmentations is in the shipped recipe.
"""
import argparse

import lightning as L
import numpy as np
import torch
from monai.transforms import Compose, MapTransform, RandomizableTransform

from layerseg.segmentation.trained.data import FrameDataModule
from layerseg.segmentation.trained.predict import load_task
from layerseg.segmentation.trained.transforms import RandLayerContrastd, RandSpeckleSize


def _like(arr, ref):
    """`arr` as a tensor when `ref` (the entry it replaces) is one, else as it is."""
    return torch.as_tensor(arr) if isinstance(ref, torch.Tensor) else arr


class _ImageAug(RandomizableTransform, MapTransform):
    """An augmentation of ``d["image"]`` that reads ``d["label"]``: drawn with `prob`, then
    `_apply(d)` (each subclass's own)."""

    def __init__(self, prob):
        RandomizableTransform.__init__(self, prob)
        MapTransform.__init__(self, ["image"])

    def __call__(self, d):
        self.randomize(None)
        if not self._do_transform:
            return d
        return self._apply(d)


class _SpeckleAug(_ImageAug):
    """An `_ImageAug` that fills regions with fresh speckle (`RandSpeckleSize`: grain and
    strength drawn from this transform's own stream)."""

    def __init__(self, prob, dr):
        super().__init__(prob)
        self.dr = dr
        self.sp = RandSpeckleSize(1.0, (0.4, 2.5), (0.4, 4.0), (0.6, 1.0), dr)

    def set_random_state(self, seed=None, state=None):
        super().set_random_state(seed, state)
        self.sp.set_random_state(state=self.R)
        return self


class RandDermisRamp(_ImageAug):
    def __init__(self, prob=0.5, rng_db=(-12.0, 3.0), dr=60.0):
        super().__init__(prob)
        self.rng_db, self.dr, self.s = rng_db, dr, 0.0

    def _apply(self, d):
        self.s = float(self.R.uniform(*self.rng_db))
        img = d["image"]; lb = np.asarray(d["label"])[0]
        der = lb == 2
        if not der.any():
            return d
        H = der.shape[0]
        top = np.argmax(der, axis=0); bot = H - 1 - np.argmax(der[::-1], axis=0)
        rr = np.arange(H)[:, None]
        frac = np.clip((rr - top) / np.maximum(bot - top, 1), 0, 1)
        add = np.where(der, frac * self.s / self.dr, 0.0).astype(np.float32)
        d["image"] = img + _like(add, img)[None]
        return d


class RandCompress(_ImageAug):
    """Pull every tissue layer's mean grey level towards the tissue's common mean (keep a
    fraction alpha of each layer's contrast), offsets blurred as RandLayerContrast's."""
    def __init__(self, prob=0.5, keep=(0.2, 0.9), blur_px=1.5):
        super().__init__(prob)
        self.keep, self.blur = keep, blur_px

    def _apply(self, d):
        import scipy.ndimage as ndi
        a = float(self.R.uniform(*self.keep))
        img = np.asarray(d["image"], np.float32); lb = np.asarray(d["label"])[0].astype(int)
        tissue = (lb >= 2) & (lb <= 6)
        if tissue.sum() < 10:
            return d
        common = float(img[0][tissue].mean())
        off = np.zeros(8, np.float32)
        for k in range(2, 8):
            m = lb == k
            if m.sum() > 10:
                off[k] = (1 - a) * (common - float(img[0][m].mean()))
        o = ndi.gaussian_filter(off[np.clip(lb, 0, 7)], self.blur, mode="nearest")
        out = np.clip(img + o[None], 0, 1).astype(np.float32)
        d["image"] = _like(out, d["image"])
        return d


class RandDeepTissue(_SpeckleAug):
    """Cut the deepest soft layer (deep fat or muscle running to the patch bottom) at a smooth
    depth; below: plain speckle around its local level + an offset, labelled 0 (deep tissue)."""
    def __init__(self, prob=0.3, frac=(0.15, 0.8), off_db=(-15.0, 4.0), line_db=(2.0, 12.0),
                 dr=60.0):
        super().__init__(prob, dr)
        self.frac, self.off_db, self.line_db = frac, off_db, line_db

    def _apply(self, d):
        import scipy.ndimage as ndi
        img_t, lab_t = d["image"], d["label"]
        img = np.array(img_t, dtype=np.float32); lab = np.array(lab_t)
        L = lab[0].astype(np.int64); H, W = L.shape
        nz = L > 0
        has = nz.any(0)
        last = H - 1 - np.argmax(nz[::-1], 0)
        deepest = L[last, np.arange(W)]
        content = np.abs(img[0]) > 1e-6
        bottom = H - 1 - np.argmax(content[::-1], 0)          # last row above the padding
        ok = has & np.isin(deepest, (5, 6)) & (last >= bottom - 3) & content.any(0)
        if ok.mean() < 0.5:
            return d
        k = 6 if (deepest[ok] == 6).sum() >= (deepest[ok] == 5).sum() else 5
        cols = ok & (deepest == k)
        m = (L == k)
        top = np.where(cols, np.argmax(m, 0), H)
        thick = bottom - top
        f = self.R.uniform(*self.frac)
        x = np.arange(W)
        amp, period = self.R.uniform(0, 8), self.R.uniform(W / 2, 3 * W)
        wob = amp * np.sin(2 * np.pi * x / period + self.R.uniform(0, 6.3))
        cut = np.clip(top + f * thick + wob, top + 4, bottom - 4)
        rr = np.arange(H)[:, None]
        mask = (rr >= cut[None, :]) & (rr <= bottom[None, :]) & cols[None, :]
        if mask.sum() < 50:
            return d
        mf = m.astype(np.float64)
        den = ndi.gaussian_filter(mf, 8, mode="nearest")
        self.sp._draw(img)
        noise = self.sp.noise_db - float(self.sp.noise_db.mean())
        off = self.R.uniform(*self.off_db) / self.dr
        line = self.R.uniform(*self.line_db) / self.dr if self.R.random() < 0.5 else 0.0
        prof = np.exp(-0.5 * ((rr - cut[None, :]) / 1.0) ** 2) * cols[None, :]
        for ch in range(img.shape[0]):
            base = ndi.gaussian_filter(img[ch] * mf, 8, mode="nearest") / np.maximum(den, 1e-6)
            new = np.clip(base + off + noise / self.dr, 0, 1)
            out = np.where(mask, new, img[ch]) + line * prof
            img[ch] = np.clip(out, 0, 1)
        lab[0][mask] = 0
        d["image"], d["label"] = _like(img, img_t), _like(lab, lab_t)
        return d


class RandBoneFill(_SpeckleAug):
    """Fill the acoustic shadow under the bone line with dim speckle (bone penetration, a
    scanner's TGC lifting the shadow), decaying with depth; label unchanged."""
    def __init__(self, prob=0.4, off_db=(-22.0, -3.0), keep_px=(2, 5), decay_px=(10.0, 120.0),
                 dr=60.0):
        super().__init__(prob, dr)
        self.off_db, self.keep_px, self.decay_px = off_db, keep_px, decay_px

    def _apply(self, d):
        import scipy.ndimage as ndi
        img_t = d["image"]
        img = np.array(img_t, dtype=np.float32); L = np.array(d["label"])[0].astype(np.int64)
        H, W = L.shape
        bone = L == 7
        cols = bone.any(0)
        if cols.sum() < 8:
            return d
        top = np.where(cols, np.argmax(bone, 0), H)
        keep = int(self.R.randint(*self.keep_px))
        rr = np.arange(H)[:, None]
        content = np.abs(img[0]) > 1e-6
        mask = bone & (rr >= top[None, :] + keep) & content
        if mask.sum() < 50:
            return d
        # the level of the soft tissue just above the bone, per column
        above = (rr >= top[None, :] - 25) & (rr < top[None, :] - 3) & cols[None, :] & content
        lev = np.where(above.any(0), (img[0] * above).sum(0) / np.maximum(above.sum(0), 1), 0.0)
        lev = ndi.uniform_filter1d(lev, 15, mode="nearest")
        self.sp._draw(img)
        noise = self.sp.noise_db - float(self.sp.noise_db.mean())
        off = self.R.uniform(*self.off_db) / self.dr
        lam = self.R.uniform(*self.decay_px)
        z = np.maximum(rr - (top[None, :] + keep), 0)
        decay_db = -60.0 * z / lam / 8.0      # about -7.5 dB per decay length
        new = lev[None, :] + off + (noise + decay_db) / self.dr
        for ch in range(img.shape[0]):
            img[ch] = np.where(mask, np.clip(np.maximum(new, img[ch]), 0, 1), img[ch])
        d["image"] = _like(img, img_t)
        return d


MODES = {"plain": None, "ramp": RandDermisRamp, "compress": RandCompress,
         "deep": RandDeepTissue, "bone": RandBoneFill}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=sorted(MODES))
    ap.add_argument("out_dir")
    ap.add_argument("steps", nargs="?", type=int, default=1200)
    ap.add_argument("--data", default="runs/default_data",
                    help="folder with the default and wide training sets")
    ap.add_argument("--patch", type=int, nargs=2, default=(352, 128), metavar=("ROWS", "COLS"),
                    help="training patch at 0.04 mm (the recipe's 352 x 128)")
    ap.add_argument("--batch", type=int, default=8, help="patches per step (the recipe's 8)")
    ap.add_argument("--extra", action="append", default=[], metavar="DIR",
                    help="a further training set (repeatable: a set given twice is drawn from "
                         "twice as often)")
    a = ap.parse_args()
    extra = MODES[a.mode]
    orig = FrameDataModule.transforms

    def transforms(self, train):
        c = orig(self, train)
        if not train or extra is None:
            return c
        ts = list(c.transforms)
        i = [k for k, t in enumerate(ts) if isinstance(t, RandLayerContrastd)][0]
        ts.insert(i + 1, extra())
        return Compose(ts)

    FrameDataModule.transforms = transforms
    L.seed_everything(20)
    task = load_task("layerseg/data/models/default.ckpt").train()
    task.hparams.lr = 1e-3
    dm = FrameDataModule(datasets=[f"{a.data}/default", f"{a.data}/wide", *a.extra],
                         spacing_mm=(0.04, 0.04), patch_size=tuple(a.patch), batch_size=a.batch,
                         val_batch_size=1, num_workers=2, augment=True, scanner_augment=True,
                         val_fraction=0.03, test_fraction=0.0, seed=20)
    tr = L.Trainer(accelerator="cpu", devices=1, max_steps=a.steps, limit_val_batches=0,
                   default_root_dir=a.out_dir, enable_progress_bar=False, logger=False,
                   enable_checkpointing=False)
    tr.fit(task, datamodule=dm)
    tr.save_checkpoint(f"{a.out_dir}/last.ckpt")
    print("fine-tuned", a.mode, "->", f"{a.out_dir}/last.ckpt")


if __name__ == "__main__":
    main()
