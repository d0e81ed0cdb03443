import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from layerseg.errors import ColourBarError
from layerseg.io.colour import (ColourBar, decode_colour, default_colour_bar, encode_colour,
                                load_lut, sample_colour_bar)
from layerseg.io.colour import _write_lut_csv


def _smooth_kpa(rng, shape, lo=5.0, hi=150.0, sigma=4.0):
    n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    n = (n - n.min()) / (n.max() - n.min())
    return lo + n * (hi - lo)


def _scene(rng, bar):
    """Grey speckle B-mode, a colour overlay box, and white 'text' inside and outside it."""
    rows, cols = 80, 120
    grey = rng.integers(0, 256, (rows, cols)).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    truth = np.full((rows, cols), np.nan)
    box = (slice(20, 62), slice(31, 101))           # odd start column: chroma pairs straddle it
    kpa = _smooth_kpa(rng, (42, 70))
    truth[box] = kpa
    rgb[box] = encode_colour(kpa, bar)
    text = np.zeros((rows, cols), bool)
    text[30:34, 40:60] = True                        # text over the overlay
    text[5:9, 5:25] = True                           # text over the B-mode
    rgb[text] = 255
    truth[text] = np.nan
    return rgb, truth


def _subsample_422(rgb):
    ycc = np.asarray(Image.fromarray(rgb).convert("YCbCr")).astype(np.float64)
    for ch in (1, 2):
        c = ycc[:, :, ch]
        pair = (c[:, 0::2] + c[:, 1::2]) / 2
        c[:, 0::2] = pair
        c[:, 1::2] = pair
    ycc = np.clip(np.rint(ycc), 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(ycc, mode="YCbCr").convert("RGB"))


def test_default_bar_is_classic_jet():
    bar = default_colour_bar(0, 1)
    x = bar.values
    ref = np.stack([np.clip(1.5 - np.abs(4 * x - k), 0, 1) for k in (3, 2, 1)], 1) * 255
    np.testing.assert_allclose(bar.colours, ref, atol=1e-3)
    assert len(bar) == 256 and bar.vmin == 0 and bar.vmax == 1
    b2 = default_colour_bar(10, 100)
    assert b2.vmin == 10 and b2.vmax == 100


def test_encode_at_bar_entries_gives_bar_colours():
    bar = default_colour_bar(0, 180)
    rgb = encode_colour(bar.values, bar)
    assert rgb.dtype == np.uint8 and rgb.shape == (256, 3)
    np.testing.assert_array_equal(rgb, np.rint(bar.colours))
    out = encode_colour(np.array([-5.0, 500.0, np.nan]), bar)
    np.testing.assert_array_equal(out[0], np.rint(bar.colours[0]))
    np.testing.assert_array_equal(out[1], np.rint(bar.colours[-1]))
    np.testing.assert_array_equal(out[2], [0, 0, 0])


def test_round_trip_clean(rng):
    bar = default_colour_bar(0, 180)
    rgb, truth = _scene(rng, bar)
    values, valid = decode_colour(rgb, bar)
    overlay = np.isfinite(truth)
    assert not valid[~overlay].any()                 # grey and text are invalid
    assert np.isnan(values[~valid]).all()
    # every overlay pixel more than 2 columns from grey/text is valid
    inner = ndimage.binary_erosion(overlay, np.ones((1, 5), bool), border_value=1)
    assert valid[inner].all()
    err = np.abs(values[valid] - truth[valid])
    assert err.max() <= bar.step                     # within the bar's quantisation
    # without bleed erosion the whole overlay decodes
    _, v0 = decode_colour(rgb, bar, bleed_px=0)
    np.testing.assert_array_equal(v0, overlay)


def test_round_trip_422_chroma_subsampled(rng):
    bar = default_colour_bar(0, 180)
    rgb, truth = _scene(rng, bar)
    sub = _subsample_422(rgb)
    values, valid = decode_colour(sub, bar)
    overlay = np.isfinite(truth)
    assert not valid[~overlay].any()                 # grey, text and bled edges are invalid
    inner = ndimage.binary_erosion(overlay, np.ones((1, 5), bool), border_value=1)
    assert valid[inner].mean() > 0.95
    # luma is exact per pixel and the chroma is the mean of the pixel's and its pair partner's:
    # the decoded value lies within the partner's difference of the truth, plus quantisation (the
    # bar's, and the uint8 rounding of the two YCbCr conversions: about one bar step more)
    partner = truth[:, np.arange(truth.shape[1]) ^ 1]
    assert np.isfinite(partner[valid]).all()         # no valid pixel shares chroma with grey
    err = np.abs(values[valid] - truth[valid])
    assert (err <= np.abs(truth - partner)[valid] + 2 * bar.step).all()
    assert np.median(err) <= 2 * bar.step


