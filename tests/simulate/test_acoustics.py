"""Acoustic model checked against the physics it claims (formulas, not stored outputs)."""

import math

import numpy as np
import pytest

from layerseg.errors import ConfigError
from layerseg.simulate.acoustics import (REF_DENSITY_PER_CELL, AcousticParams, axial_fwhm_mm,
                                         beam_amplitude,
                                         centre_frequency_mhz, db_cm_mhz_to_np_mm_mhz,
                                         form_iq, homogeneous_medium, lateral_fwhm_mm,
                                         sigma_f_mhz)

RAYLEIGH = math.sqrt(math.pi / (4 - math.pi))  # mean/SD of a Rayleigh envelope, 1.913

# probe settings at the default and at the ends of the ``wide`` ranges
# (layerseg/data/sim_ranges.json): (centre frequency MHz, fractional bandwidth, F-number)
PROBES = {"default": (24.0, 0.6, 2.0), "low_end": (15.0, 0.2, 4.5), "high_end": (50.0, 1.2, 1.0)}


def test_probe_ends_are_the_wide_range_ends():
    from layerseg.simulate.ranges import ranges_table
    w = ranges_table()["ranges"]["wide"]["acoustics"]
    for i, k in enumerate(("frequency_mhz", "fractional_bandwidth", "f_number")):
        assert PROBES["low_end"][i] == w[k]["low" if k != "f_number" else "high"]
        assert PROBES["high_end"][i] == w[k]["high" if k != "f_number" else "low"]


def _iq(p, shape, spacing, seed=0, **kw):
    med = homogeneous_medium(p, *shape, spacing, **kw)
    return med, form_iq(med, p, np.random.default_rng(seed), noise=False)


def _acf_fwhm(x, axis, step):
    """FWHM (physical units) of the normalised autocovariance of `x` along `axis`, averaged over
    the other axis."""
    x = np.moveaxis(x, axis, 0)
    x = x - x.mean(axis=0)
    n = x.shape[0]
    f = np.fft.rfft(x, 2 * n, axis=0)
    ac = np.fft.irfft(np.abs(f) ** 2, axis=0)[:n].mean(axis=1)
    ac /= ac[0]
    k = int(np.argmax(ac < 0.5))
    frac = (ac[k - 1] - 0.5) / (ac[k - 1] - ac[k])
    return 2 * (k - 1 + frac) * step


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_rayleigh_dense_and_falling_with_density(probe):
    f0, fbw, fn = PROBES[probe]
    p = AcousticParams(tgc=False, focus_mm=2.0, frequency_mhz=f0, fractional_bandwidth=fbw,
                       f_number=fn)
    # enough independent speckle cells at every probe: scale the field to the cell size
    k = max(1.0, math.sqrt(axial_fwhm_mm(p) * float(lateral_fwhm_mm(2.0, p)) / 0.0045))
    shape = (200, int(256 * k))
    ratios = []
    for per_cell in (40.0, 5.0, 1.4, 0.4):
        med, r = _iq(p, shape, (0.02, 0.02), seed=1, per_cell=per_cell)
        z = (np.arange(r.iq.shape[0]) + 0.5) * med.dz_f_mm
        band = np.abs(z - p.focus_mm) < 1.0
        e = np.abs(r.iq[band])
        # divide out the model's mean level at each depth (focal gain x beam width: the band
        # spans several depths of field at the high end) so that only the speckle is left
        zb = z[band]
        e = e / np.sqrt(beam_amplitude(zb, p) ** 2 * lateral_fwhm_mm(zb, p))[:, None]
        ratios.append(e.mean() / e.std())
    assert ratios[0] == pytest.approx(RAYLEIGH, rel=0.05)
    assert ratios[1] > ratios[2] > ratios[3]
    assert ratios[2] < 0.95 * RAYLEIGH  # dermis-like 1.4 per cell: not fully developed


@pytest.mark.parametrize("f0,fbw", [(24.0, 0.4), (24.0, 0.8), PROBES["low_end"][:2],
                                    PROBES["high_end"][:2]])
