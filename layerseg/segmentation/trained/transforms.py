"""Transforms for trained segmenters, MONAI style: every transform an array class and a
dictionary ``...d`` class.

Arrays are channel-first, shape (C, rows, cols). B-mode images reach the augmentations on the
display scale mapped to 0-1 (grey / 255, MONAI `ScaleIntensityRange`), which is a log-compressed
envelope: one grey unit of 1/1 is ``dynamic_range_db`` dB (60 dB unless told). The ultrasound
augmentations are written in those terms:

- `RandGain`: a receive gain change (dB added everywhere);
- `RandDynamicRange`: re-compression to another displayed dynamic range (the bright end kept);
- `RandTGCSlope`: a time-gain-compensation slope change (dB per image depth, linear in depth);
- `RandSpeckle`: fresh Rayleigh speckle multiplied into the envelope (log domain);
- `RandLowerFrequency`: blur as a lower transmit frequency would (a longer axial pulse and a
  wider beam);
- `RandSpeckleSize`: fresh speckle of another grain (a band-limited complex Gaussian field of
  drawn axial and lateral correlation lengths, its envelope multiplied in), so that no one
  speckle size marks a layer;
- `RandSpacingScaled`: the frame's stated pixel spacing scaled before `ResampleToSpacingd`, so
  layers come out thicker or thinner (and the speckle grain with them), anchored at the skin
  side (the resampling keeps the top edge);
- `RandLayerContrastd`: the brightness of each tissue layer moved by its own drawn dB offset
  (needs the label map; the offsets are blurred over the point-spread width, so no sharp edge
  that the image lacks is painted in), which changes the brightness ranking of the layers as
  scanners and subjects do (muscle brighter than dermis, fat nearly as bright as dermis);
- `RandLayerThicknessd`: each tissue layer's thickness changed by its own drawn factor (every
  column stretched axially layer by layer, skin side fixed), so no thickness or depth marks a
  layer;

plus MONAI's own `RandFlip`/`RandFlipd` for the horizontal (lateral) flip.

`ResampleToSpacing` brings a frame to a fixed physical pixel spacing so that a network sees
millimetres, whatever the scanner's spacing: images linear, label maps nearest. The resampling
keeps the frame's physical extent (pixel edges map to pixel edges) so `resample_to_shape` takes
an answer back onto the frame's own grid.

Never imported by ``import layerseg`` (MONAI is imported here).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
from monai.transforms import MapTransform, RandomizableTransform, Transform
from scipy import ndimage as ndi

from ...frame import DEFAULT_DYNAMIC_RANGE_DB
from ..pipeline import resample_to_shape  # one owner: the shared pipeline (no torch there)

__all__ = ["resample_to_shape", "spacing_shape", "ResampleToSpacing", "ResampleToSpacingd",
           "NormaliseElasto", "NormaliseElastod", "RandGain", "RandGaind", "RandDynamicRange",
           "RandDynamicRanged", "RandTGCSlope", "RandTGCSloped", "RandSpeckle", "RandSpeckled",
           "RandLowerFrequency", "RandLowerFrequencyd", "RandSpeckleSize", "RandSpeckleSized",
           "RandLayerContrast", "RandLayerContrastd", "RandLayerTexture", "RandLayerTextured",
           "RandSpacingScaled", "RandLayerThicknessd", "NOMINAL_DYNAMIC_RANGE_DB"]

NOMINAL_DYNAMIC_RANGE_DB = DEFAULT_DYNAMIC_RANGE_DB
"""Displayed dynamic range assumed when converting dB to the 0-1 grey scale: the project's one
default (`layerseg.frame.DEFAULT_DYNAMIC_RANGE_DB`)."""


# --------------------------------------------------------------------------- resampling
def spacing_shape(shape: Sequence[int], spacing_mm: Sequence[float],
                  target_spacing_mm: Sequence[float]) -> tuple[int, int]:
    """Grid size of a frame of `shape` at `spacing_mm` when resampled to `target_spacing_mm`.

    Parameters
    ----------
    shape : (rows, cols)
    spacing_mm, target_spacing_mm : (axial_mm, lateral_mm)

    Returns
    -------
    (int, int)
        ``round(rows * axial / target_axial)``, same laterally; at least 1.
    """
    return tuple(max(1, int(round(n * s / t))) for n, s, t in
                 zip(shape, spacing_mm, target_spacing_mm))  # type: ignore[return-value]


class ResampleToSpacing(Transform):
    """Resample a channel-first array from its pixel spacing to a fixed one.

    Parameters
    ----------
    target_spacing_mm : (float, float)
        Spacing (axial, lateral) in mm the network works at.
    mode : {'linear', 'nearest'}
        Linear for images, nearest for label maps (integer values kept, only 0-7 come out).
    """

    def __init__(self, target_spacing_mm: Sequence[float], mode: str = "linear"):
        if mode not in ("linear", "nearest"):
            raise ValueError(f"mode must be 'linear' or 'nearest', got {mode!r}")
        self.target_spacing_mm = tuple(float(s) for s in target_spacing_mm)
        self.mode = mode

    def __call__(self, img: np.ndarray, spacing_mm: Sequence[float]) -> np.ndarray:
        """`img` of shape (C, rows, cols) at `spacing_mm` (axial, lateral) -> (C, rows', cols')."""
        shape = spacing_shape(np.shape(img)[-2:], spacing_mm, self.target_spacing_mm)
        return resample_to_shape(img, shape, order=0 if self.mode == "nearest" else 1)


class ResampleToSpacingd(MapTransform):
    """Dictionary `ResampleToSpacing`: the spacing is read from ``data[spacing_key]``.

    Parameters
    ----------
    keys : keys to resample
    target_spacing_mm : (float, float)
    mode : str or sequence of str
        Per key, ``linear`` or ``nearest``.
    spacing_key : str
        Where the (axial, lateral) spacing in mm is; afterwards it holds the target spacing and
        the original is kept under ``spacing_key + '_orig'``.
    """

    def __init__(self, keys, target_spacing_mm: Sequence[float], mode="linear",
                 spacing_key: str = "spacing_mm", allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        modes = [mode] * len(self.keys) if isinstance(mode, str) else list(mode)
        self.resamplers = {k: ResampleToSpacing(target_spacing_mm, m)
                           for k, m in zip(self.keys, modes)}
        self.spacing_key = spacing_key

    def __call__(self, data: Mapping[Hashable, np.ndarray]) -> dict:
        d = dict(data)
        spacing = tuple(float(s) for s in np.asarray(d[self.spacing_key]).ravel())
        for key in self.key_iterator(d):
            d[key] = self.resamplers[key](d[key], spacing)
        d[f"{self.spacing_key}_orig"] = spacing
        d[self.spacing_key] = next(iter(self.resamplers.values())).target_spacing_mm
        return d


# --------------------------------------------------------------------------- elastography
class NormaliseElasto(Transform):
    """Elastography map -> a network input channel: NaN (invalid) -> 0, scaled to about 0-1.

    Parameters
    ----------
    kpa_scale : float
        Stiffness (kPa, ``swe_kpa``) divided by this (default 100 kPa); strain is taken as is.
    """

    def __init__(self, kpa_scale: float = 100.0):
        self.kpa_scale = float(kpa_scale)

    def __call__(self, img: np.ndarray, kind: str = "swe_kpa") -> np.ndarray:
        a = np.asarray(img, dtype=np.float32)
        a = np.where(np.isfinite(a), a, 0.0).astype(np.float32)
        if kind == "swe_kpa":
            a = a / self.kpa_scale
        return np.clip(a, -3.0, 3.0).astype(np.float32)


class NormaliseElastod(MapTransform):
    """Dictionary `NormaliseElasto`; the kind is read from ``data[kind_key]`` (``swe_kpa`` if
    absent)."""

    def __init__(self, keys, kpa_scale: float = 100.0, kind_key: str = "elasto_kind",
                 allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.t = NormaliseElasto(kpa_scale)
        self.kind_key = kind_key

    def __call__(self, data):
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.t(d[key], d.get(self.kind_key) or "swe_kpa")
        return d


# --------------------------------------------------------------------------- augmentation
class _RandGrey(RandomizableTransform):
    """Base of the ultrasound augmentations on 0-1 display images of shape (C, rows, cols)."""

    def __init__(self, prob: float = 0.5, dynamic_range_db: float = NOMINAL_DYNAMIC_RANGE_DB):
        RandomizableTransform.__init__(self, prob)
        self.dynamic_range_db = float(dynamic_range_db)

    def randomize(self, data: np.ndarray | None = None) -> None:
        super().randomize(None)
        if self._do_transform:
            self._draw(data)

    def _draw(self, img) -> None:  # pragma: no cover - each subclass draws its own
        raise NotImplementedError

    def __call__(self, img: np.ndarray, randomize: bool = True) -> np.ndarray:
        img = np.asarray(img, dtype=np.float32)
        if randomize:
            self.randomize(img)
        if not self._do_transform:
            return img
        return np.clip(self._apply(img), 0.0, 1.0).astype(np.float32)


class _RandGreyd(RandomizableTransform, MapTransform):
    """Dictionary form of a `_RandGrey`: one draw, applied to every key."""

    array_class: type[_RandGrey]

    def __init__(self, keys, prob: float = 0.5, allow_missing_keys: bool = False, **kwargs):
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, 1.0)
        self.t = self.array_class(prob=prob, **kwargs)

    def set_random_state(self, seed=None, state=None):
        super().set_random_state(seed, state)
        self.t.set_random_state(seed, state)
        return self

    def __call__(self, data):
        d = dict(data)
        first = True
        for key in self.key_iterator(d):
            d[key] = self.t(d[key], randomize=first)
            first = False
        return d


class RandGain(_RandGrey):
    """Receive gain change: a uniform ``gain_db`` in `gain_range_db` added everywhere.

    Parameters
    ----------
    prob : float
    gain_range_db : (float, float)
    dynamic_range_db : float
        Displayed dynamic range that the 0-1 scale spans.
    """

    def __init__(self, prob: float = 0.5, gain_range_db: Sequence[float] = (-6.0, 6.0),
                 dynamic_range_db: float = NOMINAL_DYNAMIC_RANGE_DB):
        super().__init__(prob, dynamic_range_db)
        self.gain_range_db = tuple(gain_range_db)
        self.gain_db = 0.0

    def _draw(self, img) -> None:
        self.gain_db = float(self.R.uniform(*self.gain_range_db))

    def _apply(self, img):
        return img + self.gain_db / self.dynamic_range_db


class RandGaind(_RandGreyd):
    """Dictionary `RandGain`."""

    array_class = RandGain


class RandDynamicRange(_RandGrey):
    """Re-compression to another displayed dynamic range: ``g' = 1 - (1 - g) DR / DR'`` with
    ``DR'`` uniform in `range_db` (the brightest echo stays white; the floor moves)."""

    def __init__(self, prob: float = 0.5, range_db: Sequence[float] = (45.0, 75.0),
                 dynamic_range_db: float = NOMINAL_DYNAMIC_RANGE_DB):
        super().__init__(prob, dynamic_range_db)
        self.range_db = tuple(range_db)
        self.new_range_db = self.dynamic_range_db

    def _draw(self, img) -> None:
        self.new_range_db = float(self.R.uniform(*self.range_db))

    def _apply(self, img):
        return 1.0 - (1.0 - img) * (self.dynamic_range_db / self.new_range_db)


