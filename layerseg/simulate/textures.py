"""Tissue textures and artefacts a reader expects in a scanner's frame (``--ranges wide``).

`build_phantom` adds them to the fine-grid medium when it is given a `Textures`; without one
(``--ranges default``) the medium is exactly what it was before they existed. Each feature's
magnitudes are drawn per frame from ``sim_ranges.json`` (``wide`` / ``textures``), where every
entry says where its range comes from; the placements (where each septum, vessel or follicle
lies) come from their own random stream and are recorded in the truth (``phantom``).

- Diffuse fat septa: oblique, wavy, partly interrupted bands of varying width and brightness
  running through the fat from the dermis to the SMAS (and through the deep fat), with a soft
  (Gaussian) cross-section, added as fibrous scatterers on top of the fat's own.
- Vessels: small anechoic ellipses in the lower dermis (at most 0.15 mm) and the fat (blood's
  backscatter about 35 dB under tissue, its attenuation 0.15 dB/cm/MHz, so they enhance what
  lies below).
- Hair follicles: oblique hypoechoic tubes from the dermo-epidermal junction into the dermis.
- Uneven fascia: SMAS, muscle fascia, periosteum and deep fascia echoes whose brightness wanders
  along the line (smooth log-normal, correlation 0.2-1 mm) with occasional gaps.
- Bone: partial penetration (its attenuation scaled down, so some echo comes from inside it) and,
  at a partial bone's edge, a thinning bone whose shadow and periosteal echo fade over a taper
  instead of starting at a vertical edge.
- A few bright specular spots (small calcified or fibrous points) in the dermis and fat.

Side-lobe clutter is part of the beam (`AcousticParams.sidelobe_db`), not of the medium.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import ndtri

from ..errors import ConfigError

__all__ = ["Textures", "smooth_curve", "band_pixels"]

BLOOD_BACKSCATTER_DB = -35.0
"""Blood's backscatter re dermis at 15-50 MHz (red cells are Rayleigh scatterers far weaker than
tissue: 30-40 dB under it in B-mode, which shows vessels anechoic; our rounded figure)."""
DERMAL_VESSEL_MAX_MM = 0.15
"""Largest vessel diameter in the dermis (the deep dermal plexus's arterioles and venules are
under about 0.1-0.15 mm; the larger vessels run in the fat)."""
BLOOD_ATTEN_DB_CM_MHZ = 0.15
"""Blood's attenuation slope (textbook 0.15-0.2 dB/cm/MHz)."""


@dataclass(frozen=True)
class Textures:
    """Magnitudes of the wide-range textures of one frame (see the module docstring).

    Attributes
    ----------
    septa_per_mm : float
        Diffuse septa per mm of frame width in each fat layer (0 = none).
    septa_width_mm : float
        Typical FWHM of a diffuse septum's cross-section (each septum 0.5-1.5x this).
    septa_db : float
        Typical peak backscatter of a diffuse septum re dermis (each septum +-4 dB about it).
    septa_gap_fraction : float
        Fraction (0-0.9) of a septum's length that is interrupted.
    crisp_septa_per_mm2 : float
        Thin crisp septa (the default ranges' kind) per mm^2 of fat.
    vessels_per_cm : float
        Vessels per cm of frame width (Poisson mean).
    vessel_diameter_mm : float
        Typical vessel diameter (each 0.5-1.5x this, kept inside its layer).
    follicles_per_cm : float
        Hair follicles per cm of frame width.
    line_unevenness_db : float
        SD (dB) of the brightness wander along the SMAS, fascia, periosteum and deep fascia echoes.
    line_gap_fraction : float
        Fraction (0-0.9) of those lines that is missing (echo 26 dB down).
    bone_atten_scale : float
        Bone attenuation as a fraction (0.02-1) of the table's (partial penetration).
    bone_edge_taper_mm : float
        Width over which a partial bone thins out to its edge (0 = a sharp edge).
    specular_spots_per_cm2 : float
        Bright point reflectors per cm^2 of dermis and fat.
    specular_spot_db : float
        Their typical level (dB, as ``specular_db``; each +-5 dB about it).
    sidelobe_db, sidelobe_width : float
        Side-lobe clutter of the beam, passed to `AcousticParams`.
    """

    septa_per_mm: float = 0.0
    septa_width_mm: float = 0.08
    septa_db: float = -6.0
    septa_gap_fraction: float = 0.3
    crisp_septa_per_mm2: float = 0.2
    vessels_per_cm: float = 0.0
    vessel_diameter_mm: float = 0.2
    follicles_per_cm: float = 0.0
    line_unevenness_db: float = 0.0
    line_gap_fraction: float = 0.0
    bone_atten_scale: float = 1.0
    bone_edge_taper_mm: float = 0.0
    specular_spots_per_cm2: float = 0.0
    specular_spot_db: float = 10.0
    sidelobe_db: float | None = None
    sidelobe_width: float = 5.0

    def __post_init__(self):
        for k in ("septa_per_mm", "septa_width_mm", "crisp_septa_per_mm2", "vessels_per_cm",
                  "vessel_diameter_mm", "follicles_per_cm", "line_unevenness_db",
                  "bone_edge_taper_mm", "specular_spots_per_cm2"):
            v = getattr(self, k)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"textures: {k} must be finite and >= 0, got {v}")
        for k in ("septa_gap_fraction", "line_gap_fraction"):
            if not 0.0 <= getattr(self, k) <= 0.9:
                raise ConfigError(f"textures: {k} must lie in 0-0.9, got {getattr(self, k)}")
        if not 0.02 <= self.bone_atten_scale <= 1.0:
            raise ConfigError(f"textures: bone_atten_scale must lie in 0.02-1, got "
                              f"{self.bone_atten_scale}")

    @classmethod
    def from_drawn(cls, drawn: dict) -> "Textures":
        """Build from the ``textures`` group drawn from ``sim_ranges.json`` (unknown keys are an
        error, so a misspelt entry in the file cannot be silently ignored)."""
        known = set(cls.__dataclass_fields__)
        bad = sorted(set(drawn) - known)
        if bad:
            raise ConfigError(f"sim_ranges.json wide textures: unknown entries {bad}")
        return cls(**drawn)

    def describe(self) -> dict:
        return asdict(self)


