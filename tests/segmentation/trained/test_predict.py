"""A checkpoint works wherever a model name does: a tiny fit on a 4-frame dataset folder, then
`segment(frame, model=ckpt)` and `layerseg bench accuracy --model ckpt`; safe loading."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lightning")

from layerseg.cli import main  # noqa: E402
from layerseg.errors import ConfigError  # noqa: E402
from layerseg.io.dataset import read_dataset  # noqa: E402
from layerseg.layers import order_violations  # noqa: E402
from layerseg.segmentation import segment  # noqa: E402


@pytest.fixture(scope="module")
def ckpt(tiny_dataset, tmp_path_factory, tiny_fit):
    root = tmp_path_factory.mktemp("fit")
    found = tiny_fit(root, f"--data.datasets=[{tiny_dataset}]", "--data.patch_size=[64,64]",
                     "--trainer.max_steps=4", "--trainer.val_check_interval=4")
    assert found.name == "last.ckpt"
    return found


def test_segment_with_checkpoint_is_ordered(ckpt, tiny_dataset):
    item = read_dataset(tiny_dataset)[3]
    res = segment(item.frame, model=str(ckpt), return_scores=True)
    assert res.labels.shape == item.frame.shape and res.labels.dtype == np.uint8
    assert order_violations(res.labels, item.frame.meta.region) == 0
    # a network's log-probabilities carry a per-column confidence (0-1) into the result
    conf = res.column_confidence
    assert conf is not None and conf.shape == (item.frame.shape[1],)
    assert np.all((conf >= 0) & (conf <= 1))
    assert res.model == str(ckpt)
    # the scores are log-probabilities on the frame's grid
    np.testing.assert_allclose(np.exp(res.scores).sum(0), 1.0, atol=0.05)
    np.testing.assert_array_equal(segment(item.frame, model=ckpt), res.labels)


def test_checkpoint_reloads_outside_the_cli(ckpt):
    import torch

    from layerseg.segmentation.trained.task import SegmentationTask
    task = SegmentationTask.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    assert task.hparams.channels == [8, 16, 32] and task.hparams.patch_size == [64, 64]
    assert task(torch.zeros(1, 1, 64, 64)).shape == (1, 8, 64, 64)


def test_bench_accuracy_with_checkpoint(ckpt, tiny_dataset, tmp_path):
    out = tmp_path / "acc.json"
    assert main(["bench", "accuracy", "--data", str(tiny_dataset), "--model", str(ckpt),
                 "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["frames"] == 4 and summary["order_violations"] == 0
    assert "dermis" in summary["layers"] and "dice" in summary["layers"]["dermis"]
    # the record says what made the answers: which checkpoint (by content) and how it ran
    import hashlib

    from layerseg.segmentation.trained.export import BACKENDS
    seg = summary["segmenter"]
    assert seg["model"] == str(ckpt) and seg["checkpoint"] == ckpt.name
    assert seg["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert seg["backend"] in BACKENDS and seg["threads"] >= 1
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAYERSEG_BACKEND", "eager")
        assert main(["bench", "accuracy", "--data", str(tiny_dataset), "--model", str(ckpt),
                     "--json", str(tmp_path / "eager.json")]) == 0
    eager = json.loads((tmp_path / "eager.json").read_text())
    assert eager["segmenter"]["backend"] == "eager"
    assert eager["layers"]["dermis"]["dice"] == pytest.approx(
        summary["layers"]["dermis"]["dice"], abs=1e-3)


def test_pickle_bearing_checkpoint_is_refused(ckpt, tmp_path, tiny_dataset):
    import torch
    evil = tmp_path / "evil.ckpt"
    ck = torch.load(ckpt, weights_only=True)
    ck["hyper_parameters"]["payload"] = _Payload()        # any non-plain object
    torch.save(ck, evil)
    with pytest.raises(ConfigError, match="refused") as e:
        segment(read_dataset(tiny_dataset)[0].frame, model=evil)
    assert str(evil) in str(e.value)
    assert not _Payload.called


class _Payload:
    called = False

    def __reduce__(self):
        return (_mark_called, ())


def _mark_called():
    _Payload.called = True
    return None


def test_bad_checkpoints(ckpt, tmp_path, tiny_dataset):
    import torch
    frame = read_dataset(tiny_dataset)[0].frame
    with pytest.raises(ConfigError, match="checkpoint does not exist"):
        segment(frame, model=tmp_path / "missing.ckpt")
    trunc = tmp_path / "trunc.ckpt"
    trunc.write_bytes(Path(ckpt).read_bytes()[:5000])
    with pytest.raises(ConfigError, match="truncated or corrupt") as e:
        segment(frame, model=trunc)
    assert str(trunc) in str(e.value)
    # text, random bytes, an image, a folder: a clear error, never a traceback from torch's
    # reader (a text file led it to KeyError, a PNG to IndexError)
    rng = np.random.default_rng(5)
    for name, content in [("hello.ckpt", b"hello\n"), ("noise.ckpt", rng.bytes(3000)),
                          ("scan.png", Path(tiny_dataset, "manifest.csv").read_bytes())]:
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(ConfigError, match="checkpoint") as e:
            segment(frame, model=bad)
        assert str(bad) in str(e.value)
    with pytest.raises(ConfigError, match="is a folder, not a checkpoint"):
        segment(frame, model=tmp_path)
    ck = torch.load(ckpt, weights_only=True)
    for key, value, msg in [("num_classes", 5, "5 classes"), ("in_channels", 3, "3 input channels"),
                            ("in_channels", 2, "do not fit")]:
        bad = tmp_path / f"bad_{key}_{value}.ckpt"
        torch.save({**ck, "hyper_parameters": {**ck["hyper_parameters"], key: value}}, bad)
        with pytest.raises(ConfigError, match=msg) as e:
            segment(frame, model=bad)
        assert str(bad) in str(e.value)
    with pytest.raises(ConfigError, match="is not available"):
        segment(frame, model="unet-from-elsewhere")


def test_classical_segment_leaves_torch_out():
    code = ("import sys, numpy as np, layerseg\n"
            "from layerseg.simulate import simulate_frame\n"
            "f = simulate_frame(0, shape=(96, 96), depth_mm=6.0, width_mm=6.4).frame\n"
            "lab = layerseg.segment(f)\n"
            "assert lab.shape == (96, 96)\n"
            "bad = [m for m in ('torch', 'monai', 'lightning') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("shape,depth_mm,width_mm", [((160, 128), 8.0, 6.4),    # 0.05 mm: same
                                                     ((150, 90), 9.0, 5.0),     # coarser: up
                                                     ((260, 200), 8.0, 6.0)])   # finer: down
def test_scores_on_the_frame_grid_as_before(tiny_checkpoint, shape, depth_mm, width_mm):
    """Taking the network's log-probabilities back to the frame grid in torch (`to_frame_grid`)
    gives the scores scipy's zoom gave (`resample_to_shape`, float32), and the same answer."""
    import torch

    from layerseg.layers.decode import decode
    from layerseg.segmentation.trained.data import frame_sample
    from layerseg.segmentation.trained.predict import load_task, scores_for_frame
    from layerseg.segmentation.trained.transforms import ResampleToSpacing, resample_to_shape
    from layerseg.simulate import simulate_frame

    task = load_task(tiny_checkpoint)
    frame = simulate_frame(21, region="cheek", shape=shape, depth_mm=depth_mm,
                           width_mm=width_mm, vary=False).frame
    d = frame_sample(frame, None, with_elasto=False)
    img = ResampleToSpacing(task.hparams.spacing_mm)(d["image"], d["spacing_mm"]) / 255.0
    x = torch.from_numpy(np.clip(img, 0, 1).astype(np.float32))[None]
    with torch.inference_mode():
        logp = torch.log_softmax(task.infer(x).float(), dim=1)[0].numpy()
    before = resample_to_shape(logp, frame.shape, order=1).astype(np.float64)
    now = scores_for_frame(task, frame)
    assert now.dtype == np.float64 and now.shape == before.shape == (8, *shape)
    np.testing.assert_allclose(now, before, atol=2e-6, rtol=0)
    np.testing.assert_array_equal(decode(now, "cheek", frame.spacing_mm).labels,
                                  decode(before, "cheek", frame.spacing_mm).labels)
