"""A frame deeper than the field a trained model was trained on carries a QC flag
(`layerseg.segmentation.pipeline.field_depth_flag`), through `layerseg.segment` and the batch
command alike; frames of the training depth and the classical segmenter do not."""

from __future__ import annotations

import numpy as np
import pytest

from layerseg import Frame, FrameMeta
from layerseg.segmentation.pipeline import FIELD_DEPTH_MARGIN, field_depth_flag

FLAG = "deeper than the model's training field"


def _frame(rows, depth_mm, cols=32, width_mm=3.2):
    g = np.random.default_rng(0).integers(0, 255, (rows, cols)).astype(np.uint8)
    return Frame(g, spacing_mm=(depth_mm / rows, width_mm / cols), meta=FrameMeta())


@pytest.mark.parametrize("depth, flagged", [(12.0, False), (14.0 * FIELD_DEPTH_MARGIN, False),
                                            (14.0 * FIELD_DEPTH_MARGIN + 0.1, True),
                                            (24.0, True)])
def test_flag_from_the_frame_depth(depth, flagged):
    f = _frame(240, depth)
    flag = field_depth_flag(f, 14.0)
    assert (flag is not None) is flagged
    if flagged:
        assert FLAG in flag and f"{depth:.1f} mm" in flag and "14.0 mm" in flag
    assert field_depth_flag(f, None) is None            # a model that does not say


def test_segment_and_infer_flag_a_deep_frame(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    from layerseg.infer import infer_frames
    from layerseg.segmentation import check_model, segment
    from layerseg.simulate import simulate_dataset, simulate_frame

    assert check_model("default").field_depth_mm == pytest.approx(352 * 0.04)
    small = dict(shape=(256, 64), width_mm=3.2, region="cheek")
    shallow = simulate_frame(np.random.SeedSequence(1), depth_mm=12.0, **small).frame
    deep = simulate_frame(np.random.SeedSequence(1), depth_mm=24.0, **small).frame
    assert not any(FLAG in x for x in segment(shallow, model="default",
                                               return_scores=True).flags)
    assert any(FLAG in x for x in segment(deep, model="default", return_scores=True).flags)
    assert not any(FLAG in x for x in segment(deep, model="classical",
                                               return_scores=True).flags)
    # the batch command: a simulated DICOM exam of deep frames
    root = simulate_dataset(tmp_path / "sim", 1, seed=3, fmt="dicom", progress=False,
                            shape=(256, 64), depth_mm=24.0, width_mm=3.2)
    dcm = sorted((root / "dicom").rglob("*.dcm"))[0]
    res = list(infer_frames([dcm], model="default"))
    assert res and all(r.ok for r in res)
    assert all(any(FLAG in x for x in r.flags) for r in res)