def smooth_curve(rng: np.random.Generator, n: int, dx: float, corr_mm: float) -> np.ndarray:
    """Smooth zero-mean unit-SD random curve of `n` samples at spacing `dx` mm, with Gaussian
    correlation length `corr_mm` (float64, shape (n,))."""
    w = rng.standard_normal(n + 64)
    c = gaussian_filter1d(w, max(corr_mm / dx, 0.5), mode="wrap")[32:32 + n]
    sd = c.std()
    return (c - c.mean()) / (sd if sd > 0 else 1.0)


def band_pixels(px: np.ndarray, pz: np.ndarray, width_mm: float, along: np.ndarray,
                dzf: float, dx: float, margin: int, shape: tuple[int, int]):
    """Fine-grid pixels of a soft band drawn along a path.

    Parameters
    ----------
    px, pz : ndarray (P,)
        Path points, lateral mm (0 = left image edge) and apparent depth mm, spaced as
        `path_step` says for the path's direction.
    width_mm : float
        FWHM of the band's Gaussian cross-section.
    along : ndarray (P,)
        Weight (0-1) of each path point (gaps, brightness wander).
    dzf, dx : float
        Fine grid steps (mm).
    margin : int
        Left padding columns of the fine grid.
    shape : (int, int)
        Fine grid shape (rows, cols).

    Returns
    -------
    rows, cols : int64 ndarray (N,)
        Distinct pixels the band touches.
    weight : float64 ndarray (N,)
        The band's largest weight at each (cross-section profile x `along`), in (0, 1].
    """
    # cross-section samples at most half a fine pixel apart along the band's mean normal
    # (the fine grid is far finer in depth than across: sampling both ways at the axial step
    # would cost (dx / dzf) times more for nothing)
    mz, mx_ = float(pz[-1] - pz[0]), float(px[-1] - px[0])
    mn = math.hypot(mz, mx_) or 1.0
    step = path_step(mx_ / mn, -mz / mn, dzf, dx)        # direction of the mean normal
    half = 1.2 * width_mm
    offs = np.arange(-half, half + 1e-12, step)
    prof = np.exp(-4.0 * math.log(2.0) * (offs / max(width_mm, 1e-9)) ** 2)
    tz = np.gradient(pz)
    tx = np.gradient(px)
    nrm = np.hypot(tz, tx)
    nrm[nrm == 0] = 1.0
    nz_, nx_ = tx / nrm, -tz / nrm          # unit normal to the path
    zz = pz[:, None] + offs[None, :] * nz_[:, None]
    xx = px[:, None] + offs[None, :] * nx_[:, None]
    w = along[:, None] * prof[None, :]
    jj = np.floor(zz / dzf).astype(np.int64).ravel()
    cc = np.floor(xx / dx + margin).astype(np.int64).ravel()
    w = w.ravel()
    ok = (jj >= 0) & (jj < shape[0]) & (cc >= 0) & (cc < shape[1]) & (w > 0.02)
    jj, cc, w = jj[ok], cc[ok], w[ok]
    if jj.size == 0:
        return jj, cc, w
    # per pixel, the largest weight: a maximum into the band's bounding box
    j0, c0 = int(jj.min()), int(cc.min())
    box = np.zeros((int(jj.max()) - j0 + 1, int(cc.max()) - c0 + 1))
    np.maximum.at(box, (jj - j0, cc - c0), w)
    r, c = np.nonzero(box)
    return r + j0, c + c0, box[r, c]


