"""Layered facial phantom in image space: smooth random interfaces, per-layer scatterer maps,
specular reflectors, fat septa, muscle streaks, bone shadowing, stand-off gel, artefacts, and the
label surfaces (with the entry echo as imaged).

Depths here are *apparent* millimetres from the probe face (the scanner's 1540 m/s image space):
every layer's anatomical thickness is multiplied by ``1540 / c_layer`` before it is stacked.

The entry echo (label 1) is defined from the simulated echo: in each column, the extent over which
the *expected* envelope of the entry echo (skin-surface specular echo + epidermis scatterers +
dermo-epidermal junction echo, through the axial pulse) stays within -6 dB of its peak. The
anatomical epidermis thickness is kept in the truth.

Every layer keeps its drawn thickness. Under the deepest layer lies bone where the region has it in
view, else unmodelled generic soft tissue (acoustics ``deep_tissue``), labelled 0 (DESIGN.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import fft as sp_fft
from scipy.ndimage import gaussian_filter1d
from scipy.special import erf

from ..errors import ConfigError
from .acoustics import (C_REF, FWHM_PER_SIGMA, REF_DENSITY_PER_CELL, AcousticParams, Medium,
                        SpecularPoints, choose_up, lateral_fwhm_mm, margin_cols, padded_cols,
                        pulse_sigma_z_mm, reference_intensity, resolution_cell_mm2)
from .anatomy import Anatomy, anatomy_table, layer_acoustics
from . import textures as _tx
from .textures import Textures
from .textures import smooth_curve as _curve

__all__ = ["PhantomGeometry", "Artefacts", "build_phantom", "entry_echo_extent",
           "TISSUE_RESOLUTION_CELL_MM2"]

TISSUE_RESOLUTION_CELL_MM2 = resolution_cell_mm2(AcousticParams())
"""Resolution cell (mm^2) of the nominal 24 MHz probe, at which the table's scatterers per
resolution cell are defined (tissue densities are per mm^2 from then on)."""

_MAX_SHIFT_MM = 5.0
"""Largest probe repositioning (mm) a repeat scan may ask of `build_phantom`."""

_CV = {"epidermis": 0.10, "dermis": 0.10, "fat": 0.15, "smas": 0.15, "deep_fat": 0.18,
       "muscle": 0.10}
"""Coefficient of lateral variation of each layer's thickness across the frame (our choice)."""


@dataclass
class Artefacts:
    """Artefact settings of a frame (all our choice of magnitudes).

    lens_reverb : int
        Number of reverberation lines in the gel (0 = none), at multiples of `lens_mm`.
    lens_mm : float
    skin_reverb : bool
        Add the first multiple of the skin echo (probe face <-> skin) at twice its depth.
    hairs, bubbles : int
        Number of hair cross-sections and air bubbles in the gel (each shadows what lies below).
    """

    lens_reverb: int = 0
    lens_mm: float = 0.4
    skin_reverb: bool = False
    hairs: int = 0
    bubbles: int = 0


@dataclass
class PhantomGeometry:
    """What `build_phantom` returns besides the medium.

    Attributes
    ----------
    surfaces_rows : float64 (K+1, n_cols)
        Label surfaces (row units, entry echo as imaged) for the profile.
    anat_thickness_mm : dict[str, ndarray (n_cols,)]
        Anatomical thickness per column as drawn (the labels show it x 1540 / c unless the
        image bottom cuts the layer).
    truncated : dict[str, bool]
        Layer cut by the field of view: it runs past the image bottom in some visible column
        (bone always does where it is in view). Layers are never stretched: each keeps its drawn
        thickness.
    echo_top_mm, echo_bottom_mm, skin_mm : ndarray (n_cols,)
    extras : dict
        JSON-able description (septa count, artefacts, bone edge...).
    """

    surfaces_rows: np.ndarray
    anat_thickness_mm: dict
    truncated: dict
    echo_top_mm: np.ndarray
    echo_bottom_mm: np.ndarray
    skin_mm: np.ndarray
    extras: dict = field(default_factory=dict)
    truncated_cols: dict = field(default_factory=dict)
    """dict[str, bool ndarray (n_cols,)]: visible columns where the layer runs past the bottom."""
    deep_tissue_cols: np.ndarray | None = None
    """bool ndarray (n_cols,): columns with unmodelled deep tissue (label 0) under the deepest
    layer (no bone there and the soft layers end inside the image)."""