class RandDynamicRanged(_RandGreyd):
    """Dictionary `RandDynamicRange`."""

    array_class = RandDynamicRange


class RandTGCSlope(_RandGrey):
    """Time-gain-compensation slope change: ``slope_db`` (uniform in `slope_range_db`, dB over the
    image depth) added linearly from 0 at row 0 to ``slope_db`` at the last row."""

    def __init__(self, prob: float = 0.5, slope_range_db: Sequence[float] = (-10.0, 10.0),
                 dynamic_range_db: float = NOMINAL_DYNAMIC_RANGE_DB):
        super().__init__(prob, dynamic_range_db)
        self.slope_range_db = tuple(slope_range_db)
        self.slope_db = 0.0

    def _draw(self, img) -> None:
        self.slope_db = float(self.R.uniform(*self.slope_range_db))

    def _apply(self, img):
        rows = img.shape[-2]
        ramp = np.linspace(0.0, 1.0, rows, dtype=np.float32)[:, None] if rows > 1 else \
            np.zeros((1, 1), np.float32)
        return img + ramp * (self.slope_db / self.dynamic_range_db)


class RandTGCSloped(_RandGreyd):
    """Dictionary `RandTGCSlope`."""

    array_class = RandTGCSlope


class RandSpeckle(_RandGrey):
    """Speckle re-noising: the envelope multiplied by fresh unit-power Rayleigh speckle raised to
    ``strength`` (uniform in `strength_range`); in the log domain ``g += s * 20 log10(R) / DR``."""

    def __init__(self, prob: float = 0.5, strength_range: Sequence[float] = (0.1, 0.5),
                 dynamic_range_db: float = NOMINAL_DYNAMIC_RANGE_DB):
        super().__init__(prob, dynamic_range_db)
        self.strength_range = tuple(strength_range)
        self.noise_db: np.ndarray | None = None

    def _draw(self, img) -> None:
        s = float(self.R.uniform(*self.strength_range))
        r = self.R.rayleigh(scale=np.sqrt(0.5), size=np.shape(img)[-2:])  # E[R^2] = 1
        self.noise_db = (s * 20.0 * np.log10(np.maximum(r, 1e-6))).astype(np.float32)

    def _apply(self, img):
        if self.noise_db is None or self.noise_db.shape != img.shape[-2:]:
            raise ValueError(f"{type(self).__name__}: call randomize with an image of this "
                             "shape first")
        return img + self.noise_db / self.dynamic_range_db


