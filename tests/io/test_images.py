import json
import os

import numpy as np
import pytest
from PIL import Image

from layerseg.errors import (CalibrationError, ColourBarError, CorruptFileError,
                             InvalidImageError, ReadError, SpacingRequiredError,
                             UnsupportedFormatError)
from layerseg.io.colour import default_colour_bar, encode_colour
from layerseg.io.images import read_image, rgb_to_grey


def _grey(rng, shape=(30, 40)):
    return rng.integers(0, 256, shape).astype(np.uint8)


def test_png_8bit_with_user_spacing(tmp_path, rng):
    g = _grey(rng)
    p = tmp_path / "a.png"
    Image.fromarray(g).save(p)
    fs = read_image(p, spacing=(0.025, 0.05))
    assert len(fs) == 1
    f = fs[0]
    np.testing.assert_array_equal(f.bmode, g.astype(np.float32))
    assert f.bmode.dtype == np.float32 and f.intensity == "display"
    assert f.spacing_mm == (0.025, 0.05) and f.meta.calibration == "user"
    assert f.meta.source == str(p) and f.meta.extra["spacing_override"]


def test_no_spacing_is_allowed_but_measures_refuse(tmp_path, rng):
    p = tmp_path / "a.png"
    Image.fromarray(_grey(rng)).save(p)
    f = read_image(p)[0]
    assert f.spacing_mm is None and f.meta.calibration is None
    with pytest.raises(SpacingRequiredError):
        f.extent_mm


def test_sidecar_default_and_explicit(tmp_path, rng):
    p = tmp_path / "scan.png"
    Image.fromarray(_grey(rng)).save(p)
    (tmp_path / "scan.json").write_text(json.dumps({
        "spacing_mm": [0.02, 0.04], "dynamic_range_db": 55, "frequency_mhz": 24,
        "region": "cheek", "device": "Acme HF24"}))
    f = read_image(p)[0]
    assert f.spacing_mm == (0.02, 0.04) and f.meta.calibration == "sidecar"
    assert f.dynamic_range_db == 55 and f.meta.frequency_mhz == 24
    assert f.meta.region == "cheek" and f.meta.device == "Acme HF24"
    assert f.meta.extra["sidecar"] == str(tmp_path / "scan.json")
    # user spacing beats the sidecar, the rest of the sidecar still applies
    f = read_image(p, spacing=(0.03, 0.03))[0]
    assert f.spacing_mm == (0.03, 0.03) and f.meta.calibration == "user"
    assert f.dynamic_range_db == 55
    # an explicit sidecar elsewhere; False ignores the default one
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"spacing_mm": [0.01, 0.01]}))
    assert read_image(p, sidecar=other)[0].spacing_mm == (0.01, 0.01)
    assert read_image(p, sidecar=False)[0].spacing_mm is None