def _smooth_noise(rng, shape, sig_rows, sig_cols):
    """Zero-mean unit-SD Gaussian random field with Gaussian correlation (sigmas in pixels),
    periodic, made by filtering white noise in the Fourier domain (float32)."""
    w = rng.standard_normal(shape).astype(np.float32)
    f = sp_fft.rfft2(w, workers=-1)
    kz = sp_fft.fftfreq(shape[0])[:, None]
    kx = sp_fft.rfftfreq(shape[1])[None, :]
    f *= np.exp(-2.0 * math.pi ** 2 * ((sig_rows * kz) ** 2 + (sig_cols * kx) ** 2))
    out = sp_fft.irfft2(f, s=shape, workers=-1).astype(np.float32)
    sd = float(out.std())
    return out / (sd if sd > 0 else 1.0)


def _density_amp(layer: str, override: dict | None = None):
    a = dict(layer_acoustics(layer))
    if override:
        a.update(override.get(layer, {}))
    dens = a["per_cell"] / TISSUE_RESOLUTION_CELL_MM2
    if a["per_cell"] <= 0:
        return 0.0, 0.0
    amp = math.sqrt(10.0 ** (a["backscatter_db"] / 10.0) * REF_DENSITY_PER_CELL / a["per_cell"])
    return dens, amp


def _specular_amp(db: float, p: AcousticParams, dzf: float, dx: float) -> float:
    """Point amplitude such that a flat coherent line of such points (one per column) peaks at
    `db` re the reference echo rms at the focus (see `acoustics.reference_intensity`)."""
    sig = float(lateral_fwhm_mm(p.focus_mm, p)) / FWHM_PER_SIGMA
    ref = math.sqrt(reference_intensity(p, dzf, dx))
    return 10.0 ** (db / 20.0) * ref / (math.sqrt(2.0 * math.pi) * sig / dx)


def entry_echo_extent(epi_app_mm, p: AcousticParams, *, surface_db: float, dej_db: float,
                      epi_db: float):
    """-6 dB extent of the expected entry-echo envelope, relative to the skin surface.

    Parameters
    ----------
    epi_app_mm : ndarray (n,)
        Apparent epidermis thickness per column (mm).
    p : AcousticParams
    surface_db, dej_db : float
        Peak levels of the skin-surface and dermo-epidermal-junction specular echoes (dB re the
        reference echo).
    epi_db : float
        Mean backscatter of the epidermis (dB re the reference tissue).

    Returns
    -------
    top, bottom : ndarray (n,)
        Offsets (mm, top < 0) of the upper and lower -6 dB points from the skin surface.
    """
    e = np.atleast_1d(np.asarray(epi_app_mm, dtype=float))
    s = pulse_sigma_z_mm(p)
    u = np.arange(-5 * s, float(e.max()) + 5 * s, s / 20.0)
    U, E = u[None, :], e[:, None]
    t = (10 ** (surface_db / 10) * np.exp(-U ** 2 / s ** 2)
         + 10 ** (dej_db / 10) * np.exp(-(U - E) ** 2 / s ** 2)
         + 10 ** (epi_db / 10) * 0.5 * (erf(U / s) - erf((U - E) / s)))
    ok = t >= 0.25 * t.max(axis=1, keepdims=True)
    i0 = ok.argmax(axis=1)
    i1 = ok.shape[1] - 1 - ok[:, ::-1].argmax(axis=1)
    rows = np.arange(len(e))
    thr = 0.25 * t.max(axis=1)

    def interp(ia, ib):
        ta, tb = t[rows, ia], t[rows, ib]
        f = np.where(tb != ta, (thr - ta) / np.where(tb != ta, tb - ta, 1.0), 0.0)
        return u[ia] + np.clip(f, 0, 1) * (u[ib] - u[ia])

    top = interp(np.maximum(i0 - 1, 0), i0)
    bot = interp(i1, np.minimum(i1 + 1, len(u) - 1))
    return top, bot


