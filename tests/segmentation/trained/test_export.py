"""Fast CPU inference (`layerseg.segmentation.trained.export`): exported graphs give the eager
network's answer on frame sizes other than the traced one (batch norm folded), a failing export
falls back to the eager network with a warning, and the thread count respects the user's."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from layerseg.errors import ConfigError  # noqa: E402
from layerseg.segmentation import segment  # noqa: E402
from layerseg.segmentation.pipeline import segment_with  # noqa: E402
from layerseg.segmentation.trained import export  # noqa: E402
from layerseg.segmentation.trained.export import export_task, inference_threads  # noqa: E402
from layerseg.segmentation.trained.predict import (TrainedSegmenter, load_task,  # noqa: E402
                                                   scores_for_frame)
from layerseg.simulate import simulate_frame  # noqa: E402

def _installed(*mods):
    return all(__import__("importlib").util.find_spec(m) for m in mods)


BACKENDS = ["torchscript",
            pytest.param("onnxruntime", marks=pytest.mark.skipif(
                not _installed("onnxruntime", "onnx"),
                reason="onnxruntime / onnx not installed (layerseg[fast])")),
            pytest.param("openvino", marks=pytest.mark.skipif(
                not _installed("openvino", "onnx"),
                reason="openvino / onnx not installed (layerseg[fast])"))]


@pytest.fixture(scope="module")
def task(tiny_checkpoint):
    return load_task(tiny_checkpoint)


@pytest.fixture(scope="module")
def frames():
    """Two simulated frames of different sizes and spacings (not multiples of 4 at 0.05 mm)."""
    return [simulate_frame(11, region="cheek", shape=(160, 128), depth_mm=8.0, width_mm=6.4,
                           vary=False).frame,
            simulate_frame(12, region="forehead", shape=(150, 90), depth_mm=7.0, width_mm=5.0,
                           vary=False).frame]


@pytest.mark.parametrize("backend", BACKENDS)
def test_exported_graph_matches_eager_on_two_sizes(task, backend):
    pred = export_task(task, backend=backend)
    assert pred.backend == backend and not pred.skipped
    g = torch.Generator().manual_seed(1)
    # the graph is traced at 16 x 16; the batch norm statistics are random, so folding them
    # into the convolutions must be exact too
    for shape in ((1, 1, 96, 128), (2, 1, 52, 36)):
        x = torch.rand(*shape, generator=g)
        with torch.inference_mode():
            ref = task.infer(x)
            got = task.infer(x, predictor=pred)
        assert got.shape == ref.shape == (shape[0], 8, *shape[2:])
        np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=1e-5, rtol=0)


def test_exported_segmenter_agrees_with_eager(tiny_checkpoint, frames):
    fast = TrainedSegmenter(tiny_checkpoint, grid="frame")
    slow = TrainedSegmenter(tiny_checkpoint, exported=False, grid="frame")
    slow_native = TrainedSegmenter(tiny_checkpoint, exported=False)
    assert slow.predictor.backend == "eager"
    assert fast.predictor.backend != "eager", fast.predictor.skipped
    for fr in frames:
        a, b = fast.scores(fr), slow.scores(fr)
        assert a.shape == (8, *fr.shape)
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
        # the public call uses the exported graph (on the network's grid); the decoded answers
        # are those of the eager network
        lab = segment(fr, model=str(tiny_checkpoint))
        np.testing.assert_array_equal(
            lab, segment_with(slow_native.scores, fr, log_probabilities=True).labels)


def test_export_is_made_once_per_checkpoint(tiny_checkpoint):
    a = TrainedSegmenter(tiny_checkpoint).predictor
    assert TrainedSegmenter(tiny_checkpoint).predictor is a


def test_failed_export_falls_back_to_eager_with_a_warning(task, tiny_checkpoint, frames,
                                                          monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("unsupported operator")

    for name in ("_openvino", "_onnxruntime", "_torchscript"):
        monkeypatch.setattr(export, name, boom)
    with pytest.warns(RuntimeWarning, match="unsupported operator") as rec:
        pred = export_task(task)
    assert pred.backend == "eager"
    assert set(pred.skipped) == {"openvino", "onnxruntime", "torchscript"}
    assert len(rec) == 3   # one warning per backend tried, none at run time
    fr = frames[0]
    np.testing.assert_array_equal(scores_for_frame(task, fr, predictor=pred),
                                  scores_for_frame(task, fr))


def test_export_that_disagrees_is_not_used(task, monkeypatch):
    def wrong(net, example, threads):
        return lambda x: net(x) + 1.0

    monkeypatch.setattr(export, "_torchscript", wrong)
    with pytest.warns(RuntimeWarning, match="differs from the eager"):
        pred = export_task(task, backend="torchscript")
    assert pred.backend == "eager" and "differs" in pred.skipped["torchscript"]


def test_missing_optional_packages_are_not_a_warning(task, monkeypatch, recwarn):
    def missing(*a, **k):
        raise ImportError("No module named 'onnxruntime'")

    monkeypatch.setattr(export, "_openvino", missing)
    monkeypatch.setattr(export, "_onnxruntime", missing)
    pred = export_task(task)
    assert pred.backend == "torchscript"
    assert all("not installed" in pred.skipped[b] for b in ("openvino", "onnxruntime"))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.skipif(not _installed("openvino", "onnx"), reason="openvino / onnx not installed")
def test_openvino_keeps_a_few_fixed_shape_models(task, monkeypatch):
    """The openvino backend compiles one model per input shape, keeps the last few, and every
    shape, new or seen again after being dropped, gives the eager network's logits."""
    monkeypatch.setattr(export, "OPENVINO_SHAPES", 2)
    pred = export_task(task, backend="openvino", threads=1)
    assert pred.backend == "openvino" and pred.threads == 1
    g = torch.Generator().manual_seed(3)
    shapes = [(1, 1, 32, 48), (3, 1, 64, 32), (1, 1, 16, 16), (1, 1, 32, 48), (3, 1, 64, 32)]
    for shape in shapes:
        x = torch.rand(*shape, generator=g)
        with torch.inference_mode():
            ref = task.net(x)
        got = pred(x)
        assert got.dtype == torch.float32 and got.shape == ref.shape
        np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=1e-4, rtol=0)
        # the answer is the caller's: a later call does not overwrite it
        again = got.clone()
        pred(torch.rand(*shape, generator=g))
        np.testing.assert_array_equal(got.numpy(), again.numpy())
        # a frame's logits do not depend on the batch it comes in
        for i in range(shape[0]):
            np.testing.assert_array_equal(pred(x[i:i + 1]).numpy(), got[i:i + 1].numpy())
    assert tuple(pred(torch.zeros(0, 1, 32, 32)).shape) == (0, 8, 32, 32)