def test_mask_limits_region(rng):
    bar = default_colour_bar(0, 180)
    rgb, truth = _scene(rng, bar)
    mask = np.zeros(truth.shape, bool)
    mask[:, :60] = True
    _, valid = decode_colour(rgb, bar, mask=mask, bleed_px=0)
    assert not valid[:, 60:].any()
    np.testing.assert_array_equal(valid[:, :60], np.isfinite(truth)[:, :60])
    with pytest.raises(ColourBarError, match="mask shape"):
        decode_colour(rgb, bar, mask=mask[:, :10])


def test_mismatched_bar_raises(rng):
    bar = default_colour_bar(0, 180)
    rgb, _ = _scene(rng, bar)
    wrong = ColourBar([[255, 0, 255], [128, 0, 128]], [0, 100], name="magenta")
    with pytest.raises(ColourBarError, match="does not match") as ei:
        decode_colour(rgb, wrong, source="scan.png")
    assert "scan.png" in str(ei.value)


def test_grey_only_image_is_all_invalid_not_an_error(rng):
    g = rng.integers(0, 256, (20, 20)).astype(np.uint8)
    values, valid = decode_colour(np.repeat(g[..., None], 3, 2), default_colour_bar())
    assert not valid.any() and np.isnan(values).all()


@pytest.mark.parametrize("orientation,top_is_max", [("vertical", True), ("vertical", False),
                                                     ("horizontal", True),
                                                     ("horizontal", False)])
def test_sample_colour_bar_from_image(rng, orientation, top_is_max):
    ref = default_colour_bar(0, 100)
    img = np.repeat(rng.integers(0, 256, (300, 300)).astype(np.uint8)[..., None], 3, 2)
    ramp = np.linspace(0, 100, 256)
    if orientation == "vertical":
        strip = encode_colour(ramp[::-1] if top_is_max else ramp, ref)[:, None, :]
        img[20:276, 200:210] = strip
        box = (20, 200, 276, 210)
    else:
        strip = encode_colour(ramp if top_is_max else ramp[::-1], ref)[None, :, :]
        img[200:208, 20:276] = strip
        box = (200, 20, 208, 276)
    bar = sample_colour_bar(img, box, 0, 100, orientation, top_is_max)
    kpa = _smooth_kpa(rng, (30, 40), 2, 98)
    values, valid = decode_colour(encode_colour(kpa, ref), bar)
    assert valid.all()
    assert np.abs(values - kpa).max() <= 2 * ref.step


def test_sample_colour_bar_bad_input(rng):
    img = np.repeat(rng.integers(0, 256, (50, 50)).astype(np.uint8)[..., None], 3, 2)
    with pytest.raises(ColourBarError, match="outside the image"):
        sample_colour_bar(img, (0, 0, 60, 5), 0, 10)
    with pytest.raises(ColourBarError, match="no colours"):
        sample_colour_bar(img, (0, 0, 40, 5), 0, 10, source="x.png")
    with pytest.raises(ColourBarError, match="vmin < vmax"):
        sample_colour_bar(img, (0, 0, 40, 5), 10, 10)
    with pytest.raises(ColourBarError, match="orientation"):
        sample_colour_bar(img, (0, 0, 40, 5), 0, 10, orientation="diagonal")
    with pytest.raises(ColourBarError, match="RGB image"):
        sample_colour_bar(img[..., 0], (0, 0, 40, 5), 0, 10)
    with pytest.raises(ColourBarError, match="row0"):
        sample_colour_bar(img, (0, 0, 40), 0, 10)


def test_lut_csv_round_trip(tmp_path):
    bar = default_colour_bar(0, 180)
    p = tmp_path / "lut.csv"
    _write_lut_csv(p, bar)
    b2 = load_lut(p)
    np.testing.assert_allclose(b2.values, bar.values)
    np.testing.assert_allclose(b2.colours, bar.colours, atol=1e-3)