@pytest.mark.parametrize("content,exc,match", [
    ("{not json", CorruptFileError, "not valid JSON"),
    ("[1, 2]", CorruptFileError, "object"),
    ('{"spacing": [0.1, 0.1]}', CorruptFileError, "unknown key"),
    ('{"spacing_mm": [0.1]}', CalibrationError, "spacing_mm"),
    ('{"spacing_mm": [0.1, -1]}', CalibrationError, "spacing_mm"),
    ('{"spacing_mm": [0.1, "a"]}', CalibrationError, "spacing_mm"),
    ('{"spacing_mm": [25, 30]}', CalibrationError, "implausible"),
    ('{"dynamic_range_db": -3}', CorruptFileError, "dynamic_range_db"),
    ('{"intensity": "log"}', CorruptFileError, "intensity"),
    ('{"elasto": {"kind": "swe_kpa"}}', CorruptFileError, "exactly one"),
    ('{"elasto": {"kind": "shear", "map": "x.npy"}}', CorruptFileError, "kind"),
    ('{"elasto": {"map": "x.npy", "colour": 1}}', CorruptFileError, "unknown key"),
    ('{"bmode_box": [0, 0, 500, 10]}', CalibrationError, "outside the image"),
])
def test_bad_sidecar(tmp_path, rng, content, exc, match):
    p = tmp_path / "scan.png"
    Image.fromarray(_grey(rng)).save(p)
    (tmp_path / "scan.json").write_text(content)
    with pytest.raises(exc, match=match) as ei:
        read_image(p)
    assert "scan.json" in str(ei.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_sidecar_that_is_no_regular_file_is_refused_not_waited_on(tmp_path, rng):
    p = tmp_path / "scan.png"
    Image.fromarray(_grey(rng)).save(p)
    os.mkfifo(tmp_path / "scan.json")
    assert read_image(p)[0].spacing_mm is None      # the default sidecar must be a file
    with pytest.raises(ReadError, match="scan.json.*not a regular file"):
        read_image(p, sidecar=tmp_path / "scan.json")
    os.unlink(tmp_path / "scan.json")
    (tmp_path / "scan.json").mkdir()
    with pytest.raises(ReadError, match="scan.json.*not a regular file"):
        read_image(p, sidecar=tmp_path / "scan.json")


def test_missing_explicit_sidecar(tmp_path, rng):
    p = tmp_path / "a.png"
    Image.fromarray(_grey(rng)).save(p)
    with pytest.raises(ReadError, match="sidecar JSON does not exist"):
        read_image(p, sidecar=tmp_path / "nope.json")


def test_16bit_png_scaled_to_display(tmp_path, rng):
    g = rng.integers(0, 65536, (20, 25)).astype(np.uint16)
    p = tmp_path / "a16.png"
    Image.fromarray(g).save(p)
    f = read_image(p)[0]
    np.testing.assert_allclose(f.bmode, g * (255 / 65535), rtol=1e-6)
    assert f.meta.extra["bit_depth"] == 16


def test_multipage_tiff_lazy(tmp_path, rng, monkeypatch):
    pages = [_grey(rng, (16, 20)) for _ in range(4)]
    p = tmp_path / "cine.tif"
    ims = [Image.fromarray(a) for a in pages]
    ims[0].save(p, save_all=True, append_images=ims[1:])
    fs = read_image(p, spacing=(0.03, 0.06))
    assert len(fs) == 4
    # frames are decoded on access: count the page decodes
    import layerseg.io.images as mod
    calls = []
    orig = mod._page_array
    monkeypatch.setattr(mod, "_page_array", lambda im, path, page: calls.append(page)
                        or orig(im, path, page))
    f2 = fs[2]
    assert calls == [2]
    np.testing.assert_array_equal(f2.bmode, pages[2])
    assert f2.meta.frame_index == 2 and f2.spacing_mm == (0.03, 0.06)
    for i, f in enumerate(fs):
        np.testing.assert_array_equal(f.bmode, pages[i])


def test_float_tiff_display_and_envelope(tmp_path, rng):
    a = rng.uniform(0, 255, (10, 12)).astype(np.float32)
    p = tmp_path / "f.tif"
    Image.fromarray(a).save(p)
    f = read_image(p)[0]
    np.testing.assert_array_equal(f.bmode, a)
    env = rng.uniform(0, 3000, (10, 12)).astype(np.float32)
    q = tmp_path / "env.tif"
    Image.fromarray(env).save(q)
    with pytest.raises(InvalidImageError, match="envelope"):
        read_image(q)
    (tmp_path / "env.json").write_text('{"intensity": "envelope"}')
    f = read_image(q)[0]
    assert f.intensity == "envelope"
    np.testing.assert_array_equal(f.bmode, env)


def test_nan_float_tiff(tmp_path, rng):
    a = rng.uniform(0, 255, (10, 12)).astype(np.float32)
    a[3, 4] = np.nan
    a[5, 5] = np.inf
    p = tmp_path / "nan.tif"
    Image.fromarray(a).save(p)
    with pytest.raises(InvalidImageError, match="2 NaN/inf") as ei:
        read_image(p)
    assert "nan.tif" in str(ei.value)


def test_grey_stored_as_rgb_jpeg_and_png(tmp_path, rng):
    g = _grey(rng, (32, 48))
    rgb = np.repeat(g[..., None], 3, 2)
    rgb[0, 0, 1] = min(255, int(rgb[0, 0, 1]) + 1)       # one level off: still grey
    p = tmp_path / "g.png"
    Image.fromarray(rgb).save(p)
    f = read_image(p)[0]
    np.testing.assert_allclose(f.bmode, rgb.mean(axis=2), atol=1e-4)
    j = tmp_path / "g.jpg"
    Image.fromarray(np.repeat(g[..., None], 3, 2)).save(j, quality=95)
    f = read_image(j)[0]
    assert f.shape == (32, 48)
    assert np.abs(f.bmode - g).mean() < 8             # JPEG is lossy, grey survives


def test_colour_image_refused_or_converted(tmp_path, rng):
    rgb = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    p = tmp_path / "c.png"
    Image.fromarray(rgb).save(p)
    with pytest.raises(InvalidImageError, match="colour='luminance'") as ei:
        read_image(p)
    assert "c.png" in str(ei.value)
    f = read_image(p, colour="luminance")[0]
    ref = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(f.bmode, ref, atol=1e-3)
    with pytest.raises(InvalidImageError, match="'refuse' or 'luminance'"):
        read_image(p, colour="gray")
    # a sidecar asks for the conversion (layerseg infer reads images with the default); the
    # refusal says so
    assert '"colour": "luminance"' in str(ei.value)
    (tmp_path / "c.json").write_text('{"colour": "luminance"}')
    np.testing.assert_allclose(read_image(p)[0].bmode, ref, atol=1e-3)
    (tmp_path / "c.json").write_text('{"colour": "grey"}')
    with pytest.raises(CorruptFileError, match="c.json.*sidecar colour must be"):
        read_image(p)
    (tmp_path / "c.json").unlink()
    # RGBA and palette images go the same way
    q = tmp_path / "c4.png"
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(q)
    np.testing.assert_allclose(read_image(q, colour="luminance")[0].bmode, ref, atol=1e-3)
    pal = tmp_path / "pal.png"
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(pal)
    with pytest.raises(InvalidImageError, match="colour"):
        read_image(pal)


def test_rgb_to_grey_bad_shape():
    with pytest.raises(InvalidImageError, match="RGB"):
        rgb_to_grey(np.zeros((3, 3)))


def test_empty_single_pixel_and_thin(tmp_path):
    e = tmp_path / "empty.png"
    e.write_bytes(b"")
    with pytest.raises(CorruptFileError, match="empty") as ei:
        read_image(e)
    assert "empty.png" in str(ei.value)
    one = tmp_path / "one.png"
    Image.fromarray(np.array([[7]], np.uint8)).save(one)
    with pytest.raises(InvalidImageError, match="single pixel"):
        read_image(one)
    thin = tmp_path / "thin.tif"
    Image.fromarray(np.zeros((1, 40), np.uint8)).save(thin)
    with pytest.raises(InvalidImageError, match="too small"):
        read_image(thin)


def test_missing_truncated_and_non_image(tmp_path, rng):
    with pytest.raises(ReadError, match="does not exist"):
        read_image(tmp_path / "nope.png")
    t = tmp_path / "t.png"
    Image.fromarray(_grey(rng, (200, 200))).save(t)
    t.write_bytes(t.read_bytes()[:300])
    with pytest.raises(CorruptFileError, match="truncated") as ei:
        read_image(t)
    assert "t.png" in str(ei.value)
    x = tmp_path / "x.png"
    x.write_text("hello, not an image")
    with pytest.raises(UnsupportedFormatError, match="not an image"):
        read_image(x)


def test_16bit_colour_refused(tmp_path, rng):
    # Pillow decodes 16-bit RGB TIFF to 8 bits; it then meets the colour check like any RGB
    tifffile = pytest.importorskip("tifffile")
    p = tmp_path / "rgb16.tif"
    tifffile.imwrite(p, rng.integers(0, 65536, (10, 10, 3)).astype(np.uint16),
                     photometric="rgb")
    with pytest.raises(InvalidImageError, match="colour") as ei:
        read_image(p)
    assert "rgb16.tif" in str(ei.value)


def test_numeric_elasto_map_from_sidecar(tmp_path, rng):
    g = _grey(rng, (20, 30))
    p = tmp_path / "s.png"
    Image.fromarray(g).save(p)
    e = rng.uniform(5, 60, (20, 30)).astype(np.float32)
    e[0] = np.nan
    np.save(tmp_path / "s_kpa.npy", e)
    (tmp_path / "s.json").write_text(json.dumps(
        {"spacing_mm": [0.02, 0.05], "elasto": {"kind": "swe_kpa", "map": "s_kpa.npy"}}))
    f = read_image(p)[0]
    assert f.elasto_kind == "swe_kpa"
    np.testing.assert_array_equal(f.elasto, e)
    assert not f.elasto_valid[0].any() and f.elasto_valid[1:].all()
    np.save(tmp_path / "s_kpa.npy", e[:10])
    with pytest.raises(InvalidImageError, match="differs") as ei:
        read_image(p)
    assert "s_kpa.npy" in str(ei.value)
    (tmp_path / "s_kpa.npy").unlink()
    with pytest.raises(ReadError, match="does not exist"):
        read_image(p)


def _side_by_side(rng):
    """A screen: grey B-mode left, colour SWE map right, a vertical colour bar at the far right."""
    bar = default_colour_bar(0, 100)
    h, w = 40, 50
    screen = np.zeros((60, 140, 3), np.uint8)
    g = _grey(rng, (h, w))
    screen[10:50, 5:55] = g[..., None]
    kpa = rng.uniform(3, 97, (h, w))
    screen[10:50, 65:115] = encode_colour(kpa, bar)
    screen[2:58, 125:131] = encode_colour(np.linspace(100, 0, 56), bar)[:, None]
    return screen, g, kpa, bar


def test_side_by_side_colour_elasto_via_bar_box(tmp_path, rng):
    screen, g, kpa, bar = _side_by_side(rng)
    p = tmp_path / "sbs.png"
    Image.fromarray(screen).save(p)
    (tmp_path / "sbs.json").write_text(json.dumps({
        "spacing_mm": [0.05, 0.05], "bmode_box": [10, 5, 50, 55],
        "elasto": {"kind": "swe_kpa", "bar_box": [2, 125, 58, 131], "vmin": 0, "vmax": 100,
                   "overlay_box": [10, 65, 50, 115], "bleed_px": 0}}))
    f = read_image(p)[0]
    np.testing.assert_array_equal(f.bmode, g)
    assert f.elasto_valid.all()
    # the bar is sampled at 56 rows, so its quantisation is 100/55 kPa
    assert np.abs(f.elasto - kpa).max() <= 100 / 55


def test_overlay_on_bmode_with_default_lut(tmp_path, rng):
    bar = default_colour_bar(0, 180)
    g = _grey(rng, (40, 60))
    rgb = np.repeat(g[..., None], 3, 2)
    kpa = rng.uniform(10, 170, (20, 30))
    rgb[10:30, 20:50] = encode_colour(kpa, bar)
    p = tmp_path / "ov.png"
    Image.fromarray(rgb).save(p)
    (tmp_path / "ov.json").write_text(json.dumps({
        "elasto": {"kind": "swe_kpa", "lut": "default", "vmin": 0, "vmax": 180,
                   "overlay_box": [10, 20, 30, 50], "bleed_px": 0}}))
    f = read_image(p)[0]
    assert f.meta.extra["bmode_under_overlay"]
    assert f.elasto_valid[10:30, 20:50].all() and f.elasto_valid.sum() == 600
    assert np.abs(f.elasto[10:30, 20:50] - kpa).max() <= bar.step
    np.testing.assert_allclose(f.bmode[:10], g[:10], atol=1e-3)


def test_overlay_bad_cases(tmp_path, rng):
    screen, g, kpa, bar = _side_by_side(rng)
    p = tmp_path / "sbs.png"
    Image.fromarray(screen).save(p)
    side = tmp_path / "sbs.json"
    base = {"bmode_box": [10, 5, 50, 55]}
    side.write_text(json.dumps({**base, "elasto": {"lut": "default", "vmin": 0, "vmax": 100,
                                                   "overlay_box": [10, 65, 40, 115]}}))
    with pytest.raises(CalibrationError, match="must match"):
        read_image(p)
    side.write_text(json.dumps({**base, "elasto": {"lut": "default",
                                                   "overlay_box": [10, 65, 50, 115]}}))
    with pytest.raises(CorruptFileError, match="vmin and vmax"):
        read_image(p)
    # a bar of other colours than the overlay's
    (tmp_path / "wrong.csv").write_text("0,255,0,255\n100,128,0,128\n")
    side.write_text(json.dumps({**base, "elasto": {"lut": "wrong.csv",
                                                   "overlay_box": [10, 65, 50, 115]}}))
    with pytest.raises(ColourBarError, match="does not match") as ei:
        read_image(p)
    assert "sbs.png" in str(ei.value)
    # a colour overlay described for a grey image
    q = tmp_path / "grey.png"
    Image.fromarray(g).save(q)
    (tmp_path / "grey.json").write_text(json.dumps({"elasto": {"lut": "default", "vmin": 0,
                                                               "vmax": 1}}))
    with pytest.raises(ColourBarError, match="grey"):
        read_image(q)