def test_bad_backend_names(task, tiny_checkpoint, monkeypatch):
    with pytest.raises(ConfigError, match="backend"):
        export_task(task, backend="tensorrt")
    with pytest.raises(ConfigError, match="backend"):
        TrainedSegmenter(tiny_checkpoint, exported="tvm")
    monkeypatch.setenv("LAYERSEG_BACKEND", "eager")
    assert TrainedSegmenter(tiny_checkpoint).predictor.backend == "eager"


def test_threads_respect_the_users_setting(monkeypatch):
    for v in ("LAYERSEG_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(v, raising=False)
    before = torch.get_num_threads()
    # torch untouched since start-up: the CPUs this process may run on
    monkeypatch.setattr(export, "_TORCH_START_THREADS", before)
    monkeypatch.setattr(export, "_machine_threads", lambda: 7)
    assert inference_threads() == 7
    assert inference_threads(3) == 3                       # the argument wins
    monkeypatch.setenv("LAYERSEG_THREADS", "5")
    assert inference_threads() == 5 and inference_threads(2) == 2
    monkeypatch.delenv("LAYERSEG_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", str(before))     # the user's environment
    assert inference_threads() == before
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(export, "_TORCH_START_THREADS", before + 1)   # torch.set_num_threads
    assert inference_threads() == before
    monkeypatch.setattr(export, "_TORCH_START_THREADS", None)   # torch imported before us
    assert inference_threads() == before
    for bad in (0, -1, 1.5):
        with pytest.raises(ConfigError):
            inference_threads(bad)
    monkeypatch.setenv("LAYERSEG_THREADS", "many")
    with pytest.raises(ConfigError, match="LAYERSEG_THREADS"):
        inference_threads()


@pytest.mark.parametrize("backend", ["eager", "torchscript"])
def test_a_call_leaves_torch_threads_as_they_were(task, backend):
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    pred = export_task(task, backend=backend, threads=other)
    assert pred.threads == other
    pred(torch.rand(1, 1, 32, 32))
    assert torch.get_num_threads() == before
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x):
            seen.append(torch.get_num_threads())
            return x

    export._eager(Spy(), other)(torch.zeros(1))   # inside a call the predictor's count holds
    assert seen == [other] and torch.get_num_threads() == before
