"""``--batch-size N``: a trained model takes up to N frames of one exam per network call; the
outputs are byte-identical to one frame per call (timestamps aside), a frame that fails inside a
batch is recorded on its own and the others go on, and a failing network call falls back to one
frame at a time."""

from __future__ import annotations

import numpy as np
import pytest

from layerseg.errors import ConfigError
from layerseg.infer import infer_frames, run_infer


def test_batched_model_byte_identical_to_one_frame_per_call(inputs, tmp_path, kit):
    outs = {}
    for n, workers in ((1, 1), (2, 1), (8, 2)):
        outs[n] = tmp_path / f"b{n}"
        assert kit.run_cli(inputs, "--out", outs[n], "--no-progress", "--model", "default",
                           "--batch-size", n, "--workers", workers) == 0
    ref = kit.digest_tree(outs[1])
    assert len([k for k in ref if k.endswith("done.json")]) == kit.N_EXAMS
    for n in (2, 8):
        kit.assert_same_outputs(outs[1], outs[n])


def _same(one, many):
    assert [(r.frame_index, r.ok, r.error, r.error_type) for r in one] == \
        [(r.frame_index, r.ok, r.error, r.error_type) for r in many]
    for a, b in zip(one, many):
        if a.ok:
            assert np.array_equal(a.labels, b.labels)
            assert a.scores.to_long().equals(b.scores.to_long())


def test_a_bad_frame_inside_a_batch_is_recorded_on_its_own(inputs, monkeypatch, kit):
    kit.flaky_read(monkeypatch, bad_index=1, n=4)
    f = inputs / "clinic" / "capture.png"
    one = list(infer_frames([f], model="default", batch_size=1))
    many = list(infer_frames([f], model="default", batch_size=3))
    assert [(r.frame_index, r.ok) for r in many] == [(0, True), (1, False), (2, True), (3, True)]
    assert "frame 1 is damaged" in many[1].error
    _same(one, many)


def test_a_failing_batch_falls_back_to_one_frame_at_a_time(inputs, monkeypatch):
    from layerseg.segmentation.trained.predict import TrainedSegmenter
    calls = []

    def broken(self, frames, max_batch=None, regions=None):
        calls.append(len(frames))
        raise MemoryError("no room for the batch")

    f = inputs / "exam_a.dcm"
    one = list(infer_frames([f], model="default", batch_size=1))
    monkeypatch.setattr(TrainedSegmenter, "scores_many", broken)
    many = list(infer_frames([f], model="default", batch_size=4))
    assert calls == [2] and all(r.ok for r in many)
    _same(one, many)


def test_batch_size_below_one_refused(inputs, tmp_path, capsys, kit):
    out = tmp_path / "o"
    assert kit.run_cli(inputs, "--out", out, "--batch-size", "0") == 2
    assert "1 or more" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(ConfigError, match="1 or more"):
        run_infer([inputs], out, batch_size=0)
    with pytest.raises(ConfigError, match="1 or more"):
        next(infer_frames([inputs / "exam_a.dcm"], batch_size=0))


def test_device_choice(inputs, tmp_path, capsys, kit):
    import torch

    from layerseg.segmentation.trained.export import resolve_device
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("CPU") == "cpu"
    with pytest.raises(ConfigError, match="auto, cpu, cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():           # refused before any work, named
        out = tmp_path / "o"
        assert kit.run_cli(inputs, "--out", out, "--model", "default", "--device", "cuda") == 2
        assert "no CUDA device" in capsys.readouterr().err
        assert not out.exists()
    out = tmp_path / "ok"
    assert kit.run_cli(inputs / "exam_a.dcm", "--out", out, "--model", "default",
                       "--device", "auto", "--no-progress") == 0
    assert f"device {resolve_device('auto')}" in (out / "run.log").read_text()


def test_mixed_precision_predictor_agrees_with_fp32():
    # the accelerator path (copy of the network, autocast, logits back as float32 on the CPU),
    # run on the CPU in bfloat16: the same decisions almost everywhere
    from layerseg.segmentation import check_model, model_path
    from layerseg.segmentation.pipeline import check_frame
    from layerseg.segmentation.trained.export import device_predictor
    from layerseg.segmentation.trained.predict import scores_for_frame
    from layerseg.simulate import simulate_frame
    seg = check_model(model_path("default"))
    f = check_frame(simulate_frame(1, region="cheek", shape=(256, 256), with_elasto=False).frame)
    ref = seg.scores(f)
    pr = device_predictor(seg.task, "cpu", "bf16")
    assert pr.backend == "cpu bf16"
    got = scores_for_frame(seg.task, f, predictor=pr, grid="model")
    assert got.dtype == np.float32 and got.shape == ref.shape   # as the network gave them
    assert (got.argmax(0) == ref.argmax(0)).mean() > 0.98
    assert next(seg.task.net.parameters()).device.type == "cpu"   # the task's net untouched
    fp32 = device_predictor(seg.task, "cpu", None)
    np.testing.assert_allclose(scores_for_frame(seg.task, f, predictor=fp32, grid="model"), ref,
                               atol=1e-3)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_single_exam_batched_with_reader_threads(inputs, workers):
    # the reader threads' pool ends when the last frame has been handed out; the frames a batch
    # holds then must still decode (they were cancelled once: CancelledError on every frame)
    f = inputs / "exam_a.dcm"
    res = list(infer_frames([f], model="default", batch_size=8, workers=workers))
    assert [(r.frame_index, r.ok, r.error_type) for r in res] == [(0, True, None),
                                                                  (1, True, None)]