def _path_curve(rng: np.random.Generator, n: int, step: float, corr_mm: float) -> np.ndarray:
    """`smooth_curve` of `n` samples `step` mm apart, made at a quarter of the correlation
    length and interpolated (a path sampled at a fine pixel's fraction would otherwise filter
    thousands of samples with a kernel of thousands of taps)."""
    coarse = max(step, corr_mm / 4.0)
    m = int(math.ceil((n - 1) * step / coarse)) + 2
    c = smooth_curve(rng, m, coarse, corr_mm)
    return np.interp(np.arange(n) * step, np.arange(m) * coarse, c)


def path_step(dz: float, dx_: float, dzf: float, dx: float) -> float:
    """Sampling step (mm) along a direction (unit vector `dz` in depth, `dx_` across) that
    moves at most half a fine pixel in depth (`dzf`) and across (`dx`) per step, so a band or
    path leaves no pixel it crosses unsampled (a wandering path is sampled slightly coarser
    where it turns; the beam blurs that away)."""
    return 0.5 * min(dzf / max(abs(dz), 1e-9), dx / max(abs(dx_), 1e-9))


def _gaps(rng, n, step, gap_fraction, corr_mm, curve=smooth_curve):
    """Boolean (n,) True where a line is interrupted: a smooth curve under its quantile."""
    if gap_fraction <= 0:
        return np.zeros(n, bool)
    return curve(rng, n, step, corr_mm) < ndtri(gap_fraction)


def line_weights(rng: np.random.Generator, n: int, dx: float, tex: Textures) -> np.ndarray:
    """Per-column amplitude factor of an uneven fascial echo (shape (n,)): log-normal wander of
    SD `line_unevenness_db` (correlation 0.2-1 mm) and gaps 26 dB down."""
    corr = rng.uniform(0.2, 1.0)
    f = 10.0 ** (tex.line_unevenness_db * smooth_curve(rng, n, dx, corr) / 20.0)
    gap = _gaps(rng, n, dx, tex.line_gap_fraction, rng.uniform(0.2, 0.8))
    return np.where(gap, 0.05 * f, f)


def _blend_scatterers(density, amplitude, rows, cols, weight, dens_s, amp_s):
    """Add a fibrous scatterer population (density `dens_s`, amplitude `amp_s`, power scaled by
    `weight`) on top of what the pixels hold: the pixel keeps its power and gains the band's."""
    d0 = density[rows, cols].astype(np.float64)
    a0 = amplitude[rows, cols].astype(np.float64)
    d1 = np.maximum(d0, dens_s)
    p1 = d0 * a0 ** 2 + weight * dens_s * amp_s ** 2
    density[rows, cols] = d1
    amplitude[rows, cols] = np.sqrt(p1 / np.maximum(d1, 1e-12))