def test_axial_speckle_size_scales_with_inverse_bandwidth(f0, fbw):
    # a band of at least ~10 axial speckles (0.23 mm each at 15 MHz with a 20 % band)
    half = max(1.0, 10.0 * 0.441 * 1.540 / (fbw * f0))
    p = AcousticParams(frequency_mhz=f0, fractional_bandwidth=fbw, tgc=False, up=4,
                       focus_mm=max(1.5, half + 0.5))
    med, r = _iq(p, (int((p.focus_mm + half + 0.5) / 0.02), 200), (0.02, 0.02), seed=2,
                 per_cell=30.0)
    z = (np.arange(r.iq.shape[0]) + 0.5) * med.dz_f_mm
    band = np.abs(z - p.focus_mm) < half
    inten = np.abs(r.iq[band]) ** 2
    got = _acf_fwhm(inten, 0, med.dz_f_mm)
    assert got == pytest.approx(axial_fwhm_mm(p), rel=0.15)
    assert axial_fwhm_mm(p) == pytest.approx(0.441 * 1.540 / (fbw * f0), rel=0.01)


@pytest.mark.parametrize("f0,fnum", [(24.0, 2.0), (24.0, 4.0), PROBES["low_end"][::2],
                                     PROBES["high_end"][::2]])
def test_lateral_speckle_size_wavelength_times_fnumber(f0, fnum):
    p = AcousticParams(frequency_mhz=f0, f_number=fnum, focus_mm=3.0, tgc=False)
    ncol = 384 if f0 >= 24.0 else 1024  # enough speckles across at the coarse end
    med, r = _iq(p, (300, ncol), (0.02, 0.01), seed=3, per_cell=30.0)
    z = (np.arange(r.iq.shape[0]) + 0.5) * med.dz_f_mm
    inten = np.abs(r.iq) ** 2
    zr = 0.5 * 7.08 * p.wavelength_mm * fnum ** 2
    half = min(0.3, zr / 3.0)  # stay inside the depth of field (0.16 mm at 50 MHz, F# 1.2)
    at_focus = _acf_fwhm(inten[np.abs(z - 3.0) < half], 1, 0.01)
    pred = p.wavelength_mm * fnum / math.sqrt(2)  # two-way Gaussian beam at the focus
    assert float(lateral_fwhm_mm(3.0, p)) == pytest.approx(pred, rel=1e-9)
    assert at_focus == pytest.approx(pred, rel=0.15)
    # away from the focus the speckle widens as the model predicts
    zf = 3.0 + 1.5 * zr
    if zf < 5.8:
        far = _acf_fwhm(inten[np.abs(z - zf) < half], 1, 0.01)
        assert far > 1.1 * at_focus
        assert far == pytest.approx(float(lateral_fwhm_mm(zf, p)), rel=0.15)


@pytest.mark.parametrize("probe,alpha", [("default", 1.0), ("low_end", 1.0), ("high_end", 0.3)])
def test_centre_frequency_falls_with_depth_as_attenuation_predicts(probe, alpha):
    f0, fbw, fn = PROBES[probe]
    p = AcousticParams(tgc=False, frequency_mhz=f0, fractional_bandwidth=fbw, f_number=fn)
    # the Gaussian-spectrum model holds while the shift stays under the kernel's 0.7 f0 clamp
    assert float(2 * db_cm_mhz_to_np_mm_mhz(alpha) * 7.3 * sigma_f_mhz(p) ** 2) < 0.7 * f0
    med, r = _iq(p, (400, 128), (0.02, 0.025), seed=4, per_cell=30.0,
                 atten_db_cm_mhz=alpha)
    dz = med.dz_f_mm
    fs = 1540.0 / (2 * dz * 1e3)  # MHz, IQ sampling rate along depth
    n = int(0.6 / dz)
    shifts = []
    for z0 in (1.0, 3.0, 5.0, 7.0):
        j0 = int(z0 / dz)
        blk = r.iq[j0:j0 + n].astype(np.complex128)
        spec = (np.abs(np.fft.fft(blk * np.hanning(n)[:, None], axis=0)) ** 2).mean(axis=1)
        f = np.fft.fftfreq(n, 1 / fs)
        fc = p.frequency_mhz + np.sum(f * spec) / np.sum(spec)
        a = 2 * db_cm_mhz_to_np_mm_mhz(alpha) * (z0 + 0.3)
        want = float(centre_frequency_mhz(a, p))
        assert fc == pytest.approx(want, abs=max(0.6, 0.06 * sigma_f_mhz(p))), z0
        shifts.append(f0 - fc)
    # the downshift grows with depth, in proportion to sigma_f^2 (measurable where the
    # predicted shift between the probed depths exceeds the estimate's scatter)
    a_end = 2 * db_cm_mhz_to_np_mm_mhz(alpha) * 2.0
    if a_end * sigma_f_mhz(p) ** 2 > 1.5:
        assert np.all(np.diff(shifts) > 0)
    a_end = 2 * db_cm_mhz_to_np_mm_mhz(alpha) * 7.3
    assert f0 - float(centre_frequency_mhz(a_end, p)) == pytest.approx(
        a_end * sigma_f_mhz(p) ** 2, rel=1e-9)