class RandSpeckled(_RandGreyd):
    """Dictionary `RandSpeckle`."""

    array_class = RandSpeckle


class RandLowerFrequency(_RandGrey):
    """Blur as a lower transmit frequency would: a Gaussian of ``sigma`` pixels axially
    (uniform in `axial_sigma_range_px`, the longer pulse) and ``lateral_ratio`` times that
    laterally (the wider beam)."""

    def __init__(self, prob: float = 0.5, axial_sigma_range_px: Sequence[float] = (0.3, 1.5),
                 lateral_ratio: float = 0.5, dynamic_range_db: float = NOMINAL_DYNAMIC_RANGE_DB):
        super().__init__(prob, dynamic_range_db)
        self.axial_sigma_range_px = tuple(axial_sigma_range_px)
        self.lateral_ratio = float(lateral_ratio)
        self.sigma = 0.0

    def _draw(self, img) -> None:
        self.sigma = float(self.R.uniform(*self.axial_sigma_range_px))

    def _apply(self, img):
        sig = (0.0,) * (img.ndim - 2) + (self.sigma, self.sigma * self.lateral_ratio)
        return ndi.gaussian_filter(img, sig, mode="nearest")


class RandLowerFrequencyd(_RandGreyd):
    """Dictionary `RandLowerFrequency`."""

    array_class = RandLowerFrequency