def build_phantom(an: Anatomy, p: AcousticParams, n_rows: int, n_cols: int, spacing_mm,
                  rng: np.random.Generator, *, standoff_mm: float = 0.3, tilt_deg: float = 0.0,
                  artefacts: Artefacts | None = None, septa_per_mm2: float = 0.2,
                  roughness_mm: float = 0.02, anatomy_rng: np.random.Generator | None = None,
                  shift_mm: float = 0.0, layer_override: dict | None = None,
                  specular_override: dict | None = None, texture_db: float = 1.5,
                  textures: Textures | None = None,
                  texture_rng: np.random.Generator | None = None):
    """Build the fine-grid medium and the label surfaces of one frame.

    Parameters
    ----------
    an : Anatomy
    p : AcousticParams
    n_rows, n_cols : int
        Output image size (pixels).
    spacing_mm : (float, float)
        Output pixel spacing (axial, lateral), apparent mm.
    rng : numpy Generator
    standoff_mm : float
        Gel / stand-off pad thickness between the probe face and the skin (0-5 mm, at the centre).
    tilt_deg : float
        Probe tilt: the skin and all layers slope by this angle across the frame.
    artefacts : Artefacts, optional
    septa_per_mm2 : float
        Fibrous septa per mm^2 of fat (our choice).
    roughness_mm : float
        SD of the skin-surface undulation.
    anatomy_rng : numpy Generator, optional
        Repeat scans (`simulate_frame(..., scan_seed=...)`): the subject's geometry (skin
        undulation, lateral thickness variation, dermis-fat junction, SLEB shape, bone edge) is
        drawn from this generator over a strip wider than the frame, so that the same generator
        state gives the same anatomy whatever `rng` (texture, septa, speckle) does. None (the
        default) draws everything from `rng` in the original order.
    shift_mm : float
        Probe repositioning along the frame width (mm, |shift| <= 5), only with `anatomy_rng`:
        the frame sees the geometry strip shifted by this amount.
    layer_override : dict, optional
        ``{layer: {"backscatter_db": dB, "per_cell": n}}`` replacing the table's
        (``sim_anatomy.json`` ``acoustic``) backscatter and scatterer density of those layers
        (``--ranges wide``); attenuation and sound speed stay the table's.
    specular_override : dict, optional
        ``{interface: dB}`` replacing entries of the table's ``specular_db``.
    texture_db : float
        SD (dB) of the smooth log-amplitude tissue texture (default 1.5, our choice).
    textures : Textures, optional
        Wide-range textures (`layerseg.simulate.textures`): diffuse septa, vessels, follicles,
        uneven fascial lines, bone penetration and edge taper, specular spots; their crisp
        septa density replaces `septa_per_mm2`. None (the default) builds the medium exactly
        as before textures existed.
    texture_rng : numpy Generator, optional
        Stream the textures' placements are drawn from (needed with `textures`), so that `rng`
        draws what it always drew.

    Returns
    -------
    medium : Medium
    geometry : PhantomGeometry
    """
    art = artefacts or Artefacts()
    dz, dx = spacing_mm
    depth = n_rows * dz
    up = choose_up(p, dz)
    m = margin_cols(p, depth, dx)
    nxp = padded_cols(n_cols, m)
    nzf = n_rows * up
    dzf = dz / up
    x = (np.arange(nxp) - m + 0.5) * dx
    width = n_cols * dx
    tab = anatomy_table()
    spec = dict(tab["specular_db"])
    spec.update(specular_override or {})
    if textures is not None:
        if texture_rng is None:
            raise ConfigError("build_phantom: textures need a texture_rng")
        septa_per_mm2 = textures.crisp_septa_per_mm2
    trng = texture_rng

    # ---------------------------------------------------------------- interfaces (apparent mm)
    if anatomy_rng is None:
        grng, curve = rng, _curve
    else:
        if abs(shift_mm) > _MAX_SHIFT_MM:
            raise ConfigError(f"shift_mm must lie in -{_MAX_SHIFT_MM}..{_MAX_SHIFT_MM} mm, "
                              f"got {shift_mm}")
        grng = anatomy_rng
        pad = int(math.ceil(_MAX_SHIFT_MM / dx))
        s0 = pad + int(round(shift_mm / dx))

        def curve(_r, n, dx_, corr):
            return _curve(_r, n + 2 * pad, dx_, corr)[s0:s0 + n]
    ramp = math.tan(math.radians(tilt_deg)) * (x - width / 2)
    skin = standoff_mm + ramp + roughness_mm * curve(grng, nxp, dx, 0.8)
    skin += max(0.0, 0.03 - float(skin.min()))
    layers = list(an.profile)
    K = len(layers)
    soft = [ly for ly in layers if ly != "bone"]
    anat = {}
    app = {}
    for ly in soft:
        mean = an.thickness_mm.get(ly, 0.0)
        th = mean * np.clip(1.0 + _CV[ly] * curve(grng, nxp, dx, grng.uniform(2.5, 6.0)),
                            0.3, 2.0)
        anat[ly] = th
        app[ly] = th * C_REF / layer_acoustics(ly)["sound_speed_m_s"]
    # the dermis-fat junction is irregular (fat lobules indent the dermis): small-scale roughness
    # moved from the dermis into the fat (our choice: SD 0.05 mm, correlation 0.25 mm)
    if "fat" in app:
        bump = 0.05 * curve(grng, nxp, dx, 0.25)
        bump = np.clip(bump, -0.5 * app["dermis"], 0.8 * app["fat"])
        app["dermis"] = app["dermis"] + bump
        app["fat"] = np.maximum(app["fat"] - bump, 0.0)
        anat["dermis"] = app["dermis"] * layer_acoustics("dermis")["sound_speed_m_s"] / C_REF
        anat["fat"] = app["fat"] * layer_acoustics("fat")["sound_speed_m_s"] / C_REF
    S = np.zeros((K + 1, nxp))
    S[0] = skin
    for k, ly in enumerate(layers):
        S[k + 1] = S[k] + (app[ly] if ly != "bone" else 0.0)
    # bone: its surface is the bottom of the soft layers (the layers' own lateral variation shapes
    # it); a partial bone ends at an edge, beyond which it is out of view (our choice). Every soft
    # layer keeps its drawn thickness: none is stretched down to the bone or the image bottom.
    # Below the soft layers, where there is no bone, lies unmodelled deep soft tissue (label 0).
    kb = layers.index("bone")
    extras = {}
    bone_here = np.full(nxp, bool(an.bone_present))
    bone_edge = None
    if an.bone_present and an.bone_partial:
        xe = grng.uniform(0.2, 0.8) * width - (shift_mm if anatomy_rng is not None else 0.0)
        side = 1.0 if grng.random() < 0.5 else -1.0
        bone_here = side * (x - xe) < 0.0
        bone_edge = (float(xe), side)
        extras["bone_edge_mm"] = float(xe)
    soft_bottom = S[kb].copy()
    S[kb + 1] = np.where(bone_here, np.maximum(depth, soft_bottom), soft_bottom)
    vis = slice(m, m + n_cols)
    # a layer is truncated by the field of view where it runs past the image bottom
    trunc_cols = {}
    for k, ly in enumerate(layers):
        th = S[k + 1, vis] - S[k, vis]
        trunc_cols[ly] = (th > 0) & (S[k + 1, vis] > depth)
    trunc_cols["bone"] = bone_here[vis] & (soft_bottom[vis] < depth)  # bone never ends in view
    trunc = {ly: bool(v.any()) for ly, v in trunc_cols.items()}
    below = (~bone_here) & (soft_bottom < depth)
    extras["deep_tissue_fraction"] = float(np.mean(below[vis]))
    S = np.minimum(np.maximum.accumulate(np.clip(S, 0.0, depth), axis=0), depth)

    # ---------------------------------------------------------------- entry echo (label 1)
    epi_app = app["epidermis"]
    top, bot = entry_echo_extent(epi_app, p, surface_db=spec["skin_surface"],
                                 dej_db=spec["dej"],
                                 epi_db=layer_acoustics("epidermis")["backscatter_db"])
    echo_top = np.clip(skin + top, 0.0, depth)
    echo_bot = np.clip(skin + bot, 0.0, depth)
    L = S.copy()
    L[0] = echo_top
    L[1] = np.minimum(np.maximum(echo_bot, echo_top), S[2])
    L = np.maximum.accumulate(L, axis=0)
    surfaces_rows = np.clip(L[:, m:m + n_cols] / dz, 0.0, float(n_rows))

    # ---------------------------------------------------------------- fine-grid medium
    z = (np.arange(nzf) + 0.5) * dzf
    idx = np.zeros((nzf, nxp), np.int16)
    for k in range(K):
        inside = (z[:, None] >= S[k][None, :]) & (z[:, None] < S[k + 1][None, :])
        idx[inside] = k + 1
    # unmodelled deep soft tissue under the deepest layer where there is no bone (label 0)
    idx[(z[:, None] >= S[K][None, :]) & ~bone_here[None, :]] = K + 1
    names = ["gel"] + layers + ["deep_tissue"]
    dens_t = np.zeros(K + 2, np.float32)
    amp_t = np.zeros(K + 2, np.float32)
    att_t = np.zeros(K + 2, np.float32)
    for i, ly in enumerate(names):
        a = layer_acoustics(ly)
        dens_t[i], amp_t[i] = _density_amp(ly, layer_override)
        att_t[i] = a["atten_db_cm_mhz"] * a["sound_speed_m_s"] / C_REF
    if textures is not None:   # partial penetration of the bone
        att_t[kb + 1] *= textures.bone_atten_scale
    density = dens_t[idx]
    amp_db = np.zeros((nzf, nxp), np.float32)
    atten = att_t[idx]
    # tissue texture: smooth log-amplitude field (collagen bundles, lobules), 1.5 dB SD (ours)
    tex = np.repeat(texture_db * _smooth_noise(rng, (n_rows, nxp), 0.05 / dz, 0.1 / dx), up, axis=0)
    amp_db += tex
    zz = z[:, None]
    # dermis: upper/lower echo ratio and SLEB
    kd = layers.index("dermis") + 1
    d_top, d_bot = S[1], S[2]
    frac = np.clip((zz - d_top) / np.maximum(d_bot - d_top, 1e-6), 0, 1)
    amp_db += np.where(idx == kd, an.upper_lower_dermis_db * (0.5 - frac) * 2.0, 0.0)
    sleb_shape = np.clip(1 + 0.3 * curve(grng, nxp, dx, 2.0), 0.2, 2.0)  # drawn always: the
    # random stream after this point does not depend on the SLEB's presence
    if an.sleb_mm > 0:
        sleb_app = an.sleb_mm * C_REF / layer_acoustics("dermis")["sound_speed_m_s"]
        sl = sleb_app * sleb_shape
        in_sleb = (idx == kd) & (zz < d_top + sl[None, :])
        amp_db[in_sleb] += tab["aging"]["sleb"]["backscatter_db"]
        extras["sleb_apparent_mm"] = float(np.mean(sl[m:m + n_cols]))
    # muscle streaks (perimysium): laterally elongated bright streaks, +7 dB (ours)
    if "muscle" in layers:
        km = layers.index("muscle") + 1
        st = np.repeat(_smooth_noise(rng, (n_rows, nxp), 0.015 / dz, 0.6 / dx), up, axis=0)
        amp_db += np.where((idx == km) & (st > 1.2), 7.0, 0.0).astype(np.float32)
        amp_db += np.where(idx == km, 2.0 * st, 0.0).astype(np.float32)
    amplitude = (amp_t[idx] * 10.0 ** (amp_db / 20.0)).astype(np.float32)
    # fat septa: thin oblique dense bright bands inside fat and deep fat
    fat_ids = [layers.index(f) + 1 for f in ("fat", "deep_fat") if f in layers]
    fat_mask = np.isin(idx, fat_ids)
    area = float(fat_mask.sum()) * dzf * dx
    n_sep = rng.poisson(septa_per_mm2 * area)
    sep_dens, sep_amp = _density_amp("smas", layer_override)
    # septa: dense fibrous bands (5x the SMAS scatterer density, same backscatter + 3 dB), so a
    # thin septum images as a continuous line rather than a chain of dots (our choice)
    sep_amp *= 10 ** (3.0 / 20) / math.sqrt(5.0)
    sep_dens *= 5.0
    if n_sep:
        fz, fx = np.nonzero(fat_mask)
        pick = rng.integers(0, fz.size, n_sep)
        for i in range(n_sep):
            z0, x0 = (fz[pick[i]] + 0.5) * dzf, x[fx[pick[i]]]
            ang = math.radians(rng.uniform(15, 65)) * (1 if rng.random() < 0.5 else -1)
            length = rng.uniform(0.4, 2.5)
            bend = rng.normal(0, 0.25)
            t_ = np.linspace(-length / 2, length / 2, int(length / (0.5 * min(dzf, dx))) + 2)
            wav = 0.04 * _curve(rng, t_.size, 0.5 * min(dzf, dx), 0.15)
            px = x0 + t_ * math.cos(ang) - wav * math.sin(ang)
            pz = z0 + t_ * math.sin(ang) + wav * math.cos(ang) + bend * (t_ ** 2 - length ** 2 / 12)
            thick = rng.uniform(0.015, 0.04)
            s_amp = sep_amp * 10 ** (rng.uniform(-8.0, 2.0) / 20)
            for off in np.arange(-thick / 2, thick / 2 + 1e-9, dzf):
                jj = np.floor((pz + off) / dzf).astype(int)
                cc = np.floor(px / dx + m).astype(int)
                ok = (jj >= 0) & (jj < nzf) & (cc >= 0) & (cc < nxp)
                jj, cc = jj[ok], cc[ok]
                keep = fat_mask[jj, cc]
                density[jj[keep], cc[keep]] = sep_dens
                amplitude[jj[keep], cc[keep]] = s_amp
        extras["septa"] = int(n_sep)
    bone_fade = None        # (nxp,) a partial bone's thinning towards its edge, or None
    if textures is not None:
        if bone_edge is not None and textures.bone_edge_taper_mm > 0:
            bone_fade = _tx.bone_edge_factor(x, bone_edge[0], bone_edge[1],
                                             textures.bone_edge_taper_mm)
        _add_textures(textures, trng, density, amplitude, atten, idx, S, layers, x, dzf, dx, m,
                      n_cols, skin + epi_app, kb, bone_fade, extras)

    # ---------------------------------------------------------------- specular reflectors
    sp = SpecularPoints()
    cols = np.arange(nxp)

    def line(zs, db, sel=None, jitter=0.15, uneven=False, weight=None):
        a = _specular_amp(db, p, dzf, dx) * np.clip(1 + jitter * rng.standard_normal(nxp), 0.2, 2)
        if uneven and textures is not None:   # brightness wander and gaps along a fascia
            a = a * _tx.line_weights(trng, nxp, dx, textures)
        if weight is not None:
            a = a * weight
        # specular reflection back to the probe weakens with the interface's tilt: cos^2 of the
        # slope angle (our choice), on top of the phase cancellation the IQ former produces
        zf = np.where(np.isfinite(zs), zs, 0.0)
        a = a / (1.0 + (np.gradient(zf) / dx) ** 2)
        ok = np.isfinite(zs) & (zs < depth)
        if sel is not None:
            ok &= sel
        sp.add(zs[ok], cols[ok], a[ok])
        # steep segments: fill the depth gap between neighbouring columns (no dashed edges)
        pair = ok[:-1] & ok[1:]
        dzs = np.diff(zs)
        n = np.where(pair, np.floor(np.abs(dzs) / dzf), 0).astype(np.int64)
        if n.sum():
            c0 = np.repeat(np.arange(nxp - 1), n)
            k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + 1
            f = k / (np.repeat(n, n) + 1.0)
            sp.add(zs[c0] + f * dzs[c0], c0 + (f >= 0.5), a[c0] * dzf / np.maximum(np.abs(dzs[c0]), dzf))

    line(skin, spec["skin_surface"], jitter=0.08)
    line(skin + epi_app, spec["dej"])
    if "smas" in layers:
        ks = layers.index("smas")
        has = S[ks + 1] > S[ks]
        line(S[ks], spec["smas"], has, uneven=True)
        line(S[ks + 1], spec["smas"] - 3, has, uneven=True)
    if "muscle" in layers:
        kmu = layers.index("muscle")
        line(S[kmu], spec["fascia"], S[kmu + 1] > S[kmu], uneven=True)
    if an.bone_present:
        line(S[kb], spec["periosteum"], S[kb + 1] > S[kb], jitter=0.1, uneven=True,
             weight=None if bone_fade is None else np.sqrt(bone_fade))
    # fascial plane between the deepest layer and the unmodelled tissue below it
    line(S[K], spec["deep_fascia"], (~bone_here) & (S[K] > S[1]), jitter=0.2, uneven=True)
    if textures is not None:
        zs, cs, dbs, n_spots = _tx.specular_spots(
            idx, [layers.index(ly) + 1 for ly in ("dermis", "fat", "deep_fat") if ly in layers],
            x, dzf, dx, m, n_cols, textures, trng)
        if n_spots:
            sp.add(zs, cs, np.array([_specular_amp(d, p, dzf, dx) for d in dbs]))
        extras["specular_spots"] = int(n_spots)
    # artefacts in the gel
    gel_top = 0.0
    if art.lens_reverb:
        for n in range(1, art.lens_reverb + 1):
            zr = np.full(nxp, n * art.lens_mm)
            line(zr, -6.0 - 8.0 * (n - 1), zr < skin - 0.05, jitter=0.05)
    if art.skin_reverb:
        line(2 * skin, spec["skin_surface"] - 26.0, jitter=0.1)
        sp.amp[-1] = sp.amp[-1] * _unattenuate(atten, sp.z_mm[-1], sp.col[-1], dzf, p)
    for kind, count in (("hair", art.hairs), ("bubble", art.bubbles)):
        for _ in range(count):
            gap = skin - gel_top
            cx = int(rng.integers(m, m + n_cols))
            if gap[cx] < 0.15:
                continue
            r = rng.uniform(0.03, 0.05) if kind == "hair" else rng.uniform(0.05, 0.2)
            zc = gel_top + rng.uniform(r + 0.02, max(r + 0.03, gap[cx] - r - 0.02))
            xs = x[cx] + np.linspace(-r, r, max(3, int(2 * r / dx) + 1))
            cc = np.clip(np.round(xs / dx + m - 0.5).astype(int), 0, nxp - 1)
            ztop = zc - np.sqrt(np.maximum(r ** 2 - (xs - x[cx]) ** 2, 0))
            sp.add(ztop, cc, _specular_amp(18.0 if kind == "hair" else 24.0, p, dzf, dx))
            # shadow: a thin row of strong attenuation under the object
            extra_db = (12.0 if kind == "hair" else 30.0)  # one-way, at f0 (ours)
            jz = min(nzf - 1, int((zc + r) / dzf))
            atten[jz, cc] += extra_db / (p.frequency_mhz * dzf / 10.0)
            if kind == "bubble":  # ring-down (comet tail) under the bubble, unattenuated
                for n in range(1, 5):
                    zt = np.full(cc.size, zc + r + n * 2 * r)
                    a = _specular_amp(12.0 - 5 * n, p, dzf, dx) * np.ones(cc.size)
                    sp.add(zt, cc, a)
        extras[kind + "s"] = int(count)
    extras.update(standoff_mm=float(standoff_mm), tilt_deg=float(tilt_deg),
                  lens_reverb=int(art.lens_reverb), skin_reverb=bool(art.skin_reverb))

    med = Medium(density.astype(np.float32), amplitude.astype(np.float32),
                 atten.astype(np.float32), sp, dzf, dx, m, up, n_cols)
    geo = PhantomGeometry(surfaces_rows, {ly: anat[ly][m:m + n_cols] for ly in soft}, trunc,
                          echo_top[m:m + n_cols], echo_bot[m:m + n_cols], skin[m:m + n_cols],
                          extras, trunc_cols, below[vis])
    return med, geo


