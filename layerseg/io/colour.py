"""Elastography colour overlays: decode colour -> value through a colour bar, and back.

Scanners show shear-wave (kPa) or strain elastography as a colour map over (or beside) the B-mode,
with a colour bar giving the value of each colour. A `ColourBar` is that mapping: colours sorted
along their values. It comes from a LUT file (`load_lut`), from the bar drawn in the image
(`sample_colour_bar`, given its box and end values), or from the default map layerseg ships
(`default_colour_bar`).

`decode_colour` maps each pixel to the value of the nearest bar colour (a KD-tree over the bar,
densified by linear interpolation between its entries so a pixel between two entries gets a value
between theirs) and marks invalid every pixel whose colour is farther than `max_distance` from the
bar: B-mode grey showing through, white or grey text, and the half-grey colours that 4:2:2 chroma
subsampling bleeds across the overlay's edges (``bleed_px`` also drops pixels within two columns of
an invalid one: with 4:2:2 chroma a pixel shares its chroma with its pair neighbour, and a grey
neighbour carrying half the overlay's chroma can pass the distance test itself; ``bleed_rows`` does
the same along the columns for 4:2:0 chroma). A bar that does not match the overlay at all (most
coloured pixels far from every bar colour) raises `ColourBarError`.

`encode_colour` is the inverse (values -> RGB through the bar); the simulator renders overlays with
it and the tests use it for round trips.

Colours are RGB on a 0-255 scale throughout; distances are Euclidean in that RGB space.
"""

from __future__ import annotations

import csv
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..errors import ColourBarError
from ._grey import is_effectively_grey, pixel_chroma

__all__ = ["ColourBar", "load_lut", "sample_colour_bar", "decode_colour", "encode_colour",
           "default_colour_bar", "DEFAULT_MAX_DISTANCE", "MIN_OVERLAY_CHROMA"]

DEFAULT_MAX_DISTANCE = 40.0
"""Default largest RGB distance (0-255 scale) from the bar for a pixel to count as decoded. Grey is
more than 100 away from every colour of a jet-like map, JPEG noise is a few levels."""

MIN_OVERLAY_CHROMA = 40.0
"""A pixel whose chroma (`layerseg.io._grey.pixel_chroma`) reaches this counts as an overlay
colour when judging whether a colour bar matches an overlay (grey and white text stay below it).
Deliberately stricter than the grey rule's `layerseg.io._grey.GREY_CHROMA_MAX` (24): a pixel
between the two is not grey, but too faint to be held against the bar (a half-chroma pixel at the
edge of a 4:2:2-subsampled overlay). Whether an image or a bar is grey at all is decided by
`layerseg.io._grey.is_effectively_grey`, as in every reader."""

_MISMATCH_FRACTION = 0.5
_DENSIFY_STEP = 0.5  # largest RGB step between densified bar samples

DEFAULT_LUT = "colourbar_jet.csv"