class RandSpeckleSize(RandSpeckle):
    """Speckle of another grain: the envelope multiplied by the envelope of a fresh complex
    Gaussian field low-passed by a Gaussian of ``sigma_axial`` x ``sigma_lateral`` pixels (each
    uniform in its range), normalised to unit power and raised to ``strength`` (uniform in
    `strength_range`); in the log domain ``g += s * 20 log10(|n|) / DR``.

    The field's envelope is Rayleigh distributed whatever its correlation length (a linear
    filter of a circular Gaussian field stays circular Gaussian), so first-order speckle
    statistics stay physical while the grain size changes. Applied after `RandLowerFrequency`
    (blur then re-noise) it gives the coarse, round speckle of a lower frequency.
    """

    def __init__(self, prob: float = 0.5, axial_sigma_range_px: Sequence[float] = (0.4, 2.5),
                 lateral_sigma_range_px: Sequence[float] = (0.4, 4.0),
                 strength_range: Sequence[float] = (0.3, 1.0),
                 dynamic_range_db: float = NOMINAL_DYNAMIC_RANGE_DB):
        super().__init__(prob, strength_range, dynamic_range_db)
        self.axial_sigma_range_px = tuple(axial_sigma_range_px)
        self.lateral_sigma_range_px = tuple(lateral_sigma_range_px)

    def _draw(self, img) -> None:
        s = float(self.R.uniform(*self.strength_range))
        sig = (float(self.R.uniform(*self.axial_sigma_range_px)),
               float(self.R.uniform(*self.lateral_sigma_range_px)))
        shape = np.shape(img)[-2:]
        field = (ndi.gaussian_filter(self.R.standard_normal(shape), sig, mode="wrap")
                 + 1j * ndi.gaussian_filter(self.R.standard_normal(shape), sig, mode="wrap"))
        env2 = np.abs(field) ** 2
        env2 /= max(float(env2.mean()), 1e-12)          # unit power
        self.noise_db = (s * 10.0 * np.log10(np.maximum(env2, 1e-12))).astype(np.float32)


