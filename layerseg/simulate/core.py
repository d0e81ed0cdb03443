"""`simulate_frame`: one simulated 24 MHz facial frame with its exact truth.

Pipeline: anatomy (region, sex, age) -> layered phantom in image space (apparent depth at
1540 m/s) -> scatterers + specular reflectors -> depth-dependent PSF convolution (IQ) -> noise,
TGC -> envelope -> log compression -> grey frame; label map from the label surfaces with
`layerseg.layers.surfaces_to_labels`; optional elastography from `layerseg.simulate.elasto`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..errors import ConfigError
from ..frame import Frame, FrameMeta
from ..layers import get_profile, surfaces_to_labels
from .acoustics import (C_REF, AcousticParams, axial_fwhm_mm, form_iq, iq_to_display,
                        lateral_fwhm_mm, resolution_cell_mm2)
from .anatomy import anatomy_table, draw_anatomy, layer_acoustics
from .phantom import TISSUE_RESOLUTION_CELL_MM2, Artefacts, build_phantom
from .textures import Textures
from .ranges import RANGES, child_rng, draw_wide

__all__ = ["SimulatedFrame", "simulate_frame", "iq_to_rf", "DEVICE", "DEFAULT_SHAPE", "DEFAULT_DEPTH_MM",
           "DEFAULT_WIDTH_MM", "check_field"]

DEVICE = "layerseg-sim"
DEFAULT_SHAPE = (512, 512)
DEFAULT_DEPTH_MM = 12.0
DEFAULT_WIDTH_MM = 12.8


@dataclass
class SimulatedFrame:
    """A simulated frame and its truth.

    Attributes
    ----------
    frame : Frame
        Display B-mode (grey 0-255 float32), spacing, dynamic range, optional elastography,
        meta (region, frequency, device ``layerseg-sim``, calibration ``simulator``).
    labels : uint8 ndarray (rows, cols)
        Label map 0-7 obeying the region profile.
    truth : dict
        JSON-able ground truth (see `simulate_frame`).
    iq : complex64 ndarray (rows * up, cols) or None
        Beamformed IQ at baseband (f0) on the fine axial grid, before TGC, when asked.
    rf : float32 ndarray (samples, cols) or None
        RF lines after TGC and gain, as a scanner digitises them (sampling rate
        ``truth['acoustics']['rf_fs_mhz']``, sample k at depth ``(k + 0.5 k_up) c / (2 fs)``,
        i.e. offset by half a fine IQ step), when asked.
    """

    frame: Frame
    labels: np.ndarray
    truth: dict
    iq: np.ndarray | None = None
    rf: np.ndarray | None = None


def _rng(seed_or_rng) -> tuple[np.random.Generator, Any]:
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng, None
    if isinstance(seed_or_rng, np.random.SeedSequence):
        return (np.random.default_rng(seed_or_rng),
                {"entropy": int(seed_or_rng.entropy), "spawn_key": list(seed_or_rng.spawn_key)})
    if isinstance(seed_or_rng, (int, np.integer)) and not isinstance(seed_or_rng, bool):
        return np.random.default_rng(int(seed_or_rng)), int(seed_or_rng)
    raise ConfigError(f"seed_or_rng must be an int, a SeedSequence or a numpy Generator, got "
                      f"{type(seed_or_rng).__name__}")


def _pick(value, vary, draw, nominal):
    if value is not None:
        return value
    return draw() if vary else nominal


def check_field(shape=DEFAULT_SHAPE, depth_mm: float = DEFAULT_DEPTH_MM,
                width_mm: float = DEFAULT_WIDTH_MM) -> tuple[int, int]:
    """Check a simulated frame's size and field of view.

    Parameters
    ----------
    shape : (int, int)
        Rows and columns, at least 16 each.
    depth_mm, width_mm : float
        Field depth and width, 2-40 mm each.

    Returns
    -------
    (int, int)
        Rows and columns.

    Raises
    ------
    ConfigError
        Either out of range.
    """
    try:
        n_rows, n_cols = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"shape must be two pixel counts (rows, cols), got {shape!r}") from None
    if n_rows < 16 or n_cols < 16:
        raise ConfigError(f"shape must be at least 16 x 16 pixels, got {shape}")
    if not (2.0 <= depth_mm <= 40.0 and 2.0 <= width_mm <= 40.0):
        raise ConfigError(f"depth_mm and width_mm must lie in 2-40 mm, got {depth_mm}, {width_mm}")
    return n_rows, n_cols


def simulate_frame(seed_or_rng, *, region: str | None = "cheek", age: float = 45,
                   sex: str = "F", frequency_mhz: float | None = None,
                   shape: tuple[int, int] = DEFAULT_SHAPE, depth_mm: float = DEFAULT_DEPTH_MM,
                   width_mm: float = DEFAULT_WIDTH_MM, vary: bool = True,
                   gain_db: float | None = None, dynamic_range_db: float | None = None,
                   tgc: bool = True, tgc_db_cm_mhz: float | None = None,
                   focus_mm: float | None = None, f_number: float | None = None,
                   fractional_bandwidth: float | None = None, noise_db: float | None = None,
                   tilt_deg: float | None = None, standoff_mm: float | None = None,
                   artefacts: Artefacts | None = None, missing_muscle: bool | None = None,
                   missing_deep_fat: bool | None = None, bone: bool | None = None,
                   partial_bone: bool | None = None, with_elasto: bool = True,
                   elasto_kind: str = "swe_kpa", return_iq: bool = False,
                   return_rf: bool = False, scan_seed: int | None = None,
                   shift_mm: float = 0.0, compression: float = 0.0,
                   thickness_change_mm: dict | None = None,
                   ranges: str = "default", anatomy: str = "default") -> SimulatedFrame:
    """Simulate one facial HFUS frame with exact ground truth.

    Parameters
    ----------
    seed_or_rng : int, SeedSequence or numpy Generator
        All randomness comes from it: same seed, same bytes.
    region : str or None
        Facial region or alias (``forehead``, ``temple``, ``zygoma``, ``cheek``, ``nasolabial``,
        ``chin``, ``jaw``; None / ``default`` draws cheek anatomy with the default profile).
    age : float
        Years (10-100).
    sex : {'F', 'M'}
    frequency_mhz : float or None
        Transmit centre frequency, 15-50 MHz; None: 24 MHz with ``ranges='default'``, drawn
        with any other range set (``wide``, ``wide_faint``).
    shape : (rows, cols)
        Output pixel grid; with `depth_mm` and `width_mm` it sets the spacing (default 512 x 512
        over 12 mm x 12.8 mm: 0.0234 x 0.025 mm per pixel).
    vary : bool
        Draw every setting left as None from its variation range (a model must survive them);
        False uses the nominal value. Ranges and nominal values (our choice): gain -6..6 (0) dB,
        dynamic range 50-70 (60) dB, TGC slope 0.3-0.6 (0.5) dB/cm/MHz from the skin surface, focus 1.5-5 (3) mm under
        the skin, F-number 1.8-3 (2), fractional bandwidth 0.5-0.75 (0.6), noise -67..-59 (-63)
        dB, tilt -8..8 (0) degrees, stand-off 0.1-5 (0.3) mm (60 % under 0.8 mm), artefacts (none).
    gain_db, dynamic_range_db, tgc, tgc_db_cm_mhz, focus_mm, f_number, fractional_bandwidth, noise_db
        Imaging settings (see `layerseg.simulate.acoustics.AcousticParams`; `focus_mm` is from the
        probe face).
    tilt_deg, standoff_mm, artefacts
        Probe tilt, gel/pad thickness and gel artefacts (`Artefacts`).
    missing_muscle, missing_deep_fat, bone, partial_bone : bool or None
        Force anatomy variations; None draws them from the region's table.
    with_elasto : bool
        Attach an elastography map (`elasto_kind` ``swe_kpa`` or ``strain``).
    return_iq, return_rf : bool
        Also return the IQ (fine grid) and/or RF lines.
    scan_seed : int, optional
        Repeat scans of one subject. None (the default) draws everything from `seed_or_rng` as
        always. Given, `seed_or_rng` fixes the subject (the anatomy: thicknesses, layer presence,
        SLEB, the lateral shape of every surface, bone edge, stiffness) and `scan_seed` draws the
        scan: settings left as None (when `vary`), gel artefacts, tissue texture, fat septa,
        speckle and elastography noise. Two calls with the same `seed_or_rng` and different
        `scan_seed` are two scans of the same subject and site.
    shift_mm : float
        Probe repositioning along the frame width, mm (|shift| <= 5); only with `scan_seed`.
    compression : float
        Probe pressure: fraction (-0.2..0.2) by which the compressible layers (fat, deep fat) are
        thinned; only with `scan_seed`.
    thickness_change_mm : dict, optional
        ``{layer: mm}`` added to the drawn mean anatomical thickness of present layers (a set
        anatomical change between visits; the result is kept >= 0.01 mm); only with
        `scan_seed`.
    ranges : {'default', 'wide', 'wide_faint'}
        ``default``: the settings above (same seed, same bytes as before ranges existed).
        ``wide`` (needs `vary`): the probe, display chain and per-layer echogenicity are drawn
        per frame from ``layerseg/data/sim_ranges.json`` (`layerseg.simulate.ranges`): centre
        frequency, bandwidth, F-number, focus, noise, TGC, gain, dynamic range, grey map, each
        layer's backscatter and scatterer density, interface echoes and texture; the drawn
        gain is offset by ``probe_gain_db = -10 log10(cell / cell_24MHz)`` (resolution cell
        areas at the focus) as a scanner preset would. Settings passed explicitly (not None)
        still win. Anatomy, stand-off, tilt and artefacts are drawn
        as in ``default``. ``wide_faint`` (needs `vary`): ``wide`` with the superficial fat
        1-8 dB darker than the dermis (a faint dermis-fat junction).
    anatomy : {'default', 'varied', 'decoupled'}
        ``default``: the region's anatomy table. ``varied``: layer presence (deep fat, muscle,
        bone) and per-layer thickness factors from the table's ``variants``; ``decoupled``:
        that presence, and each layer's thickness drawn from one range for every region (see
        `layerseg.simulate.anatomy.draw_anatomy`). Both for training and robustness sets;
        truth records the variant under ``anatomy_variant``.

    Returns
    -------
    SimulatedFrame
        ``truth`` holds: ``seed``, ``region``, ``age``, ``sex``, ``profile``, ``layers`` (per
        layer: ``thickness_anatomical_mm`` (mean over columns, as drawn),
        ``thickness_apparent_mm`` (mean over columns of the label surfaces' difference),
        ``thickness_apparent_drawn_mm`` (mean of the drawn thickness at 1540 m/s, also where the
        image cuts the layer), ``present_fraction``, ``sound_speed_m_s``, ``truncated`` (=
        ``truncated_by_fov``: the layer runs past the image bottom in some column; its label
        thickness is then a lower bound), ``truncated_fraction`` (of columns),
        ``stiffness_kpa``); every layer keeps its drawn thickness, and ``deep_tissue`` describes
        the unmodelled tissue (label 0) under the deepest layer where no bone is in view,
        ``surfaces_rows`` ((K+1) x cols label surfaces), ``epidermis_anatomical_mm``,
        ``sleb`` (present, anatomical thickness), ``upper_lower_dermis_db``, ``acoustics`` (all
        settings and derived pulse/beam sizes), ``phantom`` (stand-off, tilt, artefacts...),
        ``entry_echo`` (definition), ``elasto`` (info from the elastography module),
        ``ranges`` (``name``; with a drawn set, ``wide`` or ``wide_faint``, also ``drawn``: every
        value drawn from the ranges file, before explicit settings override them).
    """
    rng, seed_repr = _rng(seed_or_rng)
    anat_rng = None
    if scan_seed is not None:
        anat_rng = rng
        rng = np.random.default_rng(int(scan_seed))
    elif shift_mm or compression or thickness_change_mm:
        raise ConfigError("shift_mm, compression and thickness_change_mm need scan_seed")
    if not (-0.2 <= compression <= 0.2):
        raise ConfigError(f"compression must lie in -0.2..0.2, got {compression}")
    n_rows, n_cols = check_field(shape, depth_mm, width_mm)
    if elasto_kind not in ("swe_kpa", "strain"):
        raise ConfigError(f"elasto_kind must be 'swe_kpa' or 'strain', got {elasto_kind!r}")
    spacing = (depth_mm / n_rows, width_mm / n_cols)
    prof = get_profile(region)
    if ranges not in RANGES:
        raise ConfigError(f"ranges must be one of {RANGES}, got {ranges!r}")
    wide = None
    if ranges != "default":
        if not vary:
            raise ConfigError(f"ranges={ranges!r} draws settings per frame; it needs vary=True")
        # a repeat scan (scan_seed) keeps the subject's scanner, display chain and tissue
        # backscatter: they come from a child stream of the subject's seed, which leaves the
        # subject's anatomy stream as it is; a first scan draws them as before
        wide = draw_wide(rng if anat_rng is None else child_rng(anat_rng), ranges)
        wa = wide["acoustics"]
        frequency_mhz = wa["frequency_mhz"] if frequency_mhz is None else frequency_mhz
        fractional_bandwidth = _pick(fractional_bandwidth, False, None, wa["fractional_bandwidth"])
        f_number = _pick(f_number, False, None, wa["f_number"])
        noise_db = _pick(noise_db, False, None, wa["noise_db"])
        tgc_db_cm_mhz = _pick(tgc_db_cm_mhz, False, None, wa["tgc_db_cm_mhz"])
        if gain_db is None:
            # the operator's gain follows the probe: tissue of fixed scatterers per mm^2 shows
            # 10 log10(cell / cell_24MHz) dB brighter through a larger resolution cell (the
            # echo sums more scatterers), which a scanner's preset gain takes back
            probe = AcousticParams(frequency_mhz=float(frequency_mhz),
                                   fractional_bandwidth=float(fractional_bandwidth),
                                   f_number=float(f_number))
            wide["probe_gain_db"] = -10.0 * math.log10(
                resolution_cell_mm2(probe) / TISSUE_RESOLUTION_CELL_MM2)
            gain_db = wa["gain_db"] + wide["probe_gain_db"]
        dynamic_range_db = _pick(dynamic_range_db, False, None, wa["dynamic_range_db"])
    if frequency_mhz is None:
        frequency_mhz = 24.0
    tex = None if wide is None else Textures.from_drawn(wide.get("textures", {}))
    u = rng.uniform

    def draw_standoff():
        r = rng.random()
        return u(0.1, 0.8) if r < 0.6 else (u(0.8, 2.5) if r < 0.9 else u(2.5, 5.0))

    standoff = float(_pick(standoff_mm, vary, draw_standoff, 0.3))
    if not (0.0 <= standoff <= 5.0):
        raise ConfigError(f"standoff_mm must lie in 0-5 mm, got {standoff}")
    params = AcousticParams(
        frequency_mhz=float(frequency_mhz),
        fractional_bandwidth=float(_pick(fractional_bandwidth, vary, lambda: u(0.5, 0.75), 0.6)),
        f_number=float(_pick(f_number, vary, lambda: u(1.8, 3.0), 2.0)),
        focus_mm=float(_pick(focus_mm, vary and wide is None, lambda: standoff + u(1.5, 5.0),
                             standoff + (3.0 if wide is None
                                         else wide["acoustics"]["focus_below_skin_mm"]))),
        noise_db=float(_pick(noise_db, vary, lambda: u(-67, -59), -63.0)),
        tgc=bool(tgc),
        tgc_db_cm_mhz=float(_pick(tgc_db_cm_mhz, vary, lambda: u(0.3, 0.6), 0.5)),
        tgc_start_mm=standoff,
        gain_db=float(_pick(gain_db, vary, lambda: u(-6, 6), 0.0)),
        dynamic_range_db=float(_pick(dynamic_range_db, vary, lambda: u(50, 70), 60.0)),
        display_gamma=1.0 if wide is None else float(wide["acoustics"]["display_gamma"]),
        tgc_max_db=None if wide is None else float(wide["acoustics"]["tgc_max_db"]),
        sidelobe_db=None if tex is None else tex.sidelobe_db,
        sidelobe_width=5.0 if tex is None else tex.sidelobe_width)
    tilt = float(_pick(tilt_deg, vary, lambda: u(-8, 8), 0.0))
    if not (-30.0 <= tilt <= 30.0):
        raise ConfigError(f"tilt_deg must lie in -30..30 degrees, got {tilt}")
    if artefacts is None:
        if vary:
            artefacts = Artefacts(
                lens_reverb=int(rng.integers(1, 4)) if rng.random() < 0.4 else 0,
                lens_mm=float(u(0.3, 0.6)),
                skin_reverb=bool(standoff > 1.0 and rng.random() < 0.3),
                hairs=int(rng.integers(1, 3)) if rng.random() < 0.15 else 0,
                bubbles=int(rng.integers(1, 3)) if rng.random() < 0.15 else 0)
        else:
            artefacts = Artefacts()

    an = draw_anatomy(region, age, sex, anat_rng if anat_rng is not None else rng,
                      missing_muscle=missing_muscle, missing_deep_fat=missing_deep_fat,
                      bone=bone, partial_bone=partial_bone, variant=anatomy)
    if anat_rng is not None:
        for ly, dmm in (thickness_change_mm or {}).items():
            if ly not in an.thickness_mm:
                raise ConfigError(f"thickness_change_mm: {ly!r} is not a soft layer of the "
                                  f"{an.region} profile")
            if an.thickness_mm[ly] > 0:
                an.thickness_mm[ly] = max(0.01, an.thickness_mm[ly] + float(dmm))
        for ly in ("fat", "deep_fat"):
            if ly in an.thickness_mm:
                an.thickness_mm[ly] *= 1.0 - float(compression)
    over = {} if wide is None else dict(layer_override=wide["layers"],
                                        specular_override=wide["specular_db"],
                                        texture_db=wide["texture_db"], textures=tex,
                                        texture_rng=child_rng(rng))
    med, geo = build_phantom(an, params, n_rows, n_cols, spacing, rng, standoff_mm=standoff,
                             tilt_deg=tilt, artefacts=artefacts, anatomy_rng=anat_rng,
                             shift_mm=float(shift_mm), **over)
    res = form_iq(med, params, rng)
    envelope = res.envelope
    smooth_px = None
    if wide is not None and wide["display"].get("envelope_smoothing", 0.0) > 0:
        # the scanner's post-detection low-pass (sim_ranges.json 'display')
        f = float(wide["display"]["envelope_smoothing"])
        smooth_px = (f * axial_fwhm_mm(params) / spacing[0],
                     f * float(lateral_fwhm_mm(params.focus_mm, params)) / spacing[1])
        envelope = ndi.gaussian_filter(envelope.astype(np.float64), smooth_px,
                                       mode="nearest").astype(np.float32)
    grey = iq_to_display(envelope, params)
    labels = surfaces_to_labels(geo.surfaces_rows, prof, n_rows).astype(np.uint8)

    # ------------------------------------------------------------------ truth
    dz, dx = spacing
    S = geo.surfaces_rows
    layers_truth: dict[str, dict] = {}
    for k, ly in enumerate(prof.layers):
        th_rows = S[k + 1] - S[k]
        d = {"thickness_apparent_mm": float(th_rows.mean() * dz),
             "present_fraction": float(np.mean(th_rows > 0)),
             "sound_speed_m_s": float(layer_acoustics(ly)["sound_speed_m_s"]),
             "truncated": bool(geo.truncated.get(ly, False))}
        tc = geo.truncated_cols.get(ly)
        d["truncated_by_fov"] = d["truncated"]
        d["truncated_fraction"] = float(np.mean(tc)) if tc is not None else 0.0
        if ly in geo.anat_thickness_mm:
            d["thickness_anatomical_mm"] = float(np.mean(geo.anat_thickness_mm[ly]))
            d["thickness_apparent_drawn_mm"] = float(np.mean(
                geo.anat_thickness_mm[ly] * C_REF / d["sound_speed_m_s"]))
        else:
            d["thickness_anatomical_mm"] = None
            d["thickness_apparent_drawn_mm"] = None
        layers_truth[ly] = d
    layers_truth["epidermis"]["definition"] = (
        "apparent = -6 dB extent of the expected entry-echo envelope; anatomical = epidermis")
    layers_truth["dermis"]["definition"] = (
        "apparent = from the entry echo's lower -6 dB point to the dermis bottom")
    ac = params.describe()
    lo = {} if wide is None else wide["layers"]

    def lac(ly, key):
        return lo.get(ly, {}).get(key, layer_acoustics(ly)[key])

    ac.update(attenuation_db_cm_mhz={ly: layer_acoustics(ly)["atten_db_cm_mhz"]
                                     for ly in ("gel",) + prof.layers + ("deep_tissue",)},
              sound_speed_m_s={ly: layer_acoustics(ly)["sound_speed_m_s"]
                               for ly in ("gel",) + prof.layers + ("deep_tissue",)},
              backscatter_db={ly: lac(ly, "backscatter_db")
                              for ly in ("gel",) + prof.layers + ("deep_tissue",)},
              scatterers_per_cell={ly: lac(ly, "per_cell")
                                   for ly in ("gel",) + prof.layers + ("deep_tissue",)},
              fine_axial_step_mm=med.dz_f_mm, noise_rms_ref=res.noise_rms,
              iq_fs_mhz=C_REF / (2.0 * med.dz_f_mm * 1e3))
    if wide is not None:
        ac["specular_db"] = {**anatomy_table()["specular_db"], **wide["specular_db"]}
        ac["specular_db"].pop("description", None)
        ac["specular_db"].pop("src", None)
        ac["texture_db"] = wide["texture_db"]
        ac["envelope_smoothing_sigma_px"] = None if smooth_px is None else list(smooth_px)
    truth: dict[str, Any] = {
        "seed": seed_repr, "region": an.region, "age": float(age), "sex": sex,
        "profile": list(prof.layers), "spacing_mm": [dz, dx], "shape": [n_rows, n_cols],
        "layers": layers_truth,
        "surfaces_rows": np.round(S, 4).tolist(),
        "epidermis_anatomical_mm": layers_truth["epidermis"]["thickness_anatomical_mm"],
        "sleb": {"present": an.sleb_mm > 0, "thickness_anatomical_mm": an.sleb_mm,
                 "thickness_apparent_mm": geo.extras.get("sleb_apparent_mm", 0.0)},
        "upper_lower_dermis_db": an.upper_lower_dermis_db,
        "sun_exposure": an.sun_exposure,
        "bone": {"present": an.bone_present, "partial": an.bone_partial,
                 "in_view_fraction": layers_truth["bone"]["present_fraction"]},
        "acoustics": ac, "phantom": geo.extras,
        "entry_echo": {"definition": "label 1 spans, per column, the -6 dB extent of the "
                       "expected envelope of the skin-surface echo + epidermis + "
                       "dermo-epidermal junction through the axial pulse",
                       "mean_apparent_mm": float(np.mean(geo.echo_bottom_mm - geo.echo_top_mm))},
        "skin_surface_mean_mm": float(np.mean(geo.skin_mm)),
        "deep_tissue": {"label": 0, "fraction_of_columns": float(np.mean(geo.deep_tissue_cols)),
                        "definition": "where no bone is in view and the deepest layer ends inside "
                        "the image, the tissue below it is unmodelled generic soft tissue "
                        "(acoustics 'deep_tissue'), labelled 0 (background)"},
    }
    if scan_seed is not None:   # only on repeat scans: default truth files stay as they were
        truth["scan"] = {"scan_seed": int(scan_seed), "shift_mm": float(shift_mm),
                         "compression": float(compression),
                         "thickness_change_mm": dict(thickness_change_mm or {})}
    truth["ranges"] = {"name": ranges} if wide is None else {"name": ranges, "drawn": wide}
    if anatomy != "default":
        truth["anatomy_variant"] = anatomy
    meta = FrameMeta(source=None, frequency_mhz=float(frequency_mhz), device=DEVICE,
                     calibration="simulator", region=an.region,
                     extra={"simulator": "layerseg.simulate", "seed": seed_repr})
    elasto = kind = None
    if with_elasto:
        from . import elasto as _el
        kpa = _el.draw_layer_stiffness(an.region, sex, age,
                                       anat_rng if anat_rng is not None else rng)
        if elasto_kind == "swe_kpa":
            elasto, info = _el.simulate_swe(labels, spacing, kpa, rng)
        else:
            elasto, info = _el.simulate_strain(labels, spacing, kpa, rng)
        kind = elasto_kind
        for ly in prof.layers:
            layers_truth[ly]["stiffness_kpa"] = float(kpa[ly])
        truth["elasto"] = {"kind": kind, **info}
    frame = Frame(grey, spacing_mm=spacing, intensity="display",
                  dynamic_range_db=params.dynamic_range_db, elasto=elasto, elasto_kind=kind,
                  meta=meta)
    iq = res.iq if (return_iq or return_rf) else None
    rf = None
    if return_rf:
        gain = (10.0 ** ((res.tgc_db + params.gain_db) / 20.0)).astype(np.float32)[:, None]
        rf, fs = iq_to_rf(res.iq * gain, params.frequency_mhz, med.dz_f_mm)
        truth["acoustics"]["rf_fs_mhz"] = fs
    return SimulatedFrame(frame, labels, truth, iq if return_iq else None, rf)


def iq_to_rf(iq: np.ndarray, f0_mhz: float, dz_f_mm: float) -> tuple[np.ndarray, float]:
    """Upsample baseband IQ (fine grid, axis 0 = depth) by FFT and remodulate to RF at f0.

    Returns the float32 RF array and its sampling frequency in MHz (>= 4 f0)."""
    from scipy.signal import resample
    fs_iq = C_REF / (2.0 * dz_f_mm * 1e3)
    k = max(1, int(math.ceil(4.0 * f0_mhz / fs_iq)))
    up = resample(iq, iq.shape[0] * k, axis=0) if k > 1 else iq
    fs = fs_iq * k
    t = np.arange(up.shape[0]) / fs + 0.5 / fs_iq
    rf = np.real(up * np.exp(2j * math.pi * f0_mhz * t)[:, None])
    return rf.astype(np.float32), float(fs)