class ColourBar:
    """A colour bar: colours sorted along the values they stand for.

    Parameters
    ----------
    colours : array_like, shape (n, 3)
        RGB colours on a 0-255 scale (float), n >= 2.
    values : array_like, shape (n,)
        The value of each colour (kPa, or unitless strain); sorted on construction, distinct.
    name : str, optional
        Where the bar came from (a file, "sampled", "default"), for messages.

    Attributes
    ----------
    colours : ndarray, float64, shape (n, 3)
    values : ndarray, float64, shape (n,), strictly increasing
    """

    def __init__(self, colours, values, name: str | None = None):
        self.name = name
        try:
            c = np.asarray(colours, dtype=np.float64)
            v = np.asarray(values, dtype=np.float64).ravel()
        except (TypeError, ValueError) as e:
            raise ColourBarError(f"colour bar colours and values must be numbers ({e})",
                                 name) from None
        if c.ndim != 2 or c.shape[1] != 3:
            raise ColourBarError(f"colour bar colours must have shape (n, 3), got {c.shape}", name)
        if c.shape[0] != v.shape[0]:
            raise ColourBarError(f"colour bar has {c.shape[0]} colours but {v.shape[0]} values",
                                 name)
        if c.shape[0] < 2:
            raise ColourBarError("a colour bar needs at least 2 colours", name)
        if not (np.isfinite(c).all() and np.isfinite(v).all()):
            raise ColourBarError("colour bar holds NaN/inf colours or values", name)
        if c.min() < 0 or c.max() > 255:
            raise ColourBarError(f"colour bar colours must lie in 0-255, got {c.min():g} to "
                                 f"{c.max():g}", name)
        order = np.argsort(v, kind="stable")
        v, c = v[order], c[order]
        if np.any(np.diff(v) <= 0):
            raise ColourBarError("colour bar values must be distinct", name)
        self.colours, self.values = c, v
        self._tree: cKDTree | None = None
        self._dense_values: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return (f"ColourBar({len(self)} colours, {self.vmin:g} to {self.vmax:g}"
                f"{', ' + self.name if self.name else ''})")

    @property
    def vmin(self) -> float:
        return float(self.values[0])

    @property
    def vmax(self) -> float:
        return float(self.values[-1])

    @property
    def step(self) -> float:
        """Largest value step between neighbouring bar entries (the bar's quantisation)."""
        return float(np.diff(self.values).max())

    def rescaled(self, vmin: float, vmax: float) -> "ColourBar":
        """The same colours spread linearly over ``[vmin, vmax]`` (keeps relative spacing)."""
        if not (np.isfinite(vmin) and np.isfinite(vmax) and vmax > vmin):
            raise ColourBarError(f"colour bar range must satisfy vmin < vmax, got {vmin}, {vmax}",
                                 self.name)
        t = (self.values - self.vmin) / (self.vmax - self.vmin)
        return ColourBar(self.colours, vmin + t * (vmax - vmin), name=self.name)

    def _dense(self) -> tuple[cKDTree, np.ndarray]:
        """KD-tree over the bar densified by linear interpolation (steps <= 0.5 RGB level)."""
        if self._tree is None:
            seg = np.linalg.norm(np.diff(self.colours, axis=0), axis=1)
            k = np.maximum(1, np.ceil(seg / _DENSIFY_STEP)).astype(int)
            # parameter along the bar: entry i at position i, subdivided k_i times
            pos = np.concatenate([i + np.arange(ki) / ki for i, ki in enumerate(k)]
                                 + [np.array([len(self) - 1.0])])
            idx = np.arange(len(self), dtype=np.float64)
            dense_c = np.stack([np.interp(pos, idx, self.colours[:, j]) for j in range(3)], 1)
            self._dense_values = np.interp(pos, idx, self.values)
            self._tree = cKDTree(dense_c)
        return self._tree, self._dense_values


def default_colour_bar(vmin: float = 0.0, vmax: float = 180.0) -> ColourBar:
    """The jet-like map layerseg ships (``layerseg/data/colourbar_jet.csv``, 256 entries: dark blue
    -> blue -> cyan -> yellow -> red -> dark red, the classic piecewise-linear "jet"), spread over
    ``[vmin, vmax]`` (default 0-180 kPa, a common shear-wave display range).

    It is our own table, not any vendor's: use it for simulated overlays, or when a scanner's map is
    jet-like and its range is known; otherwise sample the bar from the image."""
    ref = resources.files("layerseg.data").joinpath(DEFAULT_LUT)
    with resources.as_file(ref) as p:
        bar = load_lut(p)
    bar.name = "default"
    return bar.rescaled(vmin, vmax)