class RandSpeckleSized(_RandGreyd):
    """Dictionary `RandSpeckleSize`."""

    array_class = RandSpeckleSize


class RandLayerContrast(RandomizableTransform):
    """Each tissue layer's brightness moved by its own dB offset (training augmentation).

    Parameters
    ----------
    prob : float
    offset_range_db : (float, float)
        Offset of each label 2-7 (dermis to bone) drawn uniformly and independently, dB; the
        stand-off (0) and the entry echo (1) keep theirs.
    blur_px : float
        Gaussian sigma (pixels) of the offset map, about the point-spread width: the offsets
        meet smoothly at boundaries, no sharper than the image's own edges.
    dynamic_range_db : float
        Displayed dynamic range that the 0-1 scale spans.
    """

    def __init__(self, prob: float = 0.5, offset_range_db: Sequence[float] = (-8.0, 8.0),
                 blur_px: float = 1.5, dynamic_range_db: float = NOMINAL_DYNAMIC_RANGE_DB):
        RandomizableTransform.__init__(self, prob)
        self.offset_range_db = tuple(offset_range_db)
        self.blur_px = float(blur_px)
        self.dynamic_range_db = float(dynamic_range_db)
        self.offsets_db = np.zeros(8, np.float32)

    def randomize(self, data=None) -> None:
        super().randomize(None)
        if self._do_transform:
            off = self.R.uniform(*self.offset_range_db, size=8).astype(np.float32)
            off[:2] = 0.0
            self.offsets_db = off

    def __call__(self, img: np.ndarray, label: np.ndarray, randomize: bool = True) -> np.ndarray:
        """`img` (C, rows, cols) on the 0-1 display scale and its `label` (1 or C, rows, cols)
        with values 0-7 -> `img` with the layer offsets added (clipped to 0-1)."""
        img = np.asarray(img, dtype=np.float32)
        if randomize:
            self.randomize()
        if not self._do_transform:
            return img
        lab = np.clip(np.asarray(label).astype(np.int64), 0, 7)
        off = self.offsets_db[lab[0] if lab.ndim == 3 else lab] / self.dynamic_range_db
        if self.blur_px > 0:
            off = ndi.gaussian_filter(off, self.blur_px, mode="nearest")
        return np.clip(img + off.astype(np.float32), 0.0, 1.0).astype(np.float32)


class _LabelledRandd(RandomizableTransform, MapTransform):
    """Dictionary form of an augmentation that reads the label map (``array_class(img, label,
    randomize)``): one draw for every key, the label read from ``data[label_key]``; keyword
    arguments (``prob`` among them) go to ``array_class``."""

    array_class: type

    def __init__(self, keys, label_key: str = "label", allow_missing_keys: bool = False,
                 **kwargs):
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, 1.0)
        self.label_key = label_key
        self.t = self.array_class(**kwargs)

    def set_random_state(self, seed=None, state=None):
        super().set_random_state(seed, state)
        self.t.set_random_state(seed, state)
        return self

    def __call__(self, data):
        d = dict(data)
        first = True
        for key in self.key_iterator(d):
            d[key] = self.t(d[key], np.asarray(d[self.label_key]), randomize=first)
            first = False
        return d


class RandLayerContrastd(_LabelledRandd):
    """Dictionary `RandLayerContrast`: the label map is read from ``data[label_key]``."""

    array_class = RandLayerContrast