def add_diffuse_septa(density, amplitude, idx, S, fat_layers, x, dzf, dx, margin, tex, rng,
                      dens_s, amp_of_db):
    """Diffuse septa through each fat layer (see the module docstring).

    Parameters
    ----------
    density, amplitude : float32 (nzf, nxp)
        Fine-grid scatterer maps, changed in place.
    idx : int16 (nzf, nxp)
        Fine-grid layer index (k + 1 for layer k of the profile).
    S : (K+1, nxp)
        Layer surfaces (apparent mm).
    fat_layers : list of int
        Profile indices k of the fat layers (top S[k], bottom S[k + 1]).
    x : (nxp,)
        Lateral position of each fine column (mm).
    dens_s : float
        Septum scatterer density (per mm^2).
    amp_of_db : callable
        Backscatter re dermis (dB) -> scatterer amplitude at density `dens_s`.

    Returns
    -------
    list of dict
        One entry per septum: layer index, top position, angle, width, level.
    """
    out = []
    width = float(x[-1] - x[0])
    for k in fat_layers:
        n = int(rng.poisson(tex.septa_per_mm * width))
        for _ in range(n):
            c0 = int(rng.integers(0, x.size))
            ang = math.radians(rng.uniform(-55.0, 55.0))         # from the vertical
            top, bot = S[k], S[k + 1]
            thick = float(bot[c0] - top[c0])
            if thick < 0.1:
                continue
            # a septum runs from the layer's top, from its bottom (upwards) or from inside it,
            # over part of the way or all of it, and wanders as it goes
            span = 1.25 * thick / math.cos(ang) + 0.2
            length = span * rng.uniform(0.3, 1.0)
            start = rng.random()
            step = path_step(math.cos(ang), math.sin(ang), dzf, dx)
            t = np.arange(0.0, length, step)
            wander = rng.uniform(0.03, 0.15) * _path_curve(rng, t.size, step,
                                                           rng.uniform(0.15, 0.5))
            if start < 0.5:
                z0, dirz = top[c0] - 0.05, 1.0
            elif start < 0.75:
                z0, dirz = bot[c0] + 0.05, -1.0
            else:
                z0, dirz = top[c0] + rng.uniform(0.2, 0.8) * thick, 1.0
            px = x[c0] + t * math.sin(ang) + wander * math.cos(ang)
            pz = z0 + dirz * t * math.cos(ang) - wander * math.sin(ang)
            w_mm = tex.septa_width_mm * rng.uniform(0.5, 1.5)
            lev = tex.septa_db + rng.uniform(-4.0, 4.0)
            along = 10.0 ** (5.0 * _path_curve(rng, t.size, step, 0.2) / 20.0)
            along = np.where(_gaps(rng, t.size, step, tex.septa_gap_fraction, 0.2,
                                   _path_curve), 0.0, along)
            rows, cols, w = band_pixels(px, pz, w_mm, np.minimum(along, 3.0) / 3.0, dzf, dx,
                                        margin, idx.shape)
            keep = idx[rows, cols] == k + 1
            _blend_scatterers(density, amplitude, rows[keep], cols[keep], w[keep], dens_s,
                              amp_of_db(lev))
            out.append({"layer": int(k), "x_mm": round(float(x[c0]), 4),
                        "angle_deg": round(math.degrees(ang), 2), "width_mm": round(w_mm, 4),
                        "level_db": round(lev, 2)})
    return out


def add_vessels(amplitude, atten, idx, S, dermis_k, fat_layers, x, dzf, dx, margin, n_cols, tex,
                rng):
    """Anechoic elliptic vessels in the lower dermis and the fat layers (in place).

    `dermis_k` and `fat_layers` are profile indices k; a vessel stays inside its layer's
    fine-grid id (k + 1), and the dermis (k = `dermis_k`) gets small vessels in its lower half
    only. Returns one dict per vessel (layer, centre, radii in mm)."""
    layer_ids = [dermis_k] + list(fat_layers)
    out = []
    width = n_cols * dx
    n = int(rng.poisson(tex.vessels_per_cm * width / 10.0))
    nzf = idx.shape[0]
    z = (np.arange(nzf) + 0.5) * dzf
    gain = 10.0 ** (BLOOD_BACKSCATTER_DB / 20.0)
    for _ in range(n):
        k = int(layer_ids[rng.integers(0, len(layer_ids))])
        c0 = int(rng.integers(margin, margin + n_cols))
        top, bot = float(S[k][c0]), float(S[k + 1][c0])
        d = tex.vessel_diameter_mm * rng.uniform(0.5, 1.5)
        if k == dermis_k:        # dermis: the lower half, and the dermal plexus's small vessels
            top = 0.5 * (top + bot)
            d = min(d, DERMAL_VESSEL_MAX_MM)
        d = min(d, 0.8 * (bot - top))
        if d < 0.04:
            continue
        rz = d / 2.0
        rx = rz * rng.uniform(1.0, 2.5)                      # cut obliquely: laterally longer
        zc = rng.uniform(top + rz, bot - rz)
        c_lo = max(0, int(math.floor((x[c0] - rx) / dx + margin)))
        c_hi = min(idx.shape[1], int(math.ceil((x[c0] + rx) / dx + margin)) + 1)
        j_lo = max(0, int((zc - rz) / dzf) - 1)
        j_hi = min(nzf, int((zc + rz) / dzf) + 2)
        zz = z[j_lo:j_hi, None]
        xx = x[None, c_lo:c_hi]
        inside = ((zz - zc) / rz) ** 2 + ((xx - x[c0]) / rx) ** 2 <= 1.0
        inside &= idx[j_lo:j_hi, c_lo:c_hi] == k + 1
        sub_t = atten[j_lo:j_hi, c_lo:c_hi]
        inside &= sub_t != np.float32(BLOOD_ATTEN_DB_CM_MHZ)   # overlapping vessels: once
        sub_a = amplitude[j_lo:j_hi, c_lo:c_hi]
        sub_a[inside] *= gain
        sub_t[inside] = BLOOD_ATTEN_DB_CM_MHZ
        out.append({"layer": int(k), "x_mm": round(float(x[c0]), 4), "z_mm": round(zc, 4),
                    "rz_mm": round(rz, 4), "rx_mm": round(rx, 4)})
    return out


