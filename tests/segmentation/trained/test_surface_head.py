"""The ordered-surface head (`layerseg.segmentation.trained.surface_head`): true surfaces read
off label maps (plain-loop twin), the surfaces' row distributions turned into class
probabilities (the formula, summed to one, exact at peaked answers), the loss, and the head
through the CLI and `segment`."""


import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

from layerseg.errors import ConfigError  # noqa: E402
from layerseg.layers import surfaces_to_labels  # noqa: E402
from layerseg.segmentation.trained.surface_head import (SurfaceLoss,  # noqa: E402
                                                         surface_log_probabilities,
                                                         surfaces_from_labels)


def _random_surfaces(rng, rows, cols):
    """8 non-decreasing integer surfaces per column, some layers absent (zero thickness)."""
    t = rng.integers(0, rows // 6, size=(8, cols))
    t[rng.random((8, cols)) < 0.2] = 0
    s = np.cumsum(t, axis=0)
    return np.minimum(s, rows)


def _surfaces_plain(lab, order):
    """Surface rows of one (rows, cols) label map by walking each column, layers in `order`."""
    rows, cols = lab.shape
    out = np.zeros((8, cols))
    for c in range(cols):
        col = lab[:, c]
        nz = np.nonzero(col)[0]
        s0 = nz[0] if nz.size else rows
        out[0, c] = s0
        for k in range(1, 8):
            out[k, c] = out[k - 1, c] + np.sum(col == order[k - 1])
    return out


@pytest.mark.parametrize("seed, region", [(0, "cheek"), (1, "forehead"), (2, None),
                                          (3, "forehead"), (4, "jaw")])
def test_surfaces_from_labels(seed, region):
    """In the region's layer order (forehead: muscle above deep fat), against a plain walk
    down each column and against the surfaces the label map was made from."""
    from layerseg.layers import get_profile
    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(20, 80)), int(rng.integers(2, 30))
    S = _random_surfaces(rng, rows, cols)
    lab = surfaces_to_labels(S, region, rows)
    lab[:, 0] = 0                                          # a column without tissue
    got = surfaces_from_labels(torch.as_tensor(lab.astype(np.int64))[None, None],
                               [region])[0].numpy()
    np.testing.assert_array_equal(got, _surfaces_plain(lab, get_profile(region).labels))
    keep = S[0] < S[-1]   # integer surfaces come back exactly where the column has tissue
    keep[0] = False
    np.testing.assert_array_equal(got[:, keep], S[:, keep])


def test_class_probabilities_follow_the_formula():
    rng = np.random.default_rng(1)
    logits = torch.as_tensor(rng.normal(size=(2, 8, 30, 5)), dtype=torch.float32)
    logp = surface_log_probabilities(logits, ["cheek", None]).numpy()
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, atol=1e-5)
    p = np.exp(logits.numpy() - logits.numpy().max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    F = np.minimum.accumulate(np.cumsum(p, axis=2), axis=1)   # running minimum over surfaces
    want = np.concatenate([1 - F[:, :1] + F[:, -1:], F[:, :-1] - F[:, 1:]], axis=1)
    assert want.min() >= -1e-6            # ordered by construction: nothing to clip
    want = np.maximum(want, 1e-6)
    want /= want.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.exp(logp), want, rtol=1e-4, atol=1e-6)
    # crossing surfaces (surface 1 peaked above surface 0): the layer between them gets the
    # floor, not a negative probability, and the mass stays where the order allows it
    lg = torch.full((1, 8, 20, 1), -20.0)
    lg[0, 0, 10, 0] = 20.0
    lg[0, 1:, 4, 0] = 20.0
    pr = surface_log_probabilities(lg).exp()[0, :, :, 0].numpy()
    assert pr[1, 4:10].max() < 1e-3              # no epidermis above the skin entry
    np.testing.assert_allclose(pr.sum(0), 1.0, atol=1e-5)


@pytest.mark.parametrize("seed, region", [(0, None), (1, "forehead"), (2, "cheek")])
def test_peaked_surfaces_give_their_label_map(seed, region):
    """Surface distributions peaked at known rows: the class arg-max is the region's label map
    of those surfaces (a pixel at row r is in the profile's layer k when s_{k-1} <= r < s_k;
    forehead: muscle above deep fat)."""
    rng = np.random.default_rng(seed)
    rows, cols = 40, 12
    S = _random_surfaces(rng, rows - 1, cols)
    logits = torch.full((1, 8, rows, cols), -30.0)
    for j in range(8):
        logits[0, j, torch.as_tensor(S[j]), torch.arange(cols)] = 30.0
    got = surface_log_probabilities(logits, [region])[0].argmax(0).numpy()
    want = surfaces_to_labels(S, region, rows)   # integer surfaces: r in [s_{k-1}, s_k)
    np.testing.assert_array_equal(got, want)


def test_loss_is_smallest_at_the_true_surfaces():
    rng = np.random.default_rng(2)
    rows, cols = 48, 10
    S = _random_surfaces(rng, rows - 1, cols)
    lab = torch.as_tensor(surfaces_to_labels(S, None, rows).astype(np.int64))[None, None]
    target = surfaces_from_labels(lab)[0].long()

    def peaked(shift):
        lg = torch.full((1, 8, rows, cols), -8.0)
        for j in range(8):
            lg[0, j, (target[j] + shift).clamp(0, rows - 1), torch.arange(cols)] = 8.0
        return lg

    loss = SurfaceLoss()
    at = loss(peaked(0), lab)
    assert at < loss(peaked(2), lab) < loss(peaked(6), lab)
    lg = torch.zeros((1, 8, rows, cols), requires_grad=True)
    loss(lg, lab).backward()
    assert torch.isfinite(lg.grad).all() and lg.grad.abs().sum() > 0


def test_surface_head_needs_whole_frame_inference():
    from layerseg.segmentation.trained.task import SegmentationTask
    with pytest.raises(ConfigError, match="infer_mode"):
        SegmentationTask(head="surface", infer_mode="sliding", channels=(4, 8))
    t = SegmentationTask(head="surface", infer_mode="whole", channels=(4, 8),
                         patch_size=(32, 32))
    logp = t.log_probabilities(torch.zeros(1, 8, 32, 16))
    np.testing.assert_allclose(logp.exp().sum(1).numpy(), 1.0, atol=1e-5)


def test_surface_head_trains_through_the_cli_and_segments(tiny_dataset, tmp_path, tiny_fit):
    from layerseg.io.dataset import read_dataset
    from layerseg.layers import order_violations
    from layerseg.segmentation import segment
    ckpt = tiny_fit(tmp_path, f"--data.datasets=[{tiny_dataset}]", "--data.patch_size=[160,64]",
                    "--data.spacing_mm=[0.05,0.05]", "--trainer.max_steps=3",
                    "--trainer.val_check_interval=3", "--trainer.callbacks=[]",
                    "--trainer.enable_checkpointing=true", config="surface_cpu.yaml")
    frame = read_dataset(tiny_dataset)[3].frame
    res = segment(frame, model=str(ckpt), return_scores=True)
    assert res.labels.shape == frame.shape
    assert order_violations(res.labels, frame.meta.region) == 0
    np.testing.assert_allclose(np.exp(res.scores).sum(0), 1.0, atol=0.05)