class RandLayerTexture(RandomizableTransform):
    """Each layer's own texture replaced by plain speckle around its local brightness
    (training augmentation).

    Simulators and scanners give a layer different textures (our muscle's fibres and fat's
    septa, another simulator's plain round speckle), so texture must not be what names a layer.
    Per label, the image's local mean within that label (normalised convolution: a Gaussian of
    ``smooth_px`` over the label's pixels only, so neighbouring layers do not mix) is kept, and
    everything finer is replaced by a fresh speckle field (`RandSpeckleSize`'s: Rayleigh
    envelope, grain drawn in its ranges, ``strength`` in `strength_range`) whose log-domain
    mean is taken out, so each layer's mean brightness stays where it was; the field fades out
    below a tenth of the grey scale, so anechoic gel stays dark.

    Parameters
    ----------
    prob : float
    smooth_px : (float, float)
        Range of the Gaussian sigma (pixels) of the local mean.
    strength_range, axial_sigma_range_px, lateral_sigma_range_px
        As `RandSpeckleSize`.
    dynamic_range_db : float
        Displayed dynamic range that the 0-1 scale spans.
    """

    def __init__(self, prob: float = 0.3, smooth_px: Sequence[float] = (4.0, 10.0),
                 strength_range: Sequence[float] = (0.6, 1.0),
                 axial_sigma_range_px: Sequence[float] = (0.4, 2.5),
                 lateral_sigma_range_px: Sequence[float] = (0.4, 4.0),
                 dynamic_range_db: float = NOMINAL_DYNAMIC_RANGE_DB):
        RandomizableTransform.__init__(self, prob)
        self.smooth_px = tuple(float(v) for v in smooth_px)
        self.dynamic_range_db = float(dynamic_range_db)
        self.speckle = RandSpeckleSize(1.0, axial_sigma_range_px, lateral_sigma_range_px,
                                       strength_range, dynamic_range_db)
        self.sigma = self.smooth_px[0]

    def set_random_state(self, seed=None, state=None):
        # one stream for both: two generators seeded alike would draw the same numbers, tying
        # the speckle's strength and grain to this transform's own draws
        super().set_random_state(seed, state)
        self.speckle.set_random_state(state=self.R)
        return self

    def __call__(self, img: np.ndarray, label: np.ndarray, randomize: bool = True) -> np.ndarray:
        """`img` (C, rows, cols) on the 0-1 display scale and its `label` (1 or C, rows, cols)
        with values 0-7 -> `img` with every layer re-textured (clipped to 0-1)."""
        img = np.asarray(img, dtype=np.float32)
        if randomize:
            self.randomize(None)
            if self._do_transform:
                self.sigma = float(self.R.uniform(*self.smooth_px))
                self.speckle._draw(img)
        if not self._do_transform:
            return img
        lab = np.clip(np.asarray(label).astype(np.int64), 0, 7)
        lab = lab[0] if lab.ndim == 3 else lab
        noise = self.speckle.noise_db - float(self.speckle.noise_db.mean())
        out = np.empty_like(img)
        for ch in range(img.shape[0]):
            base = np.zeros(lab.shape, np.float64)
            for k in np.unique(lab):
                m = (lab == k).astype(np.float64)
                num = ndi.gaussian_filter(img[ch] * m, self.sigma, mode="nearest")
                den = ndi.gaussian_filter(m, self.sigma, mode="nearest")
                base += m * num / np.maximum(den, 1e-6)
            # anechoic regions (the gel) stay dark: the speckle fades in over the lowest tenth
            # of the grey scale
            fade = np.clip(base / 0.1, 0.0, 1.0)
            out[ch] = np.clip(base + fade * noise / self.dynamic_range_db, 0.0, 1.0)
        return out.astype(np.float32)


class RandLayerTextured(_LabelledRandd):
    """Dictionary `RandLayerTexture`: the label map is read from ``data[label_key]``."""

    array_class = RandLayerTexture


class RandSpacingScaled(RandomizableTransform, MapTransform):
    """Scale the stated pixel spacing ``data[keys]`` (axial, lateral) by factors drawn
    uniformly from `axial_range` and `lateral_range`; put before `ResampleToSpacingd`, the frame
    is then stretched or shrunk on the network's grid (thicker or thinner layers, coarser or
    finer speckle), the top edge (the skin side) staying in place.

    Parameters
    ----------
    keys : str
        The spacing entry (default ``spacing_mm``).
    prob : float
    axial_range, lateral_range : (float, float)
    """

    def __init__(self, keys="spacing_mm", prob: float = 0.5,
                 axial_range: Sequence[float] = (0.75, 1.3),
                 lateral_range: Sequence[float] = (0.85, 1.15), allow_missing_keys: bool = False):
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.axial_range, self.lateral_range = tuple(axial_range), tuple(lateral_range)
        self.spacing_key = self.keys[0]
        self.factors = (1.0, 1.0)

    def randomize(self, data=None) -> None:
        super().randomize(None)
        if self._do_transform:
            self.factors = (float(self.R.uniform(*self.axial_range)),
                            float(self.R.uniform(*self.lateral_range)))

    def __call__(self, data):
        d = dict(data)
        self.randomize()
        if self._do_transform:
            sp = [float(v) for v in np.asarray(d[self.spacing_key]).ravel()]
            d[self.spacing_key] = (sp[0] * self.factors[0], sp[1] * self.factors[1])
        return d