def add_follicles(amplitude, idx, dermis_k, dej, dermis_bottom, x, dzf, dx, margin, n_cols, tex,
                  rng):
    """Oblique hypoechoic hair follicles from the dermo-epidermal junction `dej` (nxp,) into the
    dermis (profile index `dermis_k`, fine-grid id `dermis_k` + 1), in place. Returns one dict
    per follicle."""
    out = []
    width = n_cols * dx
    n = int(rng.poisson(tex.follicles_per_cm * width / 10.0))
    for _ in range(n):
        c0 = int(rng.integers(margin, margin + n_cols))
        ang = math.radians(rng.uniform(15.0, 50.0)) * (1 if rng.random() < 0.5 else -1)
        thick = float(dermis_bottom[c0] - dej[c0])
        if thick < 0.2:
            continue
        length = thick * rng.uniform(0.4, 1.0) / math.cos(ang)
        step = path_step(math.cos(ang), math.sin(ang), dzf, dx)
        t = np.arange(0.0, length, step)
        px = x[c0] + t * math.sin(ang)
        pz = dej[c0] + t * math.cos(ang)
        w_mm = rng.uniform(0.04, 0.1)
        db = rng.uniform(-20.0, -8.0)
        rows, cols, w = band_pixels(px, pz, w_mm, np.ones(t.size), dzf, dx, margin, idx.shape)
        keep = idx[rows, cols] == dermis_k + 1
        rows, cols = rows[keep], cols[keep]
        amplitude[rows, cols] *= 10.0 ** (db * w[keep] / 20.0)
        out.append({"x_mm": round(float(x[c0]), 4), "angle_deg": round(math.degrees(ang), 2),
                    "length_mm": round(length, 4), "width_mm": round(w_mm, 4),
                    "level_db": round(db, 2)})
    return out


def bone_edge_factor(x: np.ndarray, edge_mm: float, side: float, taper_mm: float) -> np.ndarray:
    """Per-column factor (0.05-1) by which a partial bone thins towards its edge.

    The bone lies where ``side * (x - edge_mm) < 0``; the factor rises from 0.05 at the edge to
    1 at `taper_mm` inside it (smoothstep), and is 1 everywhere when `taper_mm` is 0."""
    if taper_mm <= 0:
        return np.ones_like(x, dtype=np.float64)
    d = np.clip(-side * (x - edge_mm) / taper_mm, 0.0, 1.0)
    return 0.05 + 0.95 * d * d * (3.0 - 2.0 * d)


def specular_spots(idx, layer_ids, x, dzf, dx, margin, n_cols, tex, rng):
    """Positions and levels of bright point reflectors in the given fine-grid layer ids.

    Returns (z_mm, col, db) arrays (each spot 1-3 adjacent columns) and their count."""
    mask = np.isin(idx[:, margin:margin + n_cols], layer_ids)
    area_cm2 = float(mask.sum()) * dzf * dx / 100.0
    n = int(rng.poisson(tex.specular_spots_per_cm2 * area_cm2))
    if n == 0:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(0), 0
    jz, jc = np.nonzero(mask)
    pick = rng.integers(0, jz.size, n)
    zs, cs, dbs = [], [], []
    for i in range(n):
        w = int(rng.integers(1, 4))
        db = tex.specular_spot_db + rng.uniform(-5.0, 5.0)
        for c in range(w):
            zs.append((jz[pick[i]] + 0.5) * dzf)
            cs.append(jc[pick[i]] + margin + c)
            dbs.append(db)
    return np.asarray(zs), np.asarray(cs, np.int64), np.asarray(dbs), n