def test_lut_formats(tmp_path):
    # unsorted CSV, semicolons, comment, fractions 0-1
    p = tmp_path / "a.txt"
    p.write_text("# my bar\n10;1;0;0\n0;0;0;1\n5;0;1;0\n")
    b = load_lut(p)
    np.testing.assert_array_equal(b.values, [0, 5, 10])
    np.testing.assert_array_equal(b.colours, [[0, 0, 255], [0, 255, 0], [255, 0, 0]])
    j = tmp_path / "b.json"
    j.write_text(json.dumps({"vmin": 0, "vmax": 50, "colors": [[0, 0, 200], [200, 0, 0],
                                                               [200, 200, 0]]}))
    b = load_lut(j)
    np.testing.assert_array_equal(b.values, [0, 25, 50])
    j.write_text(json.dumps({"values": [3, 1], "colours": [[9, 9, 90], [90, 9, 9]]}))
    b = load_lut(j)
    np.testing.assert_array_equal(b.values, [1, 3])
    np.testing.assert_array_equal(b.colours[0], [90, 9, 9])


@pytest.mark.parametrize("name,text,match", [
    ("missing.csv", None, "does not exist"),
    ("empty.csv", "value,r,g,b\n", "no entries"),
    ("bad.csv", "0,1,2,3\nx,y,z,w\n", "not numbers"),
    ("short.csv", "0,1,2\n1,2,3\n", "4 numbers"),
    ("dup.csv", "0,1,2,3\n0,9,9,9\n", "distinct"),
    ("range.csv", "0,1,2,3\n1,2,3,300\n", "0-255"),
    ("one.csv", "0,1,2,3\n", "at least 2"),
    ("bad.json", "{not json", "not valid JSON"),
    ("nocol.json", '{"values": [1, 2]}', "no 'colours'"),
    ("novals.json", '{"colours": [[1, 2, 3], [4, 5, 6]]}', "needs 'values'"),
    ("count.json", '{"values": [1, 2, 3], "colours": [[1, 2, 3], [4, 5, 6]]}', "3 values"),
    ("nan.json", '{"values": [1, NaN], "colours": [[1, 2, 3], [4, 5, 6]]}', "NaN"),
])
def test_lut_bad_files(tmp_path, name, text, match):
    p = tmp_path / name
    if text is not None:
        p.write_text(text)
    with pytest.raises(ColourBarError, match=match) as ei:
        load_lut(p)
    assert name in str(ei.value)


def test_decode_bad_input(rng):
    bar = default_colour_bar()
    with pytest.raises(ColourBarError, match="RGB image"):
        decode_colour(np.zeros((4, 4)), bar)
    with pytest.raises(ColourBarError, match="ColourBar"):
        decode_colour(np.zeros((4, 4, 3)), "jet")
    with pytest.raises(ColourBarError, match="max_distance"):
        decode_colour(np.zeros((4, 4, 3)), bar, max_distance=-1)
    x = np.zeros((4, 4, 3))
    x[0, 0, 0] = np.nan
    with pytest.raises(ColourBarError, match="NaN"):
        decode_colour(x, bar, source="f.tif")
    with pytest.raises(ColourBarError, match="vmin < vmax"):
        bar.rescaled(5, 5)


@pytest.mark.parametrize("quality,subsampling", [(95, 1), (85, 2)])
def test_round_trip_jpeg_compressed(rng, quality, subsampling):
    # a real JPEG (4:2:2 or 4:2:0 chroma, DCT quantisation): no grey or text pixel is ever taken
    # for the overlay, and the decoded values stay close to the truth
    import io
    bar = default_colour_bar(0, 180)
    rgb, truth = _scene(rng, bar)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, subsampling=subsampling)
    buf.seek(0)
    jpg = np.asarray(Image.open(buf).convert("RGB"))
    values, valid = decode_colour(jpg, bar, bleed_rows=2 if subsampling == 2 else 0)
    overlay = np.isfinite(truth)
    assert not valid[~overlay].any()
    assert valid[overlay].mean() > 0.6
    err = np.abs(values[valid] - truth[valid])
    assert np.median(err) <= 2 * bar.step
    assert np.percentile(err, 99) <= 0.05 * (bar.vmax - bar.vmin)
