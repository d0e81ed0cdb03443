import numpy as np
import pytest
from skimage.restoration import denoise_nl_means

from layerseg.errors import FilterInputError
from layerseg.filters import denoise_nlm
from layerseg.filters._config import ATOL_REL, RTOL

#: Stated tolerance of distance='l2' against scikit-image's fast mode at equal patch, search and
#: h: scikit-image weights with an approximate exponential (Schraudolph, a few % relative
#: error); the weighted means then differ by at most 1 % of the image range.
SKIMAGE_TOL = 0.01

# also run with NUMBA_DISABLE_JIT=1 (scripts/test.sh): the kernels' bodies as plain Python
pytestmark = pytest.mark.nojit


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("patch, search, h", [(3, 2, 0.3), (5, 3, 0.2), (7, 4, 0.5)])
def test_l2_agrees_with_skimage_fast_mode(rng, dtype, patch, search, h):
    img = rng.random((33, 41)).astype(dtype)
    out = denoise_nlm(img, patch, search, h, distance="l2")
    ref = denoise_nl_means(img, patch_size=patch, patch_distance=search, h=h, fast_mode=True)
    assert out.dtype == dtype and out.shape == img.shape
    assert np.abs(out - ref).max() <= SKIMAGE_TOL * np.ptp(img)


def test_l2_sigma_agrees_with_skimage(rng):
    img = rng.random((30, 30))
    out = denoise_nlm(img, 5, 3, 0.2, distance="l2", sigma=0.1)
    ref = denoise_nl_means(img, patch_size=5, patch_distance=3, h=0.2, sigma=0.1, fast_mode=True)
    assert np.abs(out - ref).max() <= SKIMAGE_TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["l2", "pearson"])
def test_matches_naive(naive, rng, dtype, mode):
    img = (rng.random((12, 14)) + 0.1).astype(dtype)
    for patch, search, h in ((3, 2, 0.4), (5, 3, 0.3)):
        out = denoise_nlm(img, patch, search, h, distance=mode)
        ref = naive.nlm(img, patch, search, h, mode)
        np.testing.assert_allclose(out, ref, rtol=RTOL[np.dtype(dtype)],
                                   atol=ATOL_REL[np.dtype(dtype)])


@pytest.mark.parametrize("mode", ["l2", "pearson"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_image_unchanged(mode, dtype):
    img = np.full((20, 24), 0.7, dtype=dtype)
    out = denoise_nlm(img, 5, 4, 0.1, distance=mode)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, img, rtol=1e-6)


def test_pearson_reduces_speckle_and_keeps_edge(speckle):
    rng = np.random.default_rng(11)
    env = speckle(rng, (64, 64)).astype(np.float32)
    out = denoise_nlm(env, 5, 5, 0.6)
    assert out.std() / out.mean() < 0.6 * env.std() / env.mean()
    rows, cols, edge = 64, 48, 24
    scale = np.where(np.arange(cols) < edge, 1.0, 4.0)[None, :]
    env = speckle(rng, (rows, cols)) * scale
    out = denoise_nlm(env, 5, 5, 0.6)
    prof = out.mean(axis=0)
    assert int(np.argmax(np.diff(prof))) + 1 in (edge - 1, edge, edge + 1)
    c_in = env[:, edge:edge + 3].mean() / env[:, edge - 3:edge].mean()
    c_out = out[:, edge:edge + 3].mean() / out[:, edge - 3:edge].mean()
    assert c_out > 0.6 * c_in


@pytest.mark.parametrize("kw, match", [
    (dict(patch=4), "odd"), (dict(patch=1), "odd"), (dict(search=0), "search"),
    (dict(search=30), "too large"), (dict(h=0), "positive"), (dict(distance="l1"), "distance"),
    (dict(sigma=0.1), "sigma"), (dict(distance="l2", dynamic_range_db=60.0), "ignored"),
])
def test_bad_parameters(kw, match):
    with pytest.raises(FilterInputError, match=match):
        denoise_nlm(np.ones((20, 20)), **kw)


def test_pearson_rejects_negative_l2_accepts():
    img = np.random.default_rng(0).normal(size=(16, 16))
    with pytest.raises(FilterInputError, match="negative"):
        denoise_nlm(img, 3, 2, 0.5)
    assert denoise_nlm(img, 3, 2, 0.5, distance="l2").shape == img.shape


@pytest.mark.parametrize("mode", ["l2", "pearson"])
@pytest.mark.parametrize("width", [7, 40, 61])
def test_column_tiles_give_the_whole_row_answer(rng, monkeypatch, mode, width):
    """Frames wider than `NLM_MAX_TILE_COLS` run in column tiles (cache); every tile's weights
    come from the same running sums as the whole row's, so the answer is the same bit for bit,
    tile edges and the frame's borders included."""
    from layerseg.filters import nlm
    img = rng.gamma(2.0, 1.0, size=(53, 150)).astype(np.float32)
    whole = denoise_nlm(img, patch=5, search=4, h=0.5, distance=mode)
    monkeypatch.setattr(nlm, "NLM_MAX_TILE_COLS", width)
    assert nlm._column_tile(150) <= width
    np.testing.assert_array_equal(denoise_nlm(img, patch=5, search=4, h=0.5, distance=mode),
                                  whole)
