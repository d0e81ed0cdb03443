"""scripts/appearance_finetune.py: the experiment augmentations behind the model card's "Tried
and not adopted" rows do what the card says, on a synthetic layered patch."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "appearance_finetune.py"


@pytest.fixture(scope="module")
def mod():
    spec = importlib.util.spec_from_file_location("appearance_finetune", SCRIPT)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def _patch(rng, bottom_label=6, bone_from=None, rows=160, cols=64, pad=20):
    """A (1, rows, cols) patch: gel, entry echo, dermis, fat, SMAS, muscle (or the given deepest
    label) to the content bottom, `pad` rows of zero padding under it; bone from `bone_from`."""
    lab = np.zeros((rows, cols), np.uint8)
    edges = [(5, 1), (8, 2), (40, 3), (80, 4), (88, bottom_label)]
    for top, k in edges:
        lab[top:] = k
    if bone_from is not None:
        lab[bone_from:] = 7
    lab[rows - pad:] = 0
    level = np.array([0.0, 0.9, 0.7, 0.3, 0.8, 0.5, 0.4, 0.9], np.float32)
    img = np.clip(level[lab] + rng.normal(0, 0.05, lab.shape), 0, 1).astype(np.float32)
    img[rows - pad:] = 0.0
    return {"image": img[None], "label": lab[None]}


def test_deep_tissue_cuts_the_deepest_layer_and_labels_the_rest_background(mod):
    rng = np.random.default_rng(0)
    d = _patch(rng)
    t = mod.RandDeepTissue(prob=1.0)
    t.set_random_state(3)
    out = t(dict(d))
    lab0, lab1 = d["label"][0], np.asarray(out["label"])[0]
    changed = lab0 != lab1
    assert changed.any()
    assert set(np.unique(lab0[changed])) == {6} and set(np.unique(lab1[changed])) == {0}
    # every column keeps muscle at its top, and gets background only below it, above the padding
    for c in range(lab1.shape[1]):
        col = lab1[:, c]
        assert col[88] == 6
        assert not changed[140:, c].any()
        z = np.flatnonzero(changed[:, c])
        if z.size:
            assert np.all(np.diff(z) == 1) and z[-1] == 139
    img0, img1 = d["image"][0], np.asarray(out["image"])[0]
    assert np.array_equal(img1[:80], img0[:80])       # above the muscle: untouched
    assert np.all(img1[140:] == 0.0)                   # padding stays padding


def test_deep_tissue_leaves_frames_whose_muscle_ends_in_view(mod):
    rng = np.random.default_rng(1)
    d = _patch(rng, bone_from=120)                     # bone under the muscle
    t = mod.RandDeepTissue(prob=1.0)
    t.set_random_state(3)
    out = t(dict(d))
    assert np.array_equal(np.asarray(out["label"]), d["label"])
    assert np.array_equal(np.asarray(out["image"]), d["image"])


def test_bone_fill_brightens_only_the_shadow_and_keeps_the_labels(mod):
    rng = np.random.default_rng(2)
    d = _patch(rng, bone_from=110)
    d["image"][0][112:140] = 0.02                      # an acoustic shadow under the line
    t = mod.RandBoneFill(prob=1.0, off_db=(-6.0, -3.0))
    t.set_random_state(4)
    out = t(dict(d))
    img0, img1 = d["image"][0], np.asarray(out["image"])[0]
    assert np.array_equal(np.asarray(out["label"]), d["label"])
    diff = img1 != img0
    assert diff.any() and np.all(d["label"][0][diff] == 7)
    assert np.all(img1 >= img0 - 1e-7)                 # only raised, never darkened
    assert np.all(img1[140:] == 0.0)
    assert img1[114:120].mean() > img0[114:120].mean() + 0.1


def test_compress_pulls_layer_means_together(mod):
    rng = np.random.default_rng(3)
    d = _patch(rng)
    t = mod.RandCompress(prob=1.0, keep=(0.3, 0.3), blur_px=0.0)
    t.set_random_state(5)
    out = t(dict(d))
    lab = d["label"][0]
    img0, img1 = d["image"][0], np.asarray(out["image"])[0]
    tissue = (lab >= 2) & (lab <= 6)
    common = img0[tissue].mean()
    for k in (2, 3, 4, 6):
        m = lab == k
        before, after = img0[m].mean() - common, img1[m].mean() - common
        assert abs(after) == pytest.approx(0.3 * abs(before), abs=0.02)
