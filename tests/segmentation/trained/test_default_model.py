"""The shipped default model: present, loads safely, documented, and segments held-out simulated
frames of both simulator ranges in anatomical order with dermis and fat close to the truth."""

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from layerseg.layers import order_violations  # noqa: E402
from layerseg.metrics import dice  # noqa: E402
from layerseg.segmentation import MODELS, model_path, segment  # noqa: E402
from layerseg.simulate import simulate_frame  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def test_default_checkpoint_is_small_safe_and_documented():
    p = model_path("default")
    assert "default" in MODELS and p.is_file() and p.stat().st_size < 5e6
    ck = torch.load(p, map_location="cpu", weights_only=True)     # tensors and plain data only
    rec = ck["layerseg_model"]
    cfg = ROOT / rec["config"]
    assert hashlib.sha256(cfg.read_bytes()).hexdigest() == rec["config_sha256"]
    card = p.with_suffix(".md").read_text(encoding="utf-8")
    for words in ("scripts/train_default.sh", "configs/default_cpu.yaml", "PyMUST",
                  "classical", "research", "weights_only"):
        assert words in card, words
    assert re.search(r"\b0\.\d{3}\b", card)                         # figures are in it


# the wide-range frame is a hard one (with the wide textures and the model trained before them,
# at 508d656: dermis 0.99, fat 0.62, SMAS 0.04; fat was 0.80 before the textures and moves with
# every change to the wide ranges): the dermis is still found, and the model says the frame is
# unfamiliar, most columns below the confidence threshold
@pytest.mark.parametrize("ranges, seed, floors", [("default", 777001, (0.95, 0.95)),
                                                  ("wide", 777002, (0.9, 0.5))])
def test_default_model_segments_held_out_frames(ranges, seed, floors):
    # seeds far from the training (101, 102) and evaluation (4242, 4343) sets
    sim = simulate_frame(seed, region="cheek", age=50, with_elasto=False, ranges=ranges)
    res = segment(sim.frame, model="default", return_scores=True)
    assert res.labels.shape == sim.frame.shape
    assert order_violations(res.labels, "cheek") == 0
    worst = 1.0
    for label, floor in zip((2, 3), floors):                      # dermis, fat
        d = dice(res.labels == label, sim.labels == label)
        assert d > floor
        worst = min(worst, d)
    assert res.column_confidence is not None and res.column_confidence.mean() > 0.5
    if worst < 0.9:                     # a frame segmented badly is flagged, not measured silently
        assert [f for f in res.flags if f.startswith("model uncertain")]