def _mean_db_profile(r, med, depths, half=0.25):
    z = (np.arange(r.iq.shape[0]) + 0.5) * med.dz_f_mm
    envf = np.abs(r.iq) * 10 ** (r.tgc_db / 20)[:, None]
    return np.array([10 * np.log10(np.mean(envf[np.abs(z - d) < half] ** 2)) for d in depths])


@pytest.mark.parametrize("f0,fbw,fnum", [(24.0, 0.6, 3.0), PROBES["low_end"],
                                         PROBES["high_end"]])
def test_brightness_with_and_without_tgc(f0, fbw, fnum):
    # at 50 MHz with a 110 % band, 0.5 dB/cm/MHz would shift the echo past the model's
    # 0.7 f0 clamp by 6 mm; 0.35 keeps it inside the Gaussian-spectrum regime
    alpha = 0.5 if f0 < 50 else 0.35
    depths = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    off = AcousticParams(tgc=False, focus_mm=3.5, f_number=fnum, frequency_mhz=f0,
                         fractional_bandwidth=fbw)
    ncol = 128 if f0 >= 24.0 else 1024  # enough speckle cells per depth band at the coarse end
    med, r = _iq(off, (350, ncol), (0.02, 0.025), seed=5, per_cell=30.0, atten_db_cm_mhz=alpha)
    prof_off = _mean_db_profile(r, med, depths)
    # the model's prediction: focal gain x Gaussian-spectrum attenuation
    a = 2 * db_cm_mhz_to_np_mm_mhz(alpha) * depths
    sf = sigma_f_mhz(off)
    beam = beam_amplitude(depths, off) ** 2 * lateral_fwhm_mm(depths, off)
    # falls with depth without TGC (once the focal gain, strong at F# 1.2, is divided out)
    assert np.all(np.diff(prof_off - 10 * np.log10(beam)) < 0)
    pred = 10 * np.log10(beam * np.exp(-2 * a * f0 + (a * sf) ** 2))
    assert np.all(np.abs((prof_off - prof_off[0]) - (pred - pred[0])) < 1.0)
    # TGC matched to the attenuation: flat within 2.5 dB once the focal gain is divided out
    on = AcousticParams(tgc=True, tgc_db_cm_mhz=alpha, focus_mm=3.5, f_number=fnum,
                        frequency_mhz=f0, fractional_bandwidth=fbw)
    med, r = _iq(on, (350, ncol), (0.02, 0.025), seed=5, per_cell=30.0, atten_db_cm_mhz=alpha)
    # TGC takes back exp(-2 a f0); the spectral term exp((a sf)^2) (the downshifted echo keeps
    # more energy) is left, and is what a broad band shows at depth
    spectral_db = 10 * np.log10(np.exp((a * sf) ** 2))
    prof_on = _mean_db_profile(r, med, depths) - 10 * np.log10(beam)
    assert np.ptp(prof_on - spectral_db) < 2.5
    if f0 == 24.0:
        assert np.ptp(prof_on) < 2.5
    # ... by the round-trip attenuation over 1-6 mm less the spectral term (12 dB at 24 MHz,
    # 7.5 dB at 15 MHz, 17 dB at 50 MHz with a 90 % band)
    drop = 10 * np.log10(np.exp(2 * a * f0 - (a * sf) ** 2))
    assert np.ptp(prof_off - 10 * np.log10(beam)) > 0.8 * np.ptp(drop)
    assert np.ptp(drop) > 7.0


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_backscatter_ratio_in_mean_log_envelope(probe):
    f0, fbw, fn = PROBES[probe]
    p = AcousticParams(tgc=False, frequency_mhz=f0, fractional_bandwidth=fbw, f_number=fn)
    ratio_db = 12.0
    # enough speckle cells on each side, and a gap of 3 lateral PSF widths at the edge
    k = max(1, int(round(axial_fwhm_mm(p) * float(lateral_fwhm_mm(p.focus_mm, p)) / 0.0045)))
    n = 256 * k
    gap = max(18, int(3 * float(lateral_fwhm_mm(4.0, p)) / 0.02))
    med = homogeneous_medium(p, 200, n, (0.02, 0.02), per_cell=30.0)
    half = med.margin + n // 2
    med.amplitude[:, half:] *= 10 ** (-ratio_db / 20)
    r = form_iq(med, p, np.random.default_rng(6), noise=False)
    logenv = 20 * np.log10(np.abs(r.iq) + 1e-30)
    left = logenv[:, 10:n // 2 - gap].mean()
    right = logenv[:, n // 2 + gap:n - 10].mean()
    assert left - right == pytest.approx(ratio_db, abs=0.5)


def test_tgc_range_caps_the_ramp():
    kw = dict(tgc=True, tgc_db_cm_mhz=0.5, frequency_mhz=50.0, noise_db=-40.0)
    med = homogeneous_medium(AcousticParams(**kw), 200, 32, (0.05, 0.05), per_cell=0.0)
    free = form_iq(med, AcousticParams(**kw), np.random.default_rng(0))
    cap = form_iq(med, AcousticParams(tgc_max_db=30.0, **kw), np.random.default_rng(0))
    z = (np.arange(med.shape[0]) + 0.5) * med.dz_f_mm
    assert np.allclose(free.tgc_db, 2 * 0.5 * 50.0 * z / 10.0)
    assert np.allclose(cap.tgc_db, np.minimum(free.tgc_db, 30.0))
    # same seed, same noise: each output row's envelope differs by the (row-averaged) gain cut
    ratio = cap.envelope.mean(axis=1) / free.envelope.mean(axis=1)
    want = (10 ** ((cap.tgc_db - free.tgc_db) / 20)).reshape(-1, med.up).mean(axis=1)
    assert np.allclose(ratio, want, rtol=0.05)
    assert ratio[-1] == pytest.approx(0.1, rel=0.05)  # 50 dB ramp cut to 30 dB at 10 mm
    assert ratio[:50].min() == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        AcousticParams(tgc_max_db=-1.0)


def test_noise_level_and_tgc_amplify_noise():
    p = AcousticParams(tgc=True, noise_db=-40.0)
    med = homogeneous_medium(p, 100, 128, (0.02, 0.025), per_cell=0.0)
    r = form_iq(med, p, np.random.default_rng(7), noise=True)
    rms = np.sqrt(np.mean(np.abs(r.iq) ** 2))
    assert 20 * np.log10(rms) == pytest.approx(-40.0, abs=0.5)
    # TGC (2 x 0.5 dB/cm/MHz x 24 MHz, round trip) raises the noise floor with depth
    gain = 10 ** ((r.tgc_db[-10 * med.up:].mean() - r.tgc_db[:10 * med.up].mean()) / 20)
    assert gain > 1.5
    assert r.envelope[-10:].mean() / r.envelope[:10].mean() == pytest.approx(gain, rel=0.1)


def test_params_validation():
    with pytest.raises(ConfigError):
        AcousticParams(frequency_mhz=10.0)
    with pytest.raises(ConfigError):
        AcousticParams(fractional_bandwidth=2.0)
    p = AcousticParams(focus_mm=6.0, aperture_mm=2.0)
    assert p.f_number == pytest.approx(3.0)


# ------------------------------------------------------------- kernels vs plain references
def _axial_conv_plain(src, a_np, f0, sf, a_max, dphase, g):
    """Loop-based reference of acoustics._axial_conv (arrays (cols, depth))."""
    nx, nz = src.shape
    half = (len(g) - 1) // 2
    out = np.zeros((nx, nz), complex)
    for c in range(nx):
        for j in range(nz):
            if src[c, j] == 0:
                continue
            a = a_np[c, j]
            am = min(a, a_max)
            s = src[c, j] * math.exp(-a * f0 + 0.5 * (am * sf) ** 2)
            th = -am * sf * sf * dphase
            for u in range(-half, half + 1):
                if 0 <= j + u < nz:
                    out[c, j + u] += s * g[u + half] * np.exp(1j * th * u)
    return out


@pytest.mark.nojit
def test_axial_conv_kernel_matches_plain_reference():
    from layerseg.simulate.acoustics import _axial_conv
    rng = np.random.default_rng(0)
    nx, nz = 7, 40
    src = (rng.standard_normal((nx, nz)) + 1j * rng.standard_normal((nx, nz)))
    src[rng.random((nx, nz)) < 0.6] = 0
    a_np = np.cumsum(rng.uniform(0, 0.02, (nx, nz)), axis=1)
    g = np.exp(-np.linspace(-3, 3, 9) ** 2)
    out = np.zeros((nx, nz), complex)
    _axial_conv(src, a_np, 24.0, 6.0, 0.3, 0.05, g, out)
    ref = _axial_conv_plain(src, a_np, 24.0, 6.0, 0.3, 0.05, g)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.nojit
def test_fir_kernel_matches_numpy_convolve():
    from layerseg.simulate.acoustics import _fir_axis0
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 6)) + 1j * rng.standard_normal((50, 6))
    g = np.exp(-np.linspace(-2, 2, 7) ** 2)
    out = np.empty_like(x)
    _fir_axis0(x, g, out)
    ref = np.stack([np.convolve(x[:, c], g, mode="same") for c in range(6)], axis=1)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