def _warp_columns(image: np.ndarray, label: np.ndarray, stretch: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Stretch every column of (C, rows, cols) `image` and (1 or none, rows, cols) `label` axially
    by the per-label factor ``stretch[label]``, the top row fixed: input row y's lower edge lands
    at sum of the stretch over rows 0..y. Image linear, label nearest (the label of the input row
    each output row's centre falls in); rows past the stretched content are 0 in both."""
    lab = np.asarray(label).reshape(label.shape[-2:]).astype(np.intp)
    rows, cols = lab.shape
    g = stretch[lab]                                    # (rows, cols) output rows per input row
    edges = np.concatenate([np.zeros((1, cols)), np.cumsum(g, axis=0)], axis=0)   # (rows+1, cols)
    out_img = np.zeros_like(image)
    out_lab = np.zeros_like(label)
    centres = np.arange(rows) + 0.5
    y_in = np.arange(rows + 1, dtype=np.float64)
    for c in range(cols):
        # input coordinate (in rows, pixel edges at integers) of each output row centre
        src = np.interp(centres, edges[:, c], y_in, right=np.nan)
        ok = np.isfinite(src)
        if not ok.any():
            continue
        s = src[ok]
        k = np.clip(np.floor(s).astype(np.intp), 0, rows - 1)
        out_lab.reshape(-1, rows, cols)[:, ok, c] = lab[k, c]
        pos = np.clip(s - 0.5, 0, rows - 1)                 # pixel-centre coordinate
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, rows - 1)
        w = (pos - lo).astype(image.dtype)
        out_img[:, ok, c] = image[:, lo, c] * (1 - w) + image[:, hi, c] * w
    return out_img, out_lab


class RandLayerThicknessd(RandomizableTransform, MapTransform):
    """Change each tissue layer's thickness by its own drawn factor: every column is stretched
    axially, by factor ``s[label]`` inside each layer, the skin side fixed (the image linearly,
    the label map by nearest). Unlike `RandSpacingScaled`, which scales the whole frame, this
    breaks the link between a layer and its thickness and depth (a thick fat under a thin
    dermis, a muscle twice as deep), as subjects and sites do. Speckle inside a stretched layer
    is stretched with it (coarser axially), as `RandSpeckleSize` also varies. Rows past the
    compressed content are 0 in image and label (as padding is).

    Parameters
    ----------
    keys : sequence of str
        Image keys (channel-first, shape (C, rows, cols)).
    label_key : str
        The label map (shape (1, rows, cols) or (rows, cols), values 0-7).
    prob : float
    scale_range : (float, float)
        Factors are drawn log-uniformly in this range, one per label 2-6 (dermis, fat, SMAS,
        deep fat, muscle); background, entry echo and bone keep their size.
    """

    LAYERS = (2, 3, 4, 5, 6)

    def __init__(self, keys, label_key: str = "label", prob: float = 0.5,
                 scale_range: Sequence[float] = (0.6, 1.8), allow_missing_keys: bool = False):
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        lo, hi = (float(v) for v in scale_range)
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must be 0 < low <= high, got {scale_range!r}")
        self.scale_range = (lo, hi)
        self.label_key = label_key
        self.stretch = np.ones(8)

    def randomize(self, data=None) -> None:
        super().randomize(None)
        self.stretch = np.ones(8)
        if self._do_transform:
            lo, hi = np.log(self.scale_range)
            self.stretch[list(self.LAYERS)] = np.exp(self.R.uniform(lo, hi, len(self.LAYERS)))

    def __call__(self, data):
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        lab = np.asarray(d[self.label_key])
        new_lab = None
        for key in self.key_iterator(d):
            img = np.asarray(d[key])
            d[key], new_lab = _warp_columns(img, lab, self.stretch)
        if new_lab is None:
            _, new_lab = _warp_columns(np.zeros((1,) + lab.shape[-2:], np.float32), lab,
                                       self.stretch)
        d[self.label_key] = new_lab
        return d