def _add_textures(tex, trng, density, amplitude, atten, idx, S, layers, x, dzf, dx, m, n_cols,
                  dej, kb, bone_fade, extras):
    """Diffuse septa, vessels, follicles and the bone edge taper (`layerseg.simulate.textures`),
    in place on the fine-grid maps; what was placed goes into `extras`. `bone_fade` (nxp,) scales
    the bone's attenuation towards a partial bone's edge (None: no taper)."""
    fat_k = [layers.index(f) for f in ("fat", "deep_fat") if f in layers]
    # septa: fibrous scatterers at twice the SMAS's density, at the level each septum draws
    per_cell = 2.0 * layer_acoustics("smas")["per_cell"]

    def septum(db):
        return _density_amp("smas", {"smas": {"backscatter_db": db, "per_cell": per_cell}})

    extras["diffuse_septa"] = _tx.add_diffuse_septa(density, amplitude, idx, S, fat_k, x, dzf,
                                                    dx, m, tex, trng, septum(0.0)[0],
                                                    lambda db: septum(db)[1])
    kd = layers.index("dermis")
    extras["vessels"] = _tx.add_vessels(amplitude, atten, idx, S, kd, fat_k, x, dzf, dx, m,
                                        n_cols, tex, trng)
    extras["follicles"] = _tx.add_follicles(amplitude, idx, kd, dej, S[kd + 1], x, dzf, dx, m,
                                            n_cols, tex, trng)
    if bone_fade is not None:
        inb = idx == kb + 1
        atten[inb] = (atten * bone_fade[None, :].astype(np.float32))[inb]
    extras["textures"] = tex.describe()


def _unattenuate(atten, z_mm, col, dzf, p):
    """Factor that undoes the tissue attenuation the IQ former will apply at (z, col), for
    reflectors whose path runs through the gel only (reverberations)."""
    from .acoustics import db_cm_mhz_to_np_mm_mhz, sigma_f_mhz
    a = 2.0 * np.cumsum(db_cm_mhz_to_np_mm_mhz(atten.astype(np.float64)) * dzf, axis=0)
    j = np.clip((np.asarray(z_mm) / dzf).astype(int), 0, atten.shape[0] - 1)
    aa = a[j, np.asarray(col)]
    sf = sigma_f_mhz(p)
    return np.exp(aa * p.frequency_mhz - 0.5 * (aa * sf) ** 2)
