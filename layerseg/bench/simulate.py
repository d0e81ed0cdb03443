"""Simulator benchmark: this package's convolution simulator against PyMUST's SIMUS (Garcia 2022),
on the same layered phantom with the same point scatterers.

Phantom (both simulators get the identical list of point scatterers): a 3.2 mm wide field,
scatterers from 0.5 to 4.5 mm deep at `per_cell` scatterers per resolution cell in three layers,
dermis-like (0 dB, 0.5-2.0 mm), fat-like (-15 dB, 2.0-3.0 mm), muscle-like (-6 dB, 3.0-4.5 mm), no
attenuation. PyMUST: a 24 MHz, 64-element linear array (pitch 0.05 mm), 60 % bandwidth, one plane
wave at 0 degrees, delay-and-sum receive at F/2 (`dasmtx`) on a 0.01 mm grid. This simulator: the
same scatterers as coherent points (exact depth phase), a transmit focus far away (plane-wave-like:
the two-way lateral PSF is the F/2 receive beam), the same pulse bandwidth, on the same grid.

Compared: wall time (and frames per second), axial and lateral speckle size (FWHM of the
envelope-intensity autocovariance in the dermis-like layer) and the layer contrasts (difference of
mean log-envelope, dB). Stated tolerances (`TOLERANCES`): speckle sizes within 30 % (the two
beam models differ: SIMUS has a rectangular element aperture and its own apodisation, this
simulator a Gaussian beam), contrasts within 2 dB. SIMUS's cost grows with scatterers x elements x
frequencies, hence the capped field; the full-size speed of this simulator is timed separately on
512 x 512 frames (`time_simulate_frame`).
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from ..simulate.acoustics import (AcousticParams, Medium, SpecularPoints, choose_up, form_iq,
                                  margin_cols, padded_cols, resolution_cell_mm2)

__all__ = ["TOLERANCES", "layered_scatterers", "run_pymust", "run_layerseg", "speckle_fwhm_mm",
           "layer_contrasts_db", "depth_profile_db", "pymust_pulse_bandwidth",
           "time_simulate_frame", "run_simulate_benchmark", "format_report"]

TOLERANCES = {"axial_rel": 0.30, "lateral_rel": 0.30, "contrast_db": 2.0}
LAYERS = (("dermis", 0.5, 2.0, 0.0), ("fat", 2.0, 3.0, -15.0), ("muscle", 3.0, 4.5, -6.0))
WIDTH_MM = 3.2
GRID_MM = 0.01


def layered_scatterers(per_cell: float = 8.0, seed: int = 0, f0: float = 24.0):
    """Point scatterers of the benchmark phantom: x, z (mm) and amplitudes (linear)."""
    rng = np.random.default_rng(seed)
    dens = per_cell / resolution_cell_mm2(AcousticParams(frequency_mhz=f0, f_number=2.0))
    xs, zs, amps = [], [], []
    for _, z0, z1, db in LAYERS:
        n = rng.poisson(dens * WIDTH_MM * (z1 - z0))
        xs.append(rng.uniform(-WIDTH_MM / 2, WIDTH_MM / 2, n))
        zs.append(rng.uniform(z0, z1, n))
        amps.append(np.full(n, 10 ** (db / 20)))
    return np.concatenate(xs), np.concatenate(zs), np.concatenate(amps)


def _grid():
    x = np.arange(-WIDTH_MM / 2 + GRID_MM / 2, WIDTH_MM / 2, GRID_MM)
    z = np.arange(0.3, 4.7, GRID_MM)
    return x, z


def _pymust_param(f0: float = 24.0, n_elements: int = 64):
    import pymust
    param = pymust.getparam("L12-3V")
    param.fc = f0 * 1e6
    param.pitch = 0.05e-3
    param.width = 0.045e-3
    param.kerf = 0.005e-3
    param.Nelements = n_elements
    param.bandwidth = 60
    param.c = 1540
    param.attenuation = 0
    param.fnumber = 2.0
    return param


def pymust_pulse_bandwidth(f0: float = 24.0) -> tuple[float, float]:
    """Centre frequency (MHz) and -6 dB fractional bandwidth of PyMUST's two-way pulse spectrum
    for the benchmark probe (its nominal 60 % is narrowed by the one-cycle excitation)."""
    import pymust
    pulse, t = pymust.getpulse(_pymust_param(f0), 2)
    n = 1 << 16
    spec = np.abs(np.fft.rfft(pulse, n))
    f = np.fft.rfftfreq(n, t[1] - t[0]) / 1e6
    ok = spec >= 0.5 * spec.max()
    f1, f2 = f[ok][0], f[ok][-1]
    fc = float(np.sum(f * spec ** 2) / np.sum(spec ** 2))
    return fc, float((f2 - f1) / fc)


def run_pymust(xs, zs, amps, f0: float = 24.0, n_elements: int = 64):
    """Simulate and beamform with PyMUST; returns (envelope (nz, nx), x_mm, z_mm, seconds of
    SIMUS, seconds of SIMUS + I/Q + DAS)."""
    import pymust
    param = _pymust_param(f0, n_elements)
    dels = pymust.txdelay(param, 0)
    t0 = time.perf_counter()
    rf = pymust.simus(xs * 1e-3, zs * 1e-3, amps, dels, param)
    if isinstance(rf, tuple):
        rf = rf[0]
    t_sim = time.perf_counter() - t0
    iq = pymust.rf2iq(rf, param)
    x, z = _grid()
    X, Z = np.meshgrid(x * 1e-3, z * 1e-3)
    M = pymust.dasmtx(1j * np.array(iq.shape), X, Z, dels, param)
    bf = (M @ iq.flatten(order="F")).reshape(X.shape, order="F")
    t_all = time.perf_counter() - t0
    return np.abs(bf), x, z, t_sim, t_all


def run_layerseg(xs, zs, amps, f0: float = 24.0, seed: int = 0, fbw: float = 0.6):
    """Simulate the same scatterers with this package; returns (envelope, x, z, seconds)."""
    x, z = _grid()
    p = AcousticParams(frequency_mhz=f0, f_number=2.0, focus_mm=60.0, fractional_bandwidth=fbw,
                       tgc=False)
    dz = GRID_MM
    n_rows = int(round((z[-1] + GRID_MM / 2) / dz))
    t0 = time.perf_counter()
    up = choose_up(p, dz)
    m = margin_cols(p, n_rows * dz, GRID_MM)
    nxp = padded_cols(x.size, m)
    shape = (n_rows * up, nxp)
    sp = SpecularPoints()
    cols = np.floor((xs + WIDTH_MM / 2) / GRID_MM).astype(np.int64) + m
    sp.add(zs, cols, amps)
    zero = np.zeros(shape, np.float32)
    med = Medium(zero, zero, zero, sp, dz / up, GRID_MM, m, up, x.size)
    res = form_iq(med, p, np.random.default_rng(seed), noise=False)
    env = res.envelope
    secs = time.perf_counter() - t0
    j0 = int(round((z[0] - dz / 2) / dz))
    return env[j0:j0 + z.size], x, z, secs


def speckle_fwhm_mm(env, z, z0: float = 0.8, z1: float = 1.8):
    """Axial and lateral FWHM (mm) of the envelope-intensity autocovariance between z0 and z1."""
    blk = env[(z >= z0) & (z < z1)].astype(np.float64) ** 2
    out = []
    for axis in (0, 1):
        x = np.moveaxis(blk, axis, 0)
        x = x - x.mean(axis=0)
        n = x.shape[0]
        f = np.fft.rfft(x, 2 * n, axis=0)
        ac = np.fft.irfft(np.abs(f) ** 2, axis=0)[:n].mean(axis=1)
        ac /= ac[0]
        k = int(np.argmax(ac < 0.5))
        frac = (ac[k - 1] - 0.5) / (ac[k - 1] - ac[k])
        out.append(2 * (k - 1 + frac) * GRID_MM)
    return tuple(out)


def depth_profile_db(env_homogeneous, z, smooth_mm: float = 0.3):
    """Mean intensity per depth (dB) of a homogeneous phantom's image: the system's depth gain
    (diffraction, receive aperture growth), divided out before comparing layer contrasts."""
    from scipy.ndimage import uniform_filter1d
    prof = np.mean(env_homogeneous.astype(np.float64) ** 2, axis=1)
    prof = uniform_filter1d(prof, max(1, int(round(smooth_mm / GRID_MM))))
    return 10 * np.log10(np.maximum(prof, 1e-300))


def layer_contrasts_db(env, z, profile_db=None):
    """Mean log-envelope of the fat-like and muscle-like layers minus the dermis-like one (dB),
    away from the interfaces (0.2 mm margins), after subtracting `profile_db` (per depth)."""
    logenv = 20 * np.log10(np.maximum(env, 1e-30))
    if profile_db is not None:
        logenv = logenv - profile_db[:, None]
    means = {}
    for name, z0, z1, _ in LAYERS:
        sel = (z >= z0 + 0.2) & (z < z1 - 0.2)
        means[name] = float(logenv[sel].mean())
    return {"fat": means["fat"] - means["dermis"], "muscle": means["muscle"] - means["dermis"]}


def time_simulate_frame(n: int = 5, region: str = "cheek") -> dict:
    """Wall and CPU (process, all threads) time of `simulate_frame` on default 512 x 512 frames
    with random settings (after a warm-up), without and with elastography, and with elastography
    under ``ranges='wide'`` (the training frames, 15-50 MHz probes): best and median of `n`."""
    from ..simulate import simulate_frame
    simulate_frame(0, region=region)
    out = {}
    for label, kw in (("bmode_only", {"with_elasto": False}), ("with_elasto", {}),
                      ("wide_with_elasto", {"ranges": "wide"})):
        ts, cs = [], []
        for i in range(n):
            t0, c0 = time.perf_counter(), time.process_time()
            simulate_frame(i, region=region, **kw)
            ts.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)
        out[label] = {"best_s": min(ts), "median_s": float(np.median(ts)),
                      "cpu_median_s": float(np.median(cs))}
    return out


def run_simulate_benchmark(per_cell: float = 8.0, seed: int = 0, n_elements: int = 64,
                           frames: int = 5, with_pymust: bool = True) -> dict:
    """Run both simulators on the benchmark phantom and time full frames; returns a dict."""
    xs, zs, amps = layered_scatterers(per_cell, seed)
    xh, zh, ah = layered_scatterers(per_cell, seed + 1)
    ah = np.ones_like(ah)  # homogeneous phantom: the system's depth response
    res: dict = {"scatterers": int(xs.size), "per_cell": per_cell,
                 "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                             "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None},
                 "tolerances": TOLERANCES}
    fbw = 0.6
    if with_pymust:
        fc, fbw = pymust_pulse_bandwidth()
        res["pymust_pulse"] = {"centre_mhz": fc, "fractional_bandwidth": fbw}
    run_layerseg(xs[:10], zs[:10], amps[:10])  # compile
    env, x, z, secs = run_layerseg(xs, zs, amps, seed=seed, fbw=fbw)
    envh = run_layerseg(xh, zh, ah, seed=seed, fbw=fbw)[0]
    res["layerseg"] = {"seconds": secs, "speckle_mm": speckle_fwhm_mm(env, z),
                       "contrast_db": layer_contrasts_db(env, z, depth_profile_db(envh, z))}
    p = AcousticParams(f_number=2.0, focus_mm=60.0, fractional_bandwidth=fbw)
    from ..simulate.acoustics import axial_fwhm_mm, lateral_fwhm_mm
    res["predicted_speckle_mm"] = (axial_fwhm_mm(p), float(lateral_fwhm_mm(1.3, p)))
    res["set_contrast_db"] = {"fat": LAYERS[1][3], "muscle": LAYERS[2][3]}
    if with_pymust:
        envp, _, _, t_sim, t_all = run_pymust(xs, zs, amps, n_elements=n_elements)
        envph = run_pymust(xh, zh, ah, n_elements=n_elements)[0]
        res["pymust"] = {"seconds_simus": t_sim, "seconds_total": t_all,
                         "speckle_mm": speckle_fwhm_mm(envp, z),
                         "contrast_db": layer_contrasts_db(envp, z, depth_profile_db(envph, z)),
                         "contrast_db_uncorrected": layer_contrasts_db(envp, z)}
        a, b = res["layerseg"], res["pymust"]
        res["agree"] = {
            "axial": bool(abs(a["speckle_mm"][0] / b["speckle_mm"][0] - 1)
                          <= TOLERANCES["axial_rel"]),
            "lateral": bool(abs(a["speckle_mm"][1] / b["speckle_mm"][1] - 1)
                            <= TOLERANCES["lateral_rel"]),
            "contrast": bool(all(abs(a["contrast_db"][k] - b["contrast_db"][k])
                                 <= TOLERANCES["contrast_db"] for k in ("fat", "muscle")))}
        res["speedup_same_phantom"] = t_all / secs
    if frames:
        res["frame_512"] = time_simulate_frame(frames)
    return res


def format_report(res: dict) -> str:
    """A side-by-side text table of `run_simulate_benchmark`'s result."""
    bw = res.get("pymust_pulse", {}).get("fractional_bandwidth", 0.6)
    lines = [f"phantom: {res['scatterers']} scatterers ({res['per_cell']} per resolution cell), "
             f"3.2 x 4.4 mm, 24 MHz, two-way bandwidth {100 * bw:.0f} %, F/2 receive; contrasts "
             "after dividing out each simulator's depth response (homogeneous phantom)"]
    hdr = f"{'':28s}{'layerseg':>14s}{'PyMUST SIMUS':>16s}{'predicted/set':>16s}"
    lines.append(hdr)
    a = res["layerseg"]
    b = res.get("pymust")
    pa, pl = res["predicted_speckle_mm"]

    def row(name, va, vb, vp, fmt="{:.4f}"):
        sb = fmt.format(vb) if vb is not None else "-"
        sp = fmt.format(vp) if vp is not None else "-"
        lines.append(f"{name:28s}{fmt.format(va):>14s}{sb:>16s}{sp:>16s}")

    row("seconds (same phantom)", a["seconds"], b["seconds_total"] if b else None, None, "{:.3f}")
    row("frames per second", 1 / a["seconds"], 1 / b["seconds_total"] if b else None, None,
        "{:.3f}")
    row("axial speckle FWHM (mm)", a["speckle_mm"][0], b["speckle_mm"][0] if b else None, pa)
    row("lateral speckle FWHM (mm)", a["speckle_mm"][1], b["speckle_mm"][1] if b else None, pl)
    for k in ("fat", "muscle"):
        row(f"{k} - dermis contrast (dB)", a["contrast_db"][k],
            b["contrast_db"][k] if b else None, res["set_contrast_db"][k], "{:.2f}")
    if b:
        lines.append(f"agree within tolerances {TOLERANCES}: {res['agree']}")
        lines.append(f"speed-up on the same phantom: {res['speedup_same_phantom']:.0f}x "
                     f"(SIMUS alone {b['seconds_simus']:.1f} s)")
    if "frame_512" in res:
        f = res["frame_512"]
        for k in ("bmode_only", "with_elasto", "wide_with_elasto"):
            lines.append(f"simulate_frame 512x512 {k}: wall best {f[k]['best_s']:.3f} s, median "
                         f"{f[k]['median_s']:.3f} s; CPU median {f[k]['cpu_median_s']:.3f} s")
    return "\n".join(lines)
