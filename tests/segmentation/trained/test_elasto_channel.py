"""Elastography as a second input channel, end to end: ``layerseg fit --data.elasto=true``
trains a two-channel network, its checkpoint segments frames that carry elastography
(`segment`, ``bench accuracy``, ``layerseg infer`` on a DICOM exam with its elastography view),
the elastography changes the answer, and a frame without one is refused by name."""


import numpy as np
import pytest

pytest.importorskip("lightning")

from layerseg.cli import main  # noqa: E402
from layerseg.errors import ConfigError  # noqa: E402
from layerseg.io.dataset import read_dataset  # noqa: E402
from layerseg.layers import order_violations  # noqa: E402
from layerseg.segmentation import segment  # noqa: E402


@pytest.fixture(scope="module")
def elasto_ckpt(tiny_dataset, tmp_path_factory, tiny_fit):
    root = tmp_path_factory.mktemp("fit_elasto")
    found = tiny_fit(root, f"--data.datasets=[{tiny_dataset}]", "--data.elasto=true",
                     "--data.patch_size=[64,64]", "--trainer.max_steps=4",
                     "--trainer.val_check_interval=4")
    assert found.name == "last.ckpt"
    return found


def test_two_channel_checkpoint_segments_frames_with_elastography(elasto_ckpt, tiny_dataset):
    from layerseg.segmentation.trained.task import SegmentationTask
    task = SegmentationTask.load_from_checkpoint(elasto_ckpt, map_location="cpu",
                                                 weights_only=True)
    assert task.hparams.in_channels == 2
    frame = read_dataset(tiny_dataset)[3].frame
    assert frame.elasto is not None
    res = segment(frame, model=str(elasto_ckpt), return_scores=True)
    assert res.labels.shape == frame.shape
    assert order_violations(res.labels, frame.meta.region) == 0
    # the second channel is read: other stiffness values give other network scores
    from dataclasses import replace
    flat = replace(frame, elasto=np.full_like(frame.elasto, float(np.median(frame.elasto))))
    other = segment(flat, model=str(elasto_ckpt), return_scores=True)
    assert not np.allclose(other.scores, res.scores)
    # without elastography the network has no second channel: refused, saying so
    bare = replace(frame, elasto=None, elasto_kind=None)
    with pytest.raises(ConfigError, match="elastography"):
        segment(bare, model=str(elasto_ckpt))


def test_bench_accuracy_and_infer_with_the_two_channel_model(elasto_ckpt, tiny_dataset,
                                                             tmp_path):
    import json

    from layerseg.simulate.dicom_export import write_exam_dicom
    out = tmp_path / "acc.json"
    assert main(["bench", "accuracy", "--data", str(tiny_dataset), "--model", str(elasto_ckpt),
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["frames"] == 4
    frames = [it.frame for it in read_dataset(tiny_dataset)]
    src = tmp_path / "in"
    src.mkdir()
    write_exam_dicom(src / "exam.dcm", frames[:2], patient_name="TEST^ELASTO",
                     patient_id="E-1")
    res_dir = tmp_path / "res"
    assert main(["infer", str(src), "--out", str(res_dir), "--model", str(elasto_ckpt),
                 "--no-progress", "--device", "cpu"]) == 0
    s = json.loads((res_dir / "summary.json").read_text())
    assert s["frames"] == {"total": 2, "scored": 2, "failed": 0,
                           "qc_flagged": s["frames"]["qc_flagged"]}
