"""Make an independent check set of simulated 24 MHz facial HFUS frames with PyMUST (SIMUS + DAS).

    python scripts/make_pymust_set.py OUT_DIR [--n 24] [--seed 9001] [--workers 1]

Issue 20 (one part): frames that no segmenter of this project was made for. Nothing here comes
from `layerseg.simulate`: the layered phantoms are this script's own code, the acoustics are
PyMUST's (Garcia 2022: SIMUS for the RF, `dasmtx` delay-and-sum), the random streams are salted
apart from every other generator's, and the settings (probe, display, echogenicity ranking) are
drawn per frame from ranges unlike the training simulator's. Only the dataset writer
(`layerseg.io.dataset.write_frame_files` / `write_manifest`), `layerseg.frame.Frame` and the
region profiles (the layer order each region's label map must follow) come from the package.

Per frame (everything drawn from ``SeedSequence((seed, SALT), spawn_key=(1, i))``, so the bytes
written depend on neither the number of workers nor anything else):

* Region (cheek, forehead, temple, zygoma, nasolabial, chin, jaw; balanced over the set) and a
  2-D layered phantom of point scatterers in x-z: gel stand-off (no or a few weak scatterers),
  the skin surface as a specular line of points (10-18 dB over the dermis), epidermis (50-120
  um) and the dermo-epidermal junction line (6-14 dB, so the entry echo often spans both), dermis (sometimes a low-echo SLEB band under the entry echo), superficial fat
  with oblique septa and lobule texture, SMAS (bright band with fascial lines), deep fat (absent
  in some frames or pinching out across the frame), muscle with fibre-like lateral striations,
  and sometimes a bone surface (bright line + shadow); under the deepest layer where there is no
  bone, generic deep soft tissue (label 0). Interfaces are smooth random curves; thicknesses per
  region from published facial ranges (`ANATOMY`; dermis 0.8-2.2 mm, fat 0.5-5 mm, SMAS 0.3-0.8
  mm, muscle 1-4 mm, masseter to 8 mm). Backscatter per layer is drawn per frame in dB re the
  dermis, with a non-textbook ranking in some frames: muscle brighter than dermis (25 %), fat only
  3-7 dB below the dermis (about one dermis speckle SD, 30 %); scatterer amplitudes are Gaussian,
  with sparse bright scatterers added in some frames.
* Probe: linear array, centre 18-30 MHz, 55-90 % bandwidth, pitch 1.0-1.4 wavelengths (at most
  0.1 mm), as many elements as span the field, receive F/1.4-2.0, 0.4-0.8 dB/cm/MHz attenuation
  (SIMUS is a homogeneous-speed model: c = 1540 m/s everywhere, so image depths are true depths),
  Tukey-tapered transmit; one plane wave, or three steered plane waves (3-7 degrees apart)
  compounded coherently where wanted (35 %) and affordable (see Cost).
* Imaging: `pymust.simus` per transmit (element splitting 1: elements are narrower than two
  wavelengths and scatterers lie beyond their far-field distance), white electronic noise,
  analytic signal by Hilbert transform per channel, base-banded, delay-and-sum by `pymust.dasmtx`
  directly on the output pixel grid (pixel centres at ((i + 0.5) dz, -W/2 + (j + 0.5) dx)),
  Hann receive apodisation applied to the DAS matrix's weights, envelope = modulus of the
  beamformed analytic signal, a TGC that divides out the system's depth response (measured per
  frame with point targets through the same chain) up to a drawn maximum gain (20-35 dB, so deep
  tissue darkens) times a drawn residual gain curve, log compression with a drawn dynamic range
  (50-70 dB; the dermis mean 8-18 dB under white), a drawn grey map (gamma 1-1.5), 8-bit grey. Field of view 10-12 mm deep x 10-12 mm wide, pixels 0.02-0.03 mm axial x 0.025-0.035 mm
  lateral (recorded as the frame's spacing).
* Labels (DESIGN.md): rasterised from the phantom's boundary curves at the pixel centres. Label 1
  is the entry echo as imaged: per column, the -6 dB extent of the expected envelope of the skin
  surface line + epidermis scatterers + junction line, computed from the axial profiles of a line
  and a point target imaged through this frame's own chain; the anatomical epidermis thickness is
  kept in the truth file. Bone (7) runs from the bone surface to the bottom of the frame (line and
  shadow); below the deepest soft layer where there is no bone the label is 0. The layer order is
  the region's profile (forehead: ... smas, muscle, deep_fat, bone).

Output: the DESIGN.md dataset layout (``manifest.csv`` with spacing, region, subject_id,
frequency, dynamic range and ``split=test``; ``images/*.png``, ``labels/*.png``,
``truth/*.json``), so ``layerseg bench accuracy --data OUT_DIR --model classical`` runs on it.
The script prints the wall and CPU time of every frame; nothing about timing goes into the files.

Cost: dominated by SIMUS, about scatterers x elements x frequency samples (the number of
frequency samples grows with the centre frequency and the field's size). Scatterer densities are
0.4-3 per nominal 24 MHz resolution cell (Lebertre 2002 measured 1.4 per cell in dermis), 15-30
thousand scatterers per frame. Each frame's cost is predicted before SIMUS runs
(`predicted_cpu_s`, constants measured here) and kept under ``SetConfig.budget_s`` (52 s): a
frame that wants three transmits gets them if thinning its densities to no less than half keeps
it in budget (else one transmit), and a single-transmit frame over budget is thinned likewise;
the factor is recorded in the truth (``density_thinned_by``). Measured times: see
benchmarks/RESULTS.md ("PyMUST check set"). Run with OMP_NUM_THREADS=1 (the script sets it when
unset) and use --workers to run frames in parallel.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # one thread per frame (same bytes); parallel by --workers

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.ndimage import gaussian_filter, gaussian_filter1d, map_coordinates  # noqa: E402
from scipy.signal import hilbert  # noqa: E402

C = 1540.0  # m/s, SIMUS's (homogeneous) speed of sound; image depth = true depth
SALT = 0x50794D53  # "PyMS": keeps these random streams apart from every other generator's
REGIONS = ("cheek", "forehead", "temple", "zygoma", "nasolabial", "chin", "jaw")
REF_CELL_MM2 = 0.05 * 0.11  # nominal 24 MHz resolution cell (axial x lateral FWHM), for densities

# Thickness ranges (mm, uniform draws) per region; (lo, hi, p_present) for optional layers. Dermis
# after Meng 2022 / Omurzakova (0.6-1.2 mm) and the 50 MHz full-skin study (cheek ~1.9 mm), widened
# to the 0.8-2.2 mm; superficial fat after the Clin Anat 2019 ranking (radix 1.6 mm <
# forehead < temple < cheek < perioral 5.1 mm) and Omurzakova (chin 0.2 mm); SMAS 0.3-0.8 mm (no
# published mm, our choice); deep fat after Chang (SOOF ~1.8, DMCF ~2.7 mm young); muscle: mimic
# muscles 1-4 mm (van Alfen 2013, read as cm), masseter/temporalis thicker (Koruyucu: ~9-11 mm,
# cut by the field of view). Presence probabilities and bone are our choice.
ANATOMY = {
    "cheek": dict(dermis=(1.0, 1.9), fat=(2.0, 4.5), smas=(0.3, 0.8),
                  deep_fat=(1.0, 3.0, 0.9), muscle=(1.0, 3.0, 0.9), bone=0.0, septa=(0.3, 0.8)),
    "forehead": dict(dermis=(0.9, 1.6), fat=(0.5, 1.8), smas=(0.3, 0.7),
                     muscle=(1.0, 2.5, 1.0), deep_fat=(0.2, 1.0, 0.5), bone=1.0, septa=(0.4, 1.0)),
    "temple": dict(dermis=(0.8, 1.5), fat=(1.0, 3.0), smas=(0.3, 0.8),
                   deep_fat=(0.5, 2.0, 0.7), muscle=(2.0, 4.0, 1.0), bone=0.8, septa=(0.3, 0.8)),
    "zygoma": dict(dermis=(0.9, 1.8), fat=(1.0, 3.0), smas=(0.3, 0.7),
                   deep_fat=(0.5, 2.0, 0.8), muscle=(1.0, 2.5, 0.5), bone=0.9, septa=(0.3, 0.8)),
    "nasolabial": dict(dermis=(0.9, 1.7), fat=(2.0, 5.0), smas=(0.3, 0.6),
                       deep_fat=(0.5, 2.0, 0.5), muscle=(1.0, 3.0, 0.9), bone=0.3,
                       septa=(0.4, 1.0)),
    "chin": dict(dermis=(1.0, 2.2), fat=(0.5, 2.0), smas=(0.3, 0.6),
                 deep_fat=(0.3, 1.2, 0.4), muscle=(2.0, 4.0, 1.0), bone=0.9, septa=(0.5, 1.2)),
    "jaw": dict(dermis=(1.0, 2.0), fat=(1.0, 3.0), smas=(0.3, 0.8),
                deep_fat=(0.3, 1.5, 0.4), muscle=(3.0, 8.0, 1.0), bone=1.0, septa=(0.3, 0.8)),
}


# ------------------------------------------------------------------------------ configuration
@dataclass
class SetConfig:
    """Ranges of one run (the defaults make the check set; tests shrink them)."""

    depth_mm: tuple[float, float] = (10.0, 12.0)
    width_mm: tuple[float, float] = (10.0, 12.0)
    dz_mm: tuple[float, float] = (0.02, 0.03)
    dx_mm: tuple[float, float] = (0.025, 0.035)
    density_scale: float = 1.0      # multiplies every scatterer density (tests: fewer scatterers)
    p_compound: float = 0.35        # probability of three compounded plane waves ...
    budget_s: float = 52.0          # predicted CPU s per frame: fewer transmits/scatterers above
    chunk: int = 6000               # scatterers per SIMUS call (memory)


@dataclass
class Probe:
    f0_mhz: float
    bandwidth_pct: float
    pitch_mm: float
    n_elements: int
    fnumber: float
    attenuation: float              # dB/cm/MHz
    angles_deg: tuple[float, ...]

    def param(self):
        import pymust
        p = pymust.utils.Param()
        p.fc = self.f0_mhz * 1e6
        p.pitch = self.pitch_mm * 1e-3
        p.kerf = min(0.01e-3, 0.15 * p.pitch)
        p.width = p.pitch - p.kerf
        p.Nelements = int(self.n_elements)
        p.bandwidth = float(self.bandwidth_pct)
        p.radius = math.inf
        p.c = C
        p.attenuation = float(self.attenuation)
        p.fnumber = float(self.fnumber)
        p.fs = 4 * p.fc
        # transmit taper (Tukey, 30 %): damps the edge waves of the plane wave, whose echoes
        # off the bone surface would otherwise cross the shadow as an X
        from scipy.signal.windows import tukey
        p.TXapodization = tukey(p.Nelements, 0.3)
        return p

    @property
    def wavelength_mm(self) -> float:
        return C / (self.f0_mhz * 1e6) * 1e3


@dataclass
class Grid:
    dz: float
    dx: float
    nz: int
    nx: int

    @property
    def depth(self) -> float:
        return self.nz * self.dz

    @property
    def width(self) -> float:
        return self.nx * self.dx

    @property
    def z(self) -> np.ndarray:
        return (np.arange(self.nz) + 0.5) * self.dz

    @property
    def x(self) -> np.ndarray:
        return -self.width / 2 + (np.arange(self.nx) + 0.5) * self.dx


@dataclass
class Scatterers:
    x: list = field(default_factory=list)
    z: list = field(default_factory=list)
    a: list = field(default_factory=list)

    def add(self, x, z, a):
        self.x.append(np.asarray(x, float).ravel())
        self.z.append(np.asarray(z, float).ravel())
        self.a.append(np.asarray(a, float).ravel())

    def arrays(self):
        return (np.concatenate(self.x), np.concatenate(self.z), np.concatenate(self.a))


# ------------------------------------------------------------------------------ random helpers
def smooth_curve(rng, n: int, corr_pts: float) -> np.ndarray:
    """Unit-variance smooth random curve (white noise through a Gaussian of sigma `corr_pts`)."""
    s = max(float(corr_pts), 0.5)
    w = rng.standard_normal(n + int(8 * s))
    g = gaussian_filter1d(w, s, mode="wrap")[int(4 * s):int(4 * s) + n]
    return g * math.sqrt(2 * math.sqrt(math.pi) * s)


def random_field(rng, shape, sigma_pts) -> np.ndarray:
    """Unit-variance 2-D Gaussian random field with per-axis Gaussian correlation `sigma_pts`."""
    s = [max(float(v), 0.5) for v in sigma_pts]
    pad = [int(4 * v) for v in s]
    w = rng.standard_normal([n + 2 * p for n, p in zip(shape, pad)])
    g = gaussian_filter(w, s, mode="wrap")[pad[0]:pad[0] + shape[0], pad[1]:pad[1] + shape[1]]
    return g * math.sqrt(np.prod([2 * math.sqrt(math.pi) * v for v in s]))


def lognormal_gain(g, sigma_db: float) -> np.ndarray:
    """Amplitude factor 10**(sigma_db g / 20) of a unit normal `g`, scaled to unit mean power."""
    k = sigma_db * math.log(10) / 10
    return 10 ** (sigma_db * g / 20) / math.exp(k * k / 4)


class FieldSampler:
    """A 2-D random field on a (u, x) box, sampled bilinearly at scatterer positions."""

    def __init__(self, rng, x0, x1, u0, u1, corr_x, corr_u):
        self.du = min(corr_u / 2, 0.01)
        self.dxf = min(corr_x / 2, 0.05)
        self.u0, self.x0 = u0, x0
        nu = int((u1 - u0) / self.du) + 3
        nx = int((x1 - x0) / self.dxf) + 3
        self.f = random_field(rng, (nu, nx), (corr_u / self.du, corr_x / self.dxf))

    def __call__(self, x, u):
        return map_coordinates(self.f, [(u - self.u0) / self.du, (x - self.x0) / self.dxf],
                               order=1, mode="nearest")


# ------------------------------------------------------------------------------ the phantom
@dataclass
class Phantom:
    region: str
    layers: list            # the region's profile (label order), e.g. epidermis ... bone
    xf: np.ndarray          # fine lateral grid (mm) of the curves
    skin: np.ndarray        # skin surface depth on xf
    tops: dict              # layer -> top depth on xf (anatomical); bone: bone surface
    bottoms: dict           # layer -> bottom depth on xf; bone: +inf
    bone_in_view: bool
    soft_bottom: np.ndarray
    params: dict            # everything drawn (for the truth file)


def draw_probe(rng, width_mm: float, p_compound: float) -> Probe:
    f0 = float(rng.uniform(18.0, 30.0))
    lam = C / (f0 * 1e6) * 1e3
    pitch = min(float(rng.uniform(1.0, 1.4)) * lam, 0.1)
    n_el = int(math.ceil(width_mm / pitch))
    want = bool(rng.random() < p_compound)
    step = float(rng.uniform(3.0, 7.0))
    # three compounded plane waves where wanted; `afford` may fall back to one
    angles = (-step, 0.0, step) if want else (0.0,)
    return Probe(f0_mhz=f0, bandwidth_pct=float(rng.uniform(55, 90)), pitch_mm=pitch,
                 n_elements=n_el, fnumber=float(rng.uniform(1.4, 2.0)),
                 attenuation=float(rng.uniform(0.4, 0.8)), angles_deg=angles)


SIMUS_S_PER_UNIT = 4.7e-7
"""Measured SIMUS CPU seconds per (scatterer x element x MHz) on this project's (loaded) 2-core
machine, 18-30 MHz, 10-12 mm fields, element splitting 1; DAS (matrix, apodisation, product)
adds about `DAS_S_PER_PIXEL` per output pixel and transmit, and the calibration about
`FIXED_S`. Used only to keep a frame within its budget."""
DAS_S_PER_PIXEL = 3.7e-5
FIXED_S = 3.0


def predicted_cpu_s(probe: Probe, n_scatterers: float, n_pixels: int) -> float:
    """Predicted CPU seconds of one frame (SIMUS + DAS per transmit, plus calibration)."""
    per_tx = (SIMUS_S_PER_UNIT * n_scatterers * probe.n_elements * probe.f0_mhz
              + DAS_S_PER_PIXEL * n_pixels)
    return len(probe.angles_deg) * per_tx + FIXED_S


def afford(probe: Probe, n_scatterers: float, n_pixels: int, budget_s: float,
           min_thin: float = 0.5) -> tuple[Probe, float]:
    """Keep a frame within `budget_s` predicted CPU seconds by thinning every scatterer density
    by a factor (at least `min_thin`; returned, 1 when nothing is thinned); three compounded
    plane waves fall back to one when even the thinnest phantom would overrun the budget."""
    def thin_for(pr):
        fixed = predicted_cpu_s(pr, 0, n_pixels)
        simus = predicted_cpu_s(pr, n_scatterers, n_pixels) - fixed
        return 1.0 if fixed + simus <= budget_s else (budget_s - fixed) / max(simus, 1e-9)
    if len(probe.angles_deg) > 1 and thin_for(probe) < min_thin:
        probe = Probe(**{**vars(probe), "angles_deg": (0.0,)})
    return probe, max(min_thin, min(1.0, thin_for(probe)))


def draw_echogenicity(rng) -> dict:
    """Mean backscattered intensity per structure, dB re the dermis (drawn per frame)."""
    # the skin-surface line is the brightest part of the entry echo; the junction line is often
    # within 6 dB of it, so the echo as imaged spans the epidermis plus the pulse (0.06-0.2 mm)
    e = {"dermis": 0.0, "epidermis": float(rng.uniform(3, 9)),
         "skin_line": float(rng.uniform(10, 18)), "dej_line": float(rng.uniform(6, 14))}
    e["fat_mode"] = "near_dermis" if rng.random() < 0.3 else "dark"
    e["fat"] = float(rng.uniform(-7, -3) if e["fat_mode"] == "near_dermis"
                     else rng.uniform(-26, -10))
    e["deep_fat"] = e["fat"] + float(rng.uniform(-4, 3))
    e["septa"] = float(rng.uniform(-4, 6))
    e["smas"] = float(rng.uniform(-2, 6))
    e["smas_line"] = float(rng.uniform(2, 10))
    e["muscle_mode"] = "brighter_than_dermis" if rng.random() < 0.25 else "darker"
    e["muscle"] = float(rng.uniform(1, 5) if e["muscle_mode"] == "brighter_than_dermis"
                        else rng.uniform(-14, -4))
    e["muscle_streak_db"] = float(rng.uniform(4, 8))
    e["epimysium_line"] = float(rng.uniform(-2, 8))
    e["bone_line"] = float(rng.uniform(10, 18))
    e["bone_shadow"] = float(rng.uniform(-60, -45))
    e["deep_tissue"] = float(rng.uniform(-20, -10))
    e["deep_fascia_line"] = float(rng.uniform(-4, 4))
    e["gel"] = -25.0
    return e


def draw_densities(rng, scale: float) -> dict:
    """Scatterers per nominal resolution cell (REF_CELL_MM2) of each structure."""
    d = {"epidermis": 3.0, "dermis": float(rng.uniform(1.0, 2.0)),
         "fat": float(rng.uniform(0.4, 1.0)), "smas": float(rng.uniform(1.5, 3.0)),
         "muscle": float(rng.uniform(0.6, 1.2)), "deep_tissue": 0.6, "bone_shadow": 0.2,
         "gel": 0.02 if rng.random() < 0.5 else 0.0,
         "septa": 4.0}
    d["deep_fat"] = d["fat"]
    return {k: v * scale for k, v in d.items()}


def build_phantom(rng, region: str, grid: Grid, probe: Probe) -> Phantom:
    from layerseg.layers.profiles import get_profile

    layers = list(get_profile(region).layers)
    an = ANATOMY[region]
    W, D = grid.width, grid.depth
    dxf = 0.005
    xf = np.arange(-W / 2 - 2.0, W / 2 + 2.0 + dxf / 2, dxf)
    n = xf.size

    def curve(corr_mm):
        return smooth_curve(rng, n, corr_mm / dxf)

    standoff = float(rng.uniform(0.3, 1.2))
    tilt = math.tan(math.radians(float(rng.uniform(-4, 4))))
    curv = float(rng.uniform(-0.006, 0.006))          # mm^-1 (a gentle bulge or hollow)
    skin = (standoff + tilt * xf + curv * xf ** 2 + 0.015 * curve(0.3) + 0.04 * curve(3.0))
    skin -= min(0.0, skin.min() - 0.25)               # never closer than 0.25 mm to the probe
    p: dict = {"standoff_mm": standoff, "tilt": tilt, "curvature_per_mm": curv}
    thick: dict = {}
    present: dict = {}
    epi = float(rng.uniform(0.05, 0.12))
    thick["epidermis"] = np.clip(epi * (1 + 0.15 * curve(1.0)), 0.03, None)
    present["epidermis"] = True
    for ly in layers[1:]:
        if ly == "bone":
            continue
        spec = an[ly]
        pres = True if len(spec) == 2 else bool(rng.random() < spec[2])
        present[ly] = pres
        if not pres:
            thick[ly] = np.zeros(n)
            continue
        mean = float(rng.uniform(spec[0], spec[1]))
        cv = float(rng.uniform(0.08, 0.22))
        t = mean * (1 + cv * curve(float(rng.uniform(1.5, 5.0))))
        if ly == "dermis":      # irregular dermis-fat junction
            t = t + float(rng.uniform(0.02, 0.06)) * curve(float(rng.uniform(0.15, 0.4)))
        if ly == "deep_fat" and rng.random() < 0.35:   # pinches out across part of the frame
            t = mean * (0.3 + 1.2 * curve(float(rng.uniform(2.0, 4.0))))
            p["deep_fat_pinches_out"] = True
        thick[ly] = np.clip(t, 0.0, None)
        if ly not in ("deep_fat",):
            thick[ly] = np.clip(thick[ly], 0.15 * mean, None)
        p[f"{ly}_mean_mm"] = mean
    p["epidermis_mean_mm"] = epi
    tops, bottoms = {}, {}
    z = skin.copy()
    for ly in layers:
        if ly == "bone":
            continue
        tops[ly] = z.copy()
        z = z + thick[ly]
        bottoms[ly] = z.copy()
    soft_bottom = z
    bone_present = bool(rng.random() < an["bone"])
    bone_in_view = bone_present and bool(np.any(soft_bottom[(xf > -W / 2) & (xf < W / 2)] < D))
    tops["bone"] = soft_bottom.copy()
    bottoms["bone"] = np.full(n, np.inf)
    present["bone"] = bone_in_view
    p["bone_present"] = bone_present
    p["present"] = present
    return Phantom(region, layers, xf, skin, tops, bottoms, bone_in_view, soft_bottom, p)


def expected_scatterers(ph: Phantom, dens: dict, grid: Grid, probe_wavelength_mm: float) -> float:
    """Rough expected number of scatterers (layers' areas x densities), for the cost estimate."""
    sel = np.abs(ph.xf) <= grid.width / 2 + 0.25
    zmax = grid.depth + 0.25
    w = grid.width + 0.5
    n = 0.0
    for ly in ph.layers:
        if ly == "bone":
            continue
        top = np.minimum(ph.tops[ly][sel], zmax)
        bot = np.minimum(ph.bottoms[ly][sel], zmax)
        n += dens.get(ly, 1.0) / REF_CELL_MM2 * float(np.mean(bot - top)) * w
    below = float(np.mean(np.clip(zmax - ph.soft_bottom[sel], 0, None))) * w
    key = "bone_shadow" if ph.bone_in_view else "deep_tissue"
    lines = 6 * (w + 2 * LINE_TAPER_MM) / (probe_wavelength_mm / 2)    # specular lines, septa
    return n + dens[key] / REF_CELL_MM2 * below + lines


def _interp(ph: Phantom, curve, x):
    return np.interp(x, ph.xf, curve)


def layer_scatterers(rng, ph: Phantom, top, bot, density_per_mm2, x0, x1, zmax):
    """Uniform random points between two curves (x in [x0, x1], z < zmax)."""
    sel = (ph.xf >= x0) & (ph.xf <= x1)
    zt = float(np.min(top[sel]))
    zb = float(min(np.max(bot[sel]), zmax))
    if not zb > zt:
        return np.empty(0), np.empty(0)
    nbox = rng.poisson(density_per_mm2 * (x1 - x0) * (zb - zt))
    x = rng.uniform(x0, x1, nbox)
    z = rng.uniform(zt, zb, nbox)
    keep = (z >= _interp(ph, top, x)) & (z < np.minimum(_interp(ph, bot, x), zmax))
    return x[keep], z[keep]


LINE_TAPER_MM = 0.8
"""Specular lines run this far past the field on both sides with a cosine taper: an abruptly
ending bright line would send X-shaped diffraction tails from its ends across the image."""


def line_points(rng, ph: Phantom, curve, spacing, x0, x1, jitter_amp=0.25, gaps=0.0,
                offset=0.0):
    """A specular-ish line of points along `curve` (+ `offset`), lateral spacing `spacing`,
    full strength on [x0, x1] and tapered to zero over `LINE_TAPER_MM` beyond."""
    x = np.arange(x0 - LINE_TAPER_MM, x1 + LINE_TAPER_MM, spacing)
    x = x + rng.uniform(-0.2, 0.2, x.size) * spacing
    z = _interp(ph, curve, x) + offset + rng.normal(0, 0.002, x.size)
    a = np.clip(1 + jitter_amp * rng.standard_normal(x.size), 0.1, None)
    out = np.clip(np.maximum(x0 - x, x - x1) / LINE_TAPER_MM, 0, 1)
    a = a * np.cos(0.5 * np.pi * out) ** 2
    if gaps > 0:   # drop random stretches (about a fraction `gaps`) of the line
        from scipy.stats import norm
        g = smooth_curve(rng, x.size, 0.6 / spacing)
        a = a * (g > norm.ppf(gaps))
    return x, z, a


def populate(rng, ph: Phantom, grid: Grid, probe: Probe, echo: dict, dens: dict,
             line_amp, layer_amp) -> tuple[Scatterers, dict]:
    """All point scatterers of the phantom. `layer_amp(db, density)` and `line_amp(db)` turn a
    target level (dB re dermis mean intensity) into a per-point amplitude."""
    W, D = grid.width, grid.depth
    x0, x1 = -W / 2 - 0.25, W / 2 + 0.25
    zmax = D + 0.25
    cell = REF_CELL_MM2
    s = Scatterers()
    info: dict = {}
    lam = probe.wavelength_mm
    spacing = lam / 2          # line points: no grating orders below grazing incidence
    bright = rng.random() < 0.4
    info["sparse_bright_scatterers"] = bool(bright)

    def add_layer(name, top, bot, db, dens_key, texture=None):
        rho = dens[dens_key] / cell
        x, z = layer_scatterers(rng, ph, top, bot, rho, x0, x1, zmax)
        if x.size == 0:
            return 0
        a = layer_amp(db, rho) * rng.standard_normal(x.size)
        if texture is not None:
            a = a * texture(x, z)
        if bright and name in ("dermis", "fat", "muscle", "deep_fat", "smas"):
            k = rng.random(x.size) < 0.015
            a[k] *= 10 ** (float(rng.uniform(10, 16)) / 20)
        s.add(x, z, a)
        return int(x.size)

    # gel: none or a few weak scatterers
    if dens["gel"] > 0:
        add_layer("gel", np.zeros_like(ph.skin), ph.skin - 0.03, echo["gel"], "gel")
    # skin surface (entry echo) and dermo-epidermal junction lines
    ex, ez, ea = line_points(rng, ph, ph.skin, spacing, x0, x1, jitter_amp=0.15)
    s.add(ex, ez, ea * line_amp(echo["skin_line"]))
    jx, jz, ja = line_points(rng, ph, ph.bottoms["epidermis"], spacing, x0, x1, jitter_amp=0.35)
    s.add(jx, jz, ja * line_amp(echo["dej_line"]))
    add_layer("epidermis", ph.tops["epidermis"], ph.bottoms["epidermis"], echo["epidermis"],
              "epidermis")
    # dermis: mild texture, a depth ramp, sometimes a SLEB under the entry echo
    dt, db_ = ph.tops["dermis"], ph.bottoms["dermis"]
    ramp = float(rng.uniform(-3, 3))
    tex_d = FieldSampler(rng, x0, x1, 0, zmax, 0.5, 0.1)
    sleb = rng.random() < 0.35
    sleb_t = float(rng.uniform(0.08, 0.3))
    sleb_db = float(rng.uniform(-12, -5))
    info["dermis_ramp_db"] = ramp
    info["sleb"] = {"present": bool(sleb), "thickness_mm": sleb_t, "level_db": sleb_db}

    def dermis_tex(x, z):
        top = _interp(ph, dt, x)
        frac = np.clip((z - top) / np.maximum(_interp(ph, db_, x) - top, 1e-3), 0, 1)
        g = lognormal_gain(tex_d(x, z), 1.5) * 10 ** (ramp * (frac - 0.5) / 20)
        if sleb:
            g = g * np.where(z - top < sleb_t, 10 ** (sleb_db / 20), 1.0)
        return g
    add_layer("dermis", dt, db_, 0.0, "dermis", dermis_tex)
    # fat layers: lobules + oblique septa
    for ly in ("fat", "deep_fat"):
        if not ph.params["present"].get(ly):
            continue
        t, b = ph.tops[ly], ph.bottoms[ly]
        tex = FieldSampler(rng, x0, x1, 0, zmax, float(rng.uniform(0.3, 0.8)),
                           float(rng.uniform(0.2, 0.5)))
        sig = float(rng.uniform(2.5, 5))
        add_layer(ly, t, b, echo[ly], ly, lambda x, z, tex=tex, sig=sig: lognormal_gain(
            tex(x, z), sig))
        lo, hi = ANATOMY[ph.region]["septa"]
        n_sep = rng.poisson(float(rng.uniform(lo, hi)) * W * (1.0 if ly == "fat" else 0.5))
        for _ in range(n_sep):
            xs0 = float(rng.uniform(x0, x1))
            ang = math.radians(float(rng.uniform(20, 70)) * (1 if rng.random() < 0.5 else -1))
            s0, s1 = sorted(rng.uniform(0, 1, 2))
            if rng.random() < 0.5:
                s0, s1 = 0.0, 1.0
            width = float(rng.uniform(0.02, 0.06))
            th = float(np.interp(xs0, ph.xf, b - t))
            length = th / max(math.cos(ang), 0.2) * (s1 - s0)
            rho = dens["septa"] / cell
            npt = rng.poisson(rho * max(length, 0.0) * width)
            u = rng.uniform(s0, s1, npt)
            o = rng.uniform(-width / 2, width / 2, npt)   # across the septum
            xx = xs0 + u * th * math.tan(ang) + o * math.cos(ang)
            tt, bb = _interp(ph, t, xx), _interp(ph, b, xx)
            zz = tt + u * (bb - tt) - o * math.sin(ang)
            keep = (zz > tt) & (zz < bb) & (zz < zmax)
            a = layer_amp(echo["septa"], rho) * rng.standard_normal(npt)
            s.add(xx[keep], zz[keep], a[keep])
        info[f"{ly}_septa"] = int(n_sep)
    # SMAS: a brighter band with fascial lines at its top and bottom
    if ph.params["present"].get("smas"):
        t, b = ph.tops["smas"], ph.bottoms["smas"]
        add_layer("smas", t, b, echo["smas"], "smas")
        for curve_ in (t, b):
            if rng.random() < 0.75:
                lx, lz, la = line_points(rng, ph, curve_, spacing, x0, x1, jitter_amp=0.4,
                                         gaps=0.3)
                s.add(lx, lz, la * line_amp(echo["smas_line"]))
    # muscle: fibre-like lateral striations, slightly oblique, plus an epimysium line on top
    if ph.params["present"].get("muscle"):
        t, b = ph.tops["muscle"], ph.bottoms["muscle"]
        phi = math.tan(math.radians(float(rng.uniform(-8, 8))))
        corr_x = float(rng.uniform(0.8, 3.0))
        corr_u = float(rng.uniform(0.02, 0.05))
        fib = FieldSampler(rng, x0, x1, -3.0, zmax + 3.0, corr_x, corr_u)
        sig = echo["muscle_streak_db"]
        info["muscle_fibres"] = {"angle_deg": math.degrees(math.atan(phi)), "corr_lateral_mm":
                                 corr_x, "corr_axial_mm": corr_u, "contrast_db": sig}

        def fibres(x, z):
            u = z - _interp(ph, t, x) - phi * x
            return lognormal_gain(fib(x, u), sig)
        add_layer("muscle", t, b, echo["muscle"], "muscle", fibres)
        lx, lz, la = line_points(rng, ph, t, spacing, x0, x1, jitter_amp=0.5, gaps=0.4)
        s.add(lx, lz, la * line_amp(echo["epimysium_line"]))
    # bone: bright periosteal line, thin bright cortex, shadow under it; or deep soft tissue
    in_fov = ph.soft_bottom < zmax
    if ph.bone_in_view:
        bt = ph.tops["bone"]
        lx, lz, la = line_points(rng, ph, bt, spacing, x0, x1, jitter_amp=0.2)
        k = lz < zmax
        s.add(lx[k], lz[k], la[k] * line_amp(echo["bone_line"]))
        add_layer("bone_cortex", bt, bt + 0.04, echo["bone_line"] - 12, "septa")
        add_layer("bone_shadow", bt + 0.05, np.full_like(bt, zmax), echo["bone_shadow"],
                  "bone_shadow")
    elif np.any(in_fov):
        sb = ph.soft_bottom
        add_layer("deep_tissue", sb, np.full_like(sb, zmax), echo["deep_tissue"], "deep_tissue")
        lx, lz, la = line_points(rng, ph, sb, spacing, x0, x1, jitter_amp=0.5, gaps=0.4)
        k = lz < zmax
        s.add(lx[k], lz[k], la[k] * line_amp(echo["deep_fascia_line"]))
    return s, info


# ------------------------------------------------------------------------------ imaging chain
class Imager:
    """SIMUS + Hilbert + DAS for one probe and output grid; reuse it for several scatterer sets.

    All sets are simulated with the same two zero-amplitude corner scatterers, so every RF has the
    same length and one DAS matrix per transmit serves all of them.
    """

    def __init__(self, probe: Probe, grid: Grid, chunk: int = 6000):
        import pymust
        self.pymust = pymust
        self.probe = probe
        self.grid = grid
        self.chunk = int(chunk)
        self.param = probe.param()
        half = max(probe.n_elements * probe.pitch_mm / 2, grid.width / 2) + LINE_TAPER_MM + 0.4
        zc = grid.depth + 0.35
        self.corners = (np.array([-half, half]), np.array([zc, zc]))
        self.bounds = (half - 0.1, grid.depth + 0.3)   # scatterers must lie inside
        # delays from a throw-away copy: txdelay may store them on the Param it is given, and
        # dasmtx refuses a Param whose TXdelay differs from the delays it is handed
        self.delays = [pymust.txdelay(probe.param(), math.radians(a)) for a in probe.angles_deg]
        self.opt = pymust.utils.Options()
        self.opt.WaitBar = False
        self.opt.ParPool = False
        self.opt.ElementSplitting = 1
        self.nt: dict = {}   # RF length per transmit (steering changes SIMUS's time window)
        self._mats: dict = {}
        self.t_simus = 0.0
        self.t_das = 0.0

    def rf(self, x_mm, z_mm, amp, k: int) -> np.ndarray:
        """RF (samples x elements) of transmit `k` for scatterers in mm."""
        t0 = time.process_time()
        out = None
        n = len(x_mm)
        cx, cz = self.corners
        xb, zb = self.bounds
        assert np.all(np.abs(x_mm) <= xb) and np.all(np.asarray(z_mm) <= zb), "outside the box"
        for i in range(0, max(n, 1), self.chunk):
            xs = np.concatenate([cx, x_mm[i:i + self.chunk]]) * 1e-3
            zs = np.concatenate([cz, z_mm[i:i + self.chunk]]) * 1e-3
            rc = np.concatenate([[0.0, 0.0], amp[i:i + self.chunk]])
            rf, _ = self.pymust.simus(xs, zs, rc, self.delays[k], self.param, self.opt)
            rf = np.asarray(rf, dtype=np.float64)
            out = rf if out is None else out + rf
        self.nt.setdefault(k, out.shape[0])
        assert out.shape[0] == self.nt[k], "RF length changed between scatterer sets"
        self.t_simus += time.process_time() - t0
        return out

    def iq(self, rf) -> np.ndarray:
        """Analytic signal by Hilbert transform per channel, moved to base band."""
        t = np.arange(rf.shape[0]) / self.param.fs
        return hilbert(rf, axis=0) * np.exp(-2j * np.pi * self.param.fc * t)[:, None]

    def das_matrices(self, name: str, X, Z):
        """DAS matrices (one per transmit, in row blocks) for the points X, Z (mm)."""
        key = name
        if key not in self._mats:
            t0 = time.process_time()
            mats = []
            rows = max(1, 60000 // max(X.shape[1], 1))
            for k in range(len(self.delays)):
                blocks = []
                for r in range(0, X.shape[0], rows):
                    m = self.pymust.dasmtx(
                        1j * np.array([self.nt[k], self.probe.n_elements]),
                        X[r:r + rows] * 1e-3,
                        Z[r:r + rows] * 1e-3, self.delays[k], self.param)
                    blocks.append(self._apodise(m, X[r:r + rows], Z[r:r + rows], self.nt[k]))
                mats.append(blocks)
            self._mats[key] = (mats, X.shape)
            self.t_das += time.process_time() - t0
        return self._mats[key]

    def _apodise(self, m, X, Z, nt):
        """Hann receive apodisation over the F-number aperture, applied to the weights of
        pymust's DAS matrix (dasmtx sums the aperture uniformly; scanners taper it, which keeps
        the side lobes of the bright bone and skin lines out of the dark regions)."""
        m = m.tocsr()
        xp = X.ravel(order="F")
        zp = Z.ravel(order="F")
        row = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        el = m.indices // nt
        xe = (np.arange(self.probe.n_elements) - (self.probe.n_elements - 1) / 2) \
            * self.probe.pitch_mm
        half = zp[row] / (2 * self.probe.fnumber)
        r = np.clip(np.abs(xp[row] - xe[el]) / np.maximum(half, 1e-9), 0, 1)
        m.data = m.data * (0.5 * (1 + np.cos(np.pi * r)))
        return m

    def beamform(self, name, X, Z, iqs) -> np.ndarray:
        """Coherently compounded DAS image (complex) of the per-transmit I/Q data `iqs`."""
        mats, shape = self.das_matrices(name, X, Z)
        t0 = time.process_time()
        rows = max(1, 60000 // max(shape[1], 1))
        out = np.zeros(shape, complex)
        for blocks, iq in zip(mats, iqs):
            v = iq.ravel(order="F")
            for b, m in enumerate(blocks):
                blk = out[b * rows:(b + 1) * rows]
                # dasmtx orders its points as the block flattened in Fortran order
                blk += (m @ v).reshape(blk.shape, order="F")
        self.t_das += time.process_time() - t0
        return out

    def image(self, name, X, Z, x_mm, z_mm, amp) -> np.ndarray:
        iqs = [self.iq(self.rf(x_mm, z_mm, amp, k)) for k in range(len(self.delays))]
        return self.beamform(name, X, Z, iqs)


def calibrate(im: Imager, grid: Grid, z_skin: float, line_spacing: float) -> dict:
    """The system response of this frame's chain, from point and line targets.

    Returns ``depths`` and ``k_diff`` (sum of |PSF|^2 dx dz of a unit point at those depths, mm^2:
    the mean intensity of unit-density, unit-amplitude diffuse scatter), and at the skin depth the
    axial profiles ``u`` (mm), ``line_profile`` (intensity of a unit line of points at
    `line_spacing`, peak normalised to 1) and ``point_energy`` (lateral sum of |PSF|^2 per mm of
    depth, normalised to integrate to 1), with ``line_peak`` / ``k_skin`` (the line's peak
    intensity and the point's energy at the skin depth).
    """
    D = grid.depth
    zs = np.arange(0.45, D - 0.15, 0.8)
    zs = np.unique(np.concatenate([zs[np.abs(zs - z_skin) > 0.45], [z_skin]]))
    xs = np.zeros_like(zs)
    X, Z = np.meshgrid(grid.x, grid.z)
    iqs = [im.iq(im.rf(xs, zs, np.ones_like(zs), j)) for j in range(len(im.delays))]
    bf = np.abs(im.beamform("main", X, Z, iqs)) ** 2
    k = []
    for zk in zs:
        rsel = np.abs(grid.z - zk) < 0.35
        csel = np.abs(grid.x) < 1.5
        k.append(float(bf[np.ix_(rsel, csel)].sum() * grid.dx * grid.dz))
    # fine window round the point at the skin depth: axial energy profile
    du = 0.004
    u = np.arange(-0.3, 0.3 + du / 2, du)
    xw = np.arange(-1.5, 1.5 + 1e-9, grid.dx)
    XW, ZW = np.meshgrid(xw, z_skin + u)
    pw = np.abs(im.beamform("fine_window", XW, ZW, iqs)) ** 2
    e = pw.sum(axis=1) * grid.dx
    k_skin = float(e.sum() * du)
    # a horizontal line of unit points at the skin depth, imaged on a fine column at x = 0
    half = grid.width / 2 + 0.25
    lx = np.arange(-half, half, line_spacing)
    lz = np.full_like(lx, z_skin)
    XC, ZC = np.meshgrid(np.array([0.0]), z_skin + u)
    pl = np.abs(im.image("fine_column", XC, ZC, lx, lz, np.ones_like(lx)))[:, 0] ** 2
    return {"depths": zs, "k_diff": np.array(k), "u": u, "line_profile": pl / pl.max(),
            "line_peak": float(pl.max()), "point_energy": e / max(k_skin, 1e-300),
            "k_skin": k_skin}


def entry_echo_extent(cal: dict, epi_mm, skin_db: float, dej_db: float, epi_db: float):
    """-6 dB extent (offsets from the skin surface, mm) of the expected entry-echo envelope for
    each epidermis thickness in `epi_mm`: skin line + epidermis scatter + junction line, from this
    frame's line and point profiles, levels in dB re the dermis mean intensity."""
    u, lp, pe = cal["u"], cal["line_profile"], cal["point_energy"]
    du = u[1] - u[0]
    ext = np.arange(u[0], u[-1] + 0.2, du)
    lpe = np.interp(ext, u, lp, left=0, right=0)
    cum = np.concatenate([[0.0], np.cumsum(pe) * du])        # integral of the point profile
    ucum = np.concatenate([[u[0] - du / 2], u + du / 2])
    tops, bots = [], []
    for e in np.atleast_1d(epi_mm):
        # diffuse slab [0, e]: integral over v of pe(w - v) = P(w) - P(w - e)
        slab = np.interp(ext, ucum, cum, left=0, right=1) - np.interp(ext - e, ucum, cum,
                                                                         left=0, right=1)
        inten = (10 ** (skin_db / 10) * lpe
                 + 10 ** (dej_db / 10) * np.interp(ext - e, u, lp, left=0, right=0)
                 + 10 ** (epi_db / 10) * slab)
        ok = inten >= 0.25 * inten.max()
        i0 = int(np.argmax(ok))
        i1 = len(ok) - 1 - int(np.argmax(ok[::-1]))
        thr = 0.25 * inten.max()

        def cross(ia, ib):
            ta, tb = inten[ia], inten[ib]
            f = 0.0 if tb == ta else (thr - ta) / (tb - ta)
            return ext[ia] + min(max(f, 0.0), 1.0) * (ext[ib] - ext[ia])
        tops.append(cross(max(i0 - 1, 0), i0))
        bots.append(cross(i1, min(i1 + 1, len(ext) - 1)))
    return np.array(tops), np.array(bots)


# ------------------------------------------------------------------------------ one frame
def _frame_rng(seed: int, index: int) -> np.random.Generator:
    ss = np.random.SeedSequence((int(seed), SALT), spawn_key=(1, int(index)))
    return np.random.default_rng(ss)


def plan_set(n: int, seed: int) -> list[dict]:
    """Regions (balanced, shuffled) and pseudonymous subjects (1-3 frames each) of `n` frames."""
    rng = np.random.default_rng(np.random.SeedSequence((int(seed), SALT), spawn_key=(0,)))
    regions = [REGIONS[i % len(REGIONS)] for i in range(n)]
    regions = [regions[i] for i in rng.permutation(n)]
    plan, subj, i = [], 0, 0
    while i < n:
        k = int(rng.integers(1, 4))
        for _ in range(k):
            if i >= n:
                break
            plan.append({"index": i, "region": regions[i], "subject_id": f"pm{subj:03d}",
                         "id": f"pymust{i:03d}_{regions[i]}"})
            i += 1
        subj += 1
    return plan


def make_frame(seed: int, index: int, region: str, cfg: SetConfig | None = None) -> dict:
    """Simulate one frame. Returns ``bmode`` (float grey 0-255), ``labels`` (uint8),
    ``spacing_mm``, ``probe``, ``truth`` and ``seconds`` (wall/CPU, not written anywhere)."""
    import pymust
    from layerseg.layers.profiles import LABEL_INDEX

    cfg = cfg or SetConfig()
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    rng = _frame_rng(seed, index)
    dz = float(rng.uniform(*cfg.dz_mm))
    dx = float(rng.uniform(*cfg.dx_mm))
    depth = float(rng.uniform(*cfg.depth_mm))
    width = float(rng.uniform(*cfg.width_mm))
    grid = Grid(dz, dx, int(round(depth / dz)), int(round(width / dx)))
    probe = draw_probe(rng, grid.width, cfg.p_compound)
    echo = draw_echogenicity(rng)
    dens = draw_densities(rng, cfg.density_scale)
    ph = build_phantom(rng, region, grid, probe)
    n_expected = expected_scatterers(ph, dens, grid, probe.wavelength_mm)
    probe, thin = afford(probe, n_expected, grid.nz * grid.nx, cfg.budget_s)
    dens = {k: v * thin for k, v in dens.items()}
    im = Imager(probe, grid, cfg.chunk)
    sel = (ph.xf > -grid.width / 2) & (ph.xf < grid.width / 2)
    z_skin = float(np.median(ph.skin[sel]))
    spacing = probe.wavelength_mm / 2
    cal = calibrate(im, grid, z_skin, spacing)
    rho_d = dens["dermis"] / REF_CELL_MM2

    def layer_amp(db, rho):      # per-point amplitude for a mean intensity of `db` re dermis
        return math.sqrt(10 ** (db / 10) * rho_d / rho)

    def line_amp(db):            # per-point amplitude for a line peak of `db` re dermis
        return math.sqrt(10 ** (db / 10) * rho_d * cal["k_skin"] / cal["line_peak"])

    scat, info = populate(rng, ph, grid, probe, echo, dens, line_amp, layer_amp)
    xs, zs, amp = scat.arrays()
    keep = (np.abs(xs) <= im.bounds[0]) & (zs <= im.bounds[1]) & (amp != 0)
    xs, zs, amp = xs[keep], zs[keep], amp[keep]
    X, Z = np.meshgrid(grid.x, grid.z)
    iqs = [im.iq(im.rf(xs, zs, amp, k)) for k in range(len(im.delays))]
    bf = im.beamform("main", X, Z, iqs)
    # electronic noise: white on every channel, level drawn re the dermis at the skin depth
    noise_db = float(rng.uniform(-75, -60))
    nrf = [rng.standard_normal((im.nt[k], probe.n_elements)) for k in range(len(im.delays))]
    bfn = im.beamform("main", X, Z, [im.iq(r) for r in nrf])
    kz = np.exp(np.interp(grid.z, cal["depths"], np.log(cal["k_diff"])))   # system depth response
    ref = rho_d * kz                                                      # dermis mean intensity
    r_sk = int(np.argmin(np.abs(grid.z - z_skin)))
    n_now = float(np.mean(np.abs(bfn[max(r_sk - 3, 0):r_sk + 4]) ** 2)) / ref[r_sk]
    bf = bf + bfn * math.sqrt(10 ** (noise_db / 10) / n_now)
    # TGC: divide out the depth response, times a drawn residual gain curve
    z = grid.z
    slope = float(rng.uniform(-0.5, 0.5))
    bump_z, bump_w, bump_db = (float(rng.uniform(0, grid.depth)), float(rng.uniform(1.5, 4)),
                               float(rng.uniform(-2.5, 2.5)))
    resid_db = slope * (z - z.mean()) + bump_db * np.exp(-0.5 * ((z - bump_z) / bump_w) ** 2)
    # the scanner's TGC range is finite: at most `tgc_max_db` of gain over the skin depth, so
    # deep tissue darkens once attenuation outgrows it
    tgc_max_db = float(rng.uniform(20, 35))
    comp_db = 10 * np.log10(ref[r_sk] / ref)                  # gain that flattens the dermis
    lost_db = np.clip(comp_db - tgc_max_db, 0, None)
    level_db = (10 * np.log10(np.abs(bf) ** 2 / ref[:, None] + 1e-30) + resid_db[:, None]
                - lost_db[:, None])
    # log compression and grey map
    dr = float(rng.uniform(50, 70))
    top_db = float(rng.uniform(8, 18))
    gamma = float(rng.uniform(1.0, 1.5))
    g = np.clip((level_db - (top_db - dr)) / dr, 0.0, 1.0) ** gamma
    bmode = (255.0 * g).astype(np.float32)

    # ------------------------------------------------------------ labels at pixel centres
    xc = grid.x
    skin_c = _interp(ph, ph.skin, xc)
    epi_c = _interp(ph, ph.bottoms["epidermis"], xc) - skin_c
    e_lo, e_hi = float(epi_c.min()), float(epi_c.max())
    e_tab = np.linspace(e_lo, max(e_hi, e_lo + 1e-6), 12)
    t_tab, b_tab = entry_echo_extent(cal, e_tab, echo["skin_line"], echo["dej_line"],
                                     echo["epidermis"])
    echo_top = skin_c + np.interp(epi_c, e_tab, t_tab)
    echo_bot = skin_c + np.interp(epi_c, e_tab, b_tab)
    bounds = [echo_top, np.maximum(echo_bot, echo_top)]   # label 1 = [echo top, echo bottom)
    names = ["epidermis"]
    for ly in ph.layers[1:]:
        names.append(ly)
        bounds.append(_interp(ph, ph.bottoms[ly], xc) if ly != "bone" else
                      np.full(grid.nx, np.inf if ph.bone_in_view else -np.inf))
    B = np.stack(bounds)                                   # (K + 1, nx) depths, mm
    soft_bottom = _interp(ph, ph.soft_bottom, xc)
    if not ph.bone_in_view:                                 # bone: zero thickness everywhere
        B[-1] = soft_bottom
    B[1] = np.minimum(B[1], _interp(ph, ph.bottoms["dermis"], xc))
    B = np.maximum.accumulate(B, axis=0)
    labels = np.zeros((grid.nz, grid.nx), np.uint8)
    zc = z[:, None]
    for k, ly in enumerate(names):
        inside = (zc >= B[k][None, :]) & (zc < B[k + 1][None, :])
        labels[inside] = LABEL_INDEX[ly]

    # ------------------------------------------------------------ truth
    present = {ly: bool(np.any(labels == LABEL_INDEX[ly])) for ly in names}
    layers_truth = {}
    for ly in names:
        if ly == "bone":
            layers_truth[ly] = {"present": present[ly]}
            continue
        th = _interp(ph, ph.bottoms[ly], xc) - _interp(ph, ph.tops[ly], xc)
        layers_truth[ly] = {"present_in_label_map": present[ly],
                            "present_in_phantom": bool(ph.params["present"].get(ly, True)),
                            "thickness_anatomical_mean_mm": float(th.mean()),
                            "truncated_by_fov": bool(np.any(_interp(ph, ph.bottoms[ly], xc)
                                                            > grid.depth))}
    secs = {"wall_s": time.perf_counter() - t_wall, "cpu_s": time.process_time() - t_cpu,
            "simus_cpu_s": im.t_simus, "das_cpu_s": im.t_das}
    truth = {
        "generator": "scripts/make_pymust_set.py (PyMUST SIMUS + DAS; not layerseg.simulate)",
        "pymust_version": getattr(pymust, "__version__", "unknown"),
        "seed": {"set_seed": int(seed), "index": int(index), "salt": SALT},
        "region": region, "profile": names,
        "speed_of_sound_m_s": C,
        "note": "homogeneous speed of sound: apparent = anatomical depths",
        "probe": {"frequency_mhz": probe.f0_mhz, "bandwidth_pct": probe.bandwidth_pct,
                  "pitch_mm": probe.pitch_mm, "n_elements": probe.n_elements,
                  "rx_fnumber": probe.fnumber, "attenuation_db_cm_mhz": probe.attenuation,
                  "plane_wave_angles_deg": list(probe.angles_deg), "fs_mhz": 4 * probe.f0_mhz},
        "display": {"dynamic_range_db": dr, "top_db_re_dermis": top_db, "grey_gamma": gamma,
                    "noise_db_re_dermis_at_skin": noise_db, "tgc_residual_slope_db_per_mm": slope,
                    "tgc_max_gain_db": tgc_max_db,
                    "tgc_residual_bump": [bump_z, bump_w, bump_db]},
        "echogenicity_db_re_dermis": echo,
        "scatterers_per_resolution_cell": dens,
        "density_thinned_by": thin,
        "spacing_mm": [grid.dz, grid.dx],
        "n_scatterers": int(xs.size),
        "phantom": {k: v for k, v in ph.params.items()},
        "structures": info,
        "layers": layers_truth,
        "entry_echo": {"definition": "label 1 spans, per column, the -6 dB extent of the expected "
                       "envelope of skin line + epidermis scatter + junction line (this frame's "
                       "imaged line and point profiles)",
                       "offset_top_mm_range": [float(t_tab.min()), float(t_tab.max())],
                       "offset_bottom_mm_range": [float(b_tab.min()), float(b_tab.max())]},
        "skin_surface_row": [round(float(v), 4) for v in skin_c / grid.dz - 0.5],
    }
    return {"bmode": bmode, "labels": labels, "spacing_mm": (grid.dz, grid.dx), "probe": probe,
            "dynamic_range_db": dr, "truth": truth, "seconds": secs,
            "n_scatterers": int(xs.size)}


# ------------------------------------------------------------------------------ the set
def _write_one(args) -> tuple[dict, dict]:
    root, seed, item, cfg = args
    from layerseg.frame import Frame, FrameMeta
    from layerseg.io.dataset import write_frame_files

    f = make_frame(seed, item["index"], item["region"], cfg)
    meta = FrameMeta(frequency_mhz=round(f["probe"].f0_mhz, 2),
                     device="PyMUST SIMUS linear array (simulated)", region=item["region"],
                     subject_key=item["subject_id"])
    frame = Frame(f["bmode"], f["spacing_mm"], intensity="display",
                  dynamic_range_db=round(f["dynamic_range_db"], 3), meta=meta)
    truth = dict(f["truth"], subject_id=item["subject_id"], frame_id=item["id"])
    row = write_frame_files(root, frame, item["id"], label=f["labels"], truth=truth)
    row.update(subject_id=item["subject_id"], split="test", region=item["region"])
    p = f["probe"]
    stats = dict(f["seconds"], id=item["id"], f0=p.f0_mhz, angles=len(p.angles_deg),
                 elements=p.n_elements, scatterers=f["n_scatterers"],
                 shape=f["labels"].shape)
    return row, stats


def make_set(out, n: int = 24, seed: int = 9001, workers: int = 1,
             cfg: SetConfig | None = None, log=print) -> Path:
    """Write `n` frames to the folder `out` (which must not hold a manifest)."""
    from layerseg.io.dataset import write_manifest

    root = Path(out)
    if (root / "manifest.csv").exists():
        raise SystemExit(f"{root}/manifest.csv exists; refusing to overwrite a dataset")
    root.mkdir(parents=True, exist_ok=True)
    plan = plan_set(int(n), int(seed))
    jobs = [(str(root), int(seed), item, cfg) for item in plan]
    t0 = time.perf_counter()
    rows, stats = [], []

    def report(st):
        log(f"{st['id']:24s} {st['f0']:5.1f} MHz {st['angles']} tx {st['elements']:3d} el "
            f"{st['scatterers']:6d} scat {st['shape'][0]}x{st['shape'][1]} px: "
            f"wall {st['wall_s']:6.1f} s, CPU {st['cpu_s']:6.1f} s "
            f"(SIMUS {st['simus_cpu_s']:5.1f} s, DAS {st['das_cpu_s']:4.1f} s)")
    if int(workers) <= 1:
        for j in jobs:
            r, st = _write_one(j)
            rows.append(r)
            stats.append(st)
            report(st)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(int(workers), mp_context=mp.get_context("spawn")) as ex:
            for r, st in ex.map(_write_one, jobs):
                rows.append(r)
                stats.append(st)
                report(st)
    write_manifest(root, rows)
    total = time.perf_counter() - t0
    if stats:
        w = np.array([s["wall_s"] for s in stats])
        c = np.array([s["cpu_s"] for s in stats])
        log(f"{len(stats)} frames in {total:.0f} s ({workers} worker(s)); per frame: wall mean "
            f"{w.mean():.1f} s (max {w.max():.1f}), CPU mean {c.mean():.1f} s "
            f"(max {c.max():.1f})")
    return root


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="output dataset folder (must not hold a manifest)")
    ap.add_argument("--n", type=int, default=24, help="number of frames (default 24)")
    ap.add_argument("--seed", type=int, default=9001, help="set seed (default 9001)")
    ap.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    args = ap.parse_args(argv)
    if args.n < 1 or args.workers < 1:
        ap.error("--n and --workers must be at least 1")
    make_set(args.out, args.n, args.seed, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
