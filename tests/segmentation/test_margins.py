"""A frame inside a screen capture (margins and side panels beside the B-mode image): the
columns without echo are left unlabelled and flagged, by every segmenter, and the tissue
beside them is segmented as without them."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layerseg.frame import Frame, FrameMeta
from layerseg.metrics import dice
from layerseg.segmentation import segment

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "sim"
SPACING = (0.03125, 0.03125)
L, R = 96, 64


def _frames():
    g = np.asarray(Image.open(SAMPLES / "cheek_f32.png"), dtype=np.float32)
    left = np.zeros((g.shape[0], L), np.float32)
    left[12:20, 4:90:3] = 255.0                          # a line of burned-in text
    right = np.full((g.shape[0], R), 70.0, np.float32)   # a grey side panel
    right[::40, :8] = 200.0                              # ruler ticks
    meta = FrameMeta(frequency_mhz=24.0, region="cheek")
    return Frame(g, SPACING, meta=meta), Frame(np.hstack([left, g, right]), SPACING, meta=meta)


@pytest.mark.parametrize("model", ["classical", "default"])
def test_margins_unlabelled_and_flagged(model):
    if model != "classical":
        pytest.importorskip("torch")
    plain, cap = _frames()
    a = segment(plain, model=model, return_scores=True)
    b = segment(cap, model=model, return_scores=True)
    assert not any("hold no echo" in f for f in a.flags)
    (flag,) = [f for f in b.flags if "hold no echo" in f]
    assert flag.startswith(f"{L + R} of {cap.shape[1]} columns")
    assert (b.labels[:, :L] == 0).all() and (b.labels[:, -R:] == 0).all()
    assert (b.surfaces[:, :L] == cap.shape[0]).all() and (b.surfaces[:, -R:] == cap.shape[0]).all()
    # the image between the margins is segmented alone: exactly as without them
    np.testing.assert_array_equal(b.labels[:, L:-R], a.labels)
    np.testing.assert_allclose(b.surfaces[:, L:-R], a.surfaces)
    assert b.flags[1:] == a.flags and b.uncertain == a.uncertain
    if model == "default":
        c = b.column_confidence
        assert np.isnan(c[:L]).all() and np.isnan(c[-R:]).all()
        np.testing.assert_allclose(c[L:-R], a.column_confidence)
    else:
        assert b.column_confidence is None
    # asked for, the scores are the image's, NaN in the margins
    sc = segment(cap, model=model, return_scores=True).scores if model == "classical" else None
    if sc is not None:
        assert np.isnan(sc[:, :, :L]).all() and np.isfinite(sc[:, :, L:-R]).all()


def test_batched_inference_scores_the_image_part(tmp_path):
    # layerseg infer computes a trained model's scores ahead in batches: on the image part too
    pytest.importorskip("torch")
    from layerseg.infer import infer_frames
    plain, cap = _frames()
    Image.fromarray(np.clip(cap.bmode, 0, 255).astype(np.uint8)).save(tmp_path / "cap.png")
    (tmp_path / "cap.json").write_text('{"spacing_mm": [0.03125, 0.03125], '
                                       '"frequency_mhz": 24, "region": "cheek"}')
    batched = list(infer_frames([tmp_path / "cap.png"], model="default", batch_size=4))
    alone = segment(cap, model="default", return_scores=True)
    (r,) = batched
    assert r.ok
    np.testing.assert_array_equal(r.segmentation.labels, alone.labels)