def load_lut(path: str | os.PathLike) -> ColourBar:
    """Load a colour bar from a LUT file.

    Formats
    -------
    CSV (``.csv``, ``.txt``): one entry per line, ``value,r,g,b`` (commas, semicolons, tabs or
    spaces), in any order of values; a first line that is not numbers is a header and skipped;
    ``#`` starts a comment line.
    JSON (``.json``): ``{"values": [...], "colours": [[r, g, b], ...]}``, or ``{"vmin": a, "vmax":
    b, "colours": [...]}`` for colours evenly spread from vmin to vmax (``"colors"`` is accepted).

    Colours are 0-255; if every colour component is <= 1 they are read as 0-1 fractions and
    scaled by 255.

    Returns
    -------
    ColourBar
    """
    p = Path(path)
    if not p.is_file():
        raise ColourBarError("colour bar LUT file does not exist", p)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ColourBarError(f"cannot read the LUT file ({e})", p) from None
    if p.suffix.lower() == ".json":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ColourBarError(f"LUT file is not valid JSON ({e})", p) from None
        if not isinstance(d, dict):
            raise ColourBarError("LUT JSON must be an object with 'colours' and 'values'", p)
        cols = d.get("colours", d.get("colors"))
        if cols is None:
            raise ColourBarError("LUT JSON has no 'colours' list", p)
        if "values" in d:
            vals = d["values"]
        elif "vmin" in d and "vmax" in d:
            try:
                vals = np.linspace(float(d["vmin"]), float(d["vmax"]), len(cols))
            except (TypeError, ValueError):
                raise ColourBarError("LUT JSON vmin/vmax must be numbers", p) from None
        else:
            raise ColourBarError("LUT JSON needs 'values', or 'vmin' and 'vmax'", p)
    else:
        rows = []
        for ln, line in enumerate(text.splitlines(), start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            parts = [x for x in s.replace(";", ",").replace("\t", ",").replace(" ", ",")
                     .split(",") if x]
            try:
                nums = [float(x) for x in parts]
            except ValueError:
                if not rows:
                    continue  # a header
                raise ColourBarError(f"line {ln} of the LUT is not numbers: {s!r}", p) from None
            if len(nums) != 4:
                raise ColourBarError(f"line {ln} of the LUT must hold value,r,g,b (4 numbers), "
                                     f"got {len(nums)}", p)
            rows.append(nums)
        if not rows:
            raise ColourBarError("LUT file holds no entries (expected lines of value,r,g,b)", p)
        a = np.asarray(rows)
        vals, cols = a[:, 0], a[:, 1:]
    try:
        c = np.asarray(cols, dtype=np.float64)
    except (TypeError, ValueError):
        raise ColourBarError("LUT colours must be numbers", p) from None
    if c.size and c.max() <= 1.0:
        c = c * 255.0
    return ColourBar(c, vals, name=str(p))


def _check_rgb(rgb, source) -> np.ndarray:
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise ColourBarError(f"expected an RGB image of shape (rows, cols, 3), got {a.shape}",
                             source)
    if a.dtype.kind not in "uif":
        raise ColourBarError(f"RGB image has non-numeric type {a.dtype}", source)
    return a[..., :3]


def sample_colour_bar(rgb, box, vmin: float, vmax: float, orientation: str = "vertical",
                      top_is_max: bool = True, *, source=None) -> ColourBar:
    """Sample the colour bar drawn in an image.

    Parameters
    ----------
    rgb : ndarray, shape (rows, cols, 3)
        The screen image (uint8, or float on a 0-255 scale).
    box : (row0, col0, row1, col1)
        The bar's pixels, end-exclusive, tight on the coloured strip (no frame or tick marks).
    vmin, vmax : float
        The values printed at the bar's ends (kPa or strain).
    orientation : {'vertical', 'horizontal'}
        Along which axis the colours change.
    top_is_max : bool
        Vertical bars: the top row is `vmax` (usual). Horizontal bars: True means the right end is
        `vmax` (the "top" of the scale).
    source : str, optional
        File name for messages.

    Returns
    -------
    ColourBar
        One entry per row (vertical) or column (horizontal) of the box: the median colour across
        the bar's width, values spaced linearly from `vmin` to `vmax`.
    """
    a = _check_rgb(rgb, source).astype(np.float64)
    try:
        r0, c0, r1, c1 = (int(x) for x in box)
    except (TypeError, ValueError):
        raise ColourBarError(f"colour bar box must be (row0, col0, row1, col1), got {box!r}",
                             source) from None
    if not (0 <= r0 < r1 <= a.shape[0] and 0 <= c0 < c1 <= a.shape[1]):
        raise ColourBarError(f"colour bar box {(r0, c0, r1, c1)} lies outside the image "
                             f"({a.shape[0]} x {a.shape[1]})", source)
    if orientation not in ("vertical", "horizontal"):
        raise ColourBarError(f"orientation must be 'vertical' or 'horizontal', got "
                             f"{orientation!r}", source)
    if not (np.isfinite(vmin) and np.isfinite(vmax) and vmax > vmin):
        raise ColourBarError(f"colour bar end values must satisfy vmin < vmax, got {vmin}, "
                             f"{vmax}", source)
    patch = a[r0:r1, c0:c1]
    cols = np.median(patch, axis=1 if orientation == "vertical" else 0)
    n = cols.shape[0]
    if n < 2:
        raise ColourBarError("colour bar box must be at least 2 pixels long along the bar",
                             source)
    if is_effectively_grey(cols[None]):
        raise ColourBarError(f"the colour bar box {(r0, c0, r1, c1)} holds no colours (grey "
                             "only); check the box", source)
    vals = np.linspace(vmin, vmax, n)
    # vertical: row 0 is the top; horizontal: column 0 is the left
    top_first = orientation == "vertical"
    if top_is_max == top_first:
        vals = vals[::-1]
    # merge runs of identical colours (flat stretches of a drawn bar) into their mean value
    key = np.round(cols).astype(np.int64)
    packed = (key[:, 0] << 16) | (key[:, 1] << 8) | key[:, 2]
    uniq, inv = np.unique(packed, return_inverse=True)
    if len(uniq) < 2:
        raise ColourBarError("the colour bar box holds a single colour; check the box", source)
    mean_v = np.bincount(inv, weights=vals) / np.bincount(inv)
    mean_c = np.stack([np.bincount(inv, weights=cols[:, j]) / np.bincount(inv)
                       for j in range(3)], 1)
    if len(np.unique(mean_v)) != len(mean_v):
        raise ColourBarError("the colour bar box repeats colours at separate places along the "
                             "bar, so a colour has no single value; check the box", source)
    return ColourBar(mean_c, mean_v, name=f"sampled from {source}" if source else "sampled")


def decode_colour(rgb, bar: ColourBar, max_distance: float = DEFAULT_MAX_DISTANCE, *,
                  bleed_px: int = 2, bleed_rows: int = 0, mask=None, source=None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Decode a colour overlay into values through a colour bar.

    Parameters
    ----------
    rgb : ndarray, shape (rows, cols, 3)
        The overlay image (uint8, or float on a 0-255 scale; a 4th alpha channel is ignored).
    bar : ColourBar
    max_distance : float
        A pixel farther than this (RGB Euclidean, 0-255 scale) from every colour of the bar is
        invalid: grey B-mode showing through, text, subsampled chroma bleed.
    bleed_px : int
        Also mark invalid the pixels within this many columns of an invalid one. 4:2:2 chroma is
        shared by horizontal pixel pairs, so at an edge the overlay pixel carries half of grey's
        chroma and its grey partner half of the overlay's; the partner may pass the distance test,
        hence 2 by default. 0 keeps every pixel that passes the distance test.
    bleed_rows : int
        The same along the columns (for 4:2:0 chroma, set 2).
    mask : ndarray of bool, shape (rows, cols), optional
        Where the overlay lies; pixels outside are invalid.
    source : str, optional
        File name for messages.

    Returns
    -------
    values : ndarray, float32, shape (rows, cols)
        The decoded values (the bar's unit), NaN where invalid.
    valid : ndarray of bool, shape (rows, cols)

    Raises
    ------
    ColourBarError
        If the bar does not match the overlay: more than half of the coloured pixels (chroma >=
        `MIN_OVERLAY_CHROMA`) lie farther than `max_distance` from every bar colour.
    """
    if not isinstance(bar, ColourBar):
        raise ColourBarError(f"bar must be a ColourBar, got {type(bar).__name__}", source)
    a = _check_rgb(rgb, source)
    if not (np.isfinite(max_distance) and max_distance > 0):
        raise ColourBarError(f"max_distance must be a positive number, got {max_distance}",
                             source)
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ColourBarError("overlay image holds NaN/inf", source)
    rows, cols = a.shape[:2]
    region = np.ones((rows, cols), bool)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != (rows, cols):
            raise ColourBarError(f"overlay mask shape {m.shape} differs from the image "
                                 f"({rows}, {cols})", source)
        region = m
    tree, dense_v = bar._dense()
    px = a[region].astype(np.float64)
    # decode each distinct colour once (screen images hold far fewer colours than pixels)
    key = np.round(px).astype(np.int64).clip(0, 255)
    exact = np.array_equal(key, px)
    if exact:
        packed = (key[:, 0] << 16) | (key[:, 1] << 8) | key[:, 2]
        uniq, inv = np.unique(packed, return_inverse=True)
        uc = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], 1).astype(np.float64)
        d_u, i_u = tree.query(uc, k=1)
        dist, idx = d_u[inv], i_u[inv]
    else:
        dist, idx = tree.query(px, k=1)
    ok = dist <= max_distance
    coloured = pixel_chroma(px) >= MIN_OVERLAY_CHROMA
    n_col = int(coloured.sum())
    if n_col >= 20:
        far = int((coloured & ~ok).sum())
        if far > _MISMATCH_FRACTION * n_col:
            raise ColourBarError(
                f"the colour bar ({bar!r}) does not match the overlay: {far} of {n_col} coloured "
                f"pixels ({100 * far / n_col:.0f}%) lie farther than {max_distance:g} RGB levels "
                "from every bar colour; check the LUT, or the bar box and its end values", source)
    valid = np.zeros((rows, cols), bool)
    valid[region] = ok
    if bleed_px > 0:
        st = np.ones((1, 2 * int(bleed_px) + 1), bool)
        valid = ndimage.binary_erosion(valid, structure=st, border_value=1)
    if bleed_rows > 0:
        st = np.ones((2 * int(bleed_rows) + 1, 1), bool)
        valid = ndimage.binary_erosion(valid, structure=st, border_value=1)
    values = np.full((rows, cols), np.nan, np.float32)
    v_region = dense_v[idx].astype(np.float32)
    values[region] = v_region
    values[~valid] = np.nan
    return values, valid


def encode_colour(values, bar: ColourBar) -> np.ndarray:
    """Render values as colours through a bar (the inverse of `decode_colour`).

    Parameters
    ----------
    values : array_like, any shape
        Values in the bar's unit; clipped to ``[bar.vmin, bar.vmax]``; NaN renders black.
    bar : ColourBar

    Returns
    -------
    ndarray, uint8, shape values.shape + (3,)
        RGB, linearly interpolated between the bar's entries and rounded.
    """
    if not isinstance(bar, ColourBar):
        raise ColourBarError(f"bar must be a ColourBar, got {type(bar).__name__}")
    v = np.asarray(values, dtype=np.float64)
    nan = ~np.isfinite(v)
    vc = np.clip(np.where(nan, bar.vmin, v), bar.vmin, bar.vmax)
    out = np.stack([np.interp(vc, bar.values, bar.colours[:, j]) for j in range(3)], -1)
    out[nan] = 0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _write_lut_csv(path: str | os.PathLike, bar: ColourBar) -> None:
    """Write a bar as a CSV LUT (``value,r,g,b`` with a header), the format `load_lut` reads."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["value", "r", "g", "b"])
        for v, c in zip(bar.values, bar.colours):
            w.writerow([repr(float(v))] + [f"{x:.6g}" for x in c])