def test_tgc_flat_down_to_the_noise_floor_then_noise():
    """With TGC matched to the attenuation, brightness is flat (focal gain divided out) down to
    where the echo meets the electronic noise; deeper, the image is TGC-amplified noise."""
    alpha = 1.0
    p = AcousticParams(tgc=True, tgc_db_cm_mhz=alpha, focus_mm=3.0, f_number=3.0,
                       noise_db=-22.0)
    med = homogeneous_medium(p, 500, 96, (0.02, 0.025), per_cell=20.0, atten_db_cm_mhz=alpha)
    r = form_iq(med, p, np.random.default_rng(8), noise=True)
    depths = np.arange(0.5, 9.6, 0.5)
    prof = _mean_db_profile(r, med, depths)
    beam_db = 10 * np.log10(beam_amplitude(depths, p) ** 2 * lateral_fwhm_mm(depths, p)
                            / lateral_fwhm_mm(p.focus_mm, p))
    a = 2 * db_cm_mhz_to_np_mm_mhz(alpha) * depths
    sig_db = beam_db + 10 * np.log10(np.exp(-2 * a * 24.0 + (a * sigma_f_mhz(p)) ** 2))
    ref_db = 10 * np.log10(20.0 / REF_DENSITY_PER_CELL)  # 20 per cell vs the 0 dB reference
    above = sig_db + ref_db > p.noise_db + 10
    assert above.sum() >= 4 and (~above).sum() >= 3
    # the Gaussian spectrum's downshift returns exp(a^2 sf^2) of the attenuation that the TGC
    # (set to the nominal slope) compensates; with that and the focal gain divided out the
    # brightness is flat within 1.5 dB, and within 4 dB without dividing out the downshift term
    shift_db = 10 * np.log10(np.exp((a * sigma_f_mhz(p)) ** 2))
    assert np.ptp(prof[above] - beam_db[above] - shift_db[above]) < 1.5
    assert np.ptp(prof[above] - beam_db[above]) < 4.0
    tgc = 2 * alpha * 24.0 * depths / 10
    noise_floor = p.noise_db + tgc
    deep = sig_db + ref_db < p.noise_db - 10
    assert deep.any()
    assert np.all(np.abs(prof[deep] - noise_floor[deep]) < 1.5)


def test_form_iq_rejects_bad_media():
    p = AcousticParams()
    med = homogeneous_medium(p, 20, 16, (0.02, 0.025))
    med.density[0, 0] = -1
    with pytest.raises(ConfigError):
        form_iq(med, p, np.random.default_rng(0))
    med = homogeneous_medium(p, 20, 16, (0.02, 0.025))
    med.amplitude = med.amplitude[:-1]
    with pytest.raises(ConfigError):
        form_iq(med, p, np.random.default_rng(0))
