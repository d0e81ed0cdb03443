"""Acoustics of the simulator: pulse, beam, scatterers, depth-dependent PSF convolution, noise,
TGC, envelope and log compression (a COLE-like convolution model, Gao et al. 2009).

Model (all stated, all checked by tests/simulate/test_acoustics.py):

* Image space. Everything is computed in *apparent* depth, as a scanner that assumes
  ``C_REF = 1540`` m/s forms its image; the phantom converts anatomical thickness to apparent
  thickness with ``1540 / c_layer`` before it reaches this module. Attenuation per apparent
  millimetre is the tissue's attenuation per anatomical millimetre times ``c_layer / 1540``.
* Pulse. Gaussian two-way spectrum centred on ``f0`` with a -6 dB fractional bandwidth ``fbw``
  (default 0.6): ``sigma_f = fbw * f0 / (2 sqrt(2 ln 2))``. Its envelope in apparent depth is a
  Gaussian of ``sigma_z = c / (4 pi sigma_f)``.
* Attenuation. Power-law slope ``alpha`` (dB/cm/MHz, one way). A Gaussian spectrum times
  ``exp(-a f)`` (``a`` = round-trip attenuation in Np/MHz accumulated to the scatterer) stays
  Gaussian with the same width, its centre falls to ``f0 - a sigma_f^2`` and its amplitude is
  ``exp(-a f0 + a^2 sigma_f^2 / 2)``: attenuation both darkens the echo and lowers its centre
  frequency with depth. Each scatterer's pulse carries its own downshift (source-dependent PSF).
* Beam. Dynamic receive focusing at a fixed F-number and one transmit focus: one-way Gaussian
  beams of FWHM ``lambda F#`` (receive, all depths) and ``lambda F# sqrt(1 + ((z - zf)/zR)^2)``
  (transmit, ``zR`` = half the -6 dB depth of field ``7.08 lambda F#^2``). Their product is the
  two-way lateral PSF, Gaussian with ``1/FWHM^2 = 1/FWHM_tx^2 + 1/FWHM_rx^2`` (``lambda F# /
  sqrt 2`` at the focus, widening away from it). Transmit energy is conserved across the beam
  width, so the on-axis amplitude scales with ``sqrt(FWHM_tx(zf) / FWHM_tx(z))`` (focal gain).
  The elevation dimension is not modelled (2-D medium).
* Scatterers. Poisson point scatterers with a per-cell expected count ``density * cell area``,
  binned on a fine IQ grid (axial step ``dz / up``, lateral step = the pixel pitch) with uniform
  random phase (sub-cell position) and a per-cell amplitude. Specular reflectors are coherent
  points whose phase follows their exact depth (``exp(-i 4 pi f0 z / c)``), split linearly
  between the two nearest fine rows, so tilted or rough interfaces lose brightness by phase
  cancellation as real specular echoes do.
* IQ formation. Axial convolution with the source-dependent pulse (Numba kernel over the
  non-empty cells), then per-depth lateral convolution by FFT with the depth's Gaussian transfer
  function (exact for a lateral PSF that depends on depth only).
* Noise. Complex white Gaussian electronic noise, band-limited by the same receive pulse, at
  ``noise_db`` relative to the reference echo level (below), added before TGC so that TGC
  amplifies it with depth: penetration ends where the attenuated echo meets it.
* TGC. ``+2 * tgc_db_cm_mhz * f0 * max(0, z - tgc_start_mm)`` dB at apparent depth z (round
  trip), at most ``tgc_max_db`` when set; `simulate_frame` starts the ramp at the skin surface.
* Display. ``L = 20 log10(|IQ| TGC / ref) + gain_db``; grey = ``255 (L - headroom_db + DR) / DR``
  clipped to 0-255, then the grey map ``255 (grey / 255) ** display_gamma``; ``ref`` is the
  rms echo of the reference tissue (density
  `REF_DENSITY_PER_CELL` per resolution cell, unit amplitude) at the focus with no attenuation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from numba import njit, prange
from scipy import fft as sp_fft

from ..errors import ConfigError

__all__ = ["C_REF", "AcousticParams", "Medium", "SpecularPoints", "pulse_sigma_z_mm",
           "sigma_f_mhz", "lateral_fwhm_mm", "beam_amplitude", "resolution_cell_mm2",
           "axial_fwhm_mm", "centre_frequency_mhz", "form_iq", "iq_to_display",
           "reference_intensity", "homogeneous_medium", "padded_cols", "db_cm_mhz_to_np_mm_mhz", "IQResult"]

C_REF = 1540.0
"""Sound speed (m/s) the image is formed with, as on a scanner."""

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
REF_DENSITY_PER_CELL = 10.0
"""Scatterers per resolution cell of the reference tissue that defines 0 dB (fully developed)."""


def db_cm_mhz_to_np_mm_mhz(alpha_db_cm_mhz):
    """Convert an attenuation slope from dB/cm/MHz to Np/mm/MHz (one way)."""
    return np.asarray(alpha_db_cm_mhz) / (20.0 * math.log10(math.e)) / 10.0


@dataclass(frozen=True)
class AcousticParams:
    """Imaging system and display settings of one simulated frame.

    Attributes
    ----------
    frequency_mhz : float
        Transmit centre frequency f0 in MHz (15-50).
    fractional_bandwidth : float
        -6 dB two-way fractional bandwidth of the Gaussian pulse (0.2-1.2).
    f_number : float
        F-number of the transmit focus and of the dynamic receive aperture.
    focus_mm : float
        Transmit focus depth from the probe face (apparent mm).
    aperture_mm : float or None
        Active aperture; None derives it as ``focus_mm / f_number`` (stored in `describe`).
    noise_db : float
        Electronic noise rms relative to the reference echo level (dB, negative).
    tgc : bool
        Apply time-gain compensation.
    tgc_db_cm_mhz : float
        One-way attenuation slope the TGC compensates (dB/cm/MHz).
    tgc_start_mm : float
        Depth where the TGC ramp starts (an operator sets the gel/stand-off flat).
    tgc_max_db : float or None
        Largest TGC gain (dB); a scanner's TGC range is finite, so the ramp flattens there
        (None: unlimited).
    gain_db : float
        Overall receive gain.
    dynamic_range_db : float
        Log-compression dynamic range mapped onto 0-255.
    headroom_db : float
        Level above the reference echo that maps to grey 255.
    display_gamma : float
        Grey map: the normalised log level ``t`` in 0-1 is shown as ``255 t ** display_gamma``
        (1 = linear in dB; below 1 lifts the dark tissue, above 1 darkens it), as scanners'
        post-processing curves do.
    up : int or None
        Axial oversampling of the fine IQ grid relative to the pixel grid; None chooses the
        smallest factor that samples the IQ band (Nyquist >= 3.5 sigma_k plus the downshift).
    sidelobe_db : float or None
        Side-lobe clutter: the two-way lateral PSF gains a second, broad Gaussian whose peak
        is this many dB under the main lobe's (-60..-15; None = none). Apodised arrays keep
        their side lobes 25-45 dB down; they spread a faint haze from bright echoes into
        anechoic regions.
    sidelobe_width : float
        Width of that broad Gaussian in main-lobe widths (1.5-20).
    """

    frequency_mhz: float = 24.0
    fractional_bandwidth: float = 0.6
    f_number: float = 2.0
    focus_mm: float = 5.0
    aperture_mm: float | None = None
    noise_db: float = -63.0
    tgc: bool = True
    tgc_db_cm_mhz: float = 0.5
    tgc_start_mm: float = 0.0
    gain_db: float = 0.0
    dynamic_range_db: float = 60.0
    headroom_db: float = 10.0
    up: int | None = None
    display_gamma: float = 1.0
    tgc_max_db: float | None = None
    sidelobe_db: float | None = None
    sidelobe_width: float = 5.0

    def __post_init__(self):
        f = self.frequency_mhz
        if not (15.0 <= f <= 50.0):
            raise ConfigError(f"frequency_mhz must lie in 15-50 MHz, got {f}")
        if not (0.2 <= self.fractional_bandwidth <= 1.2):
            raise ConfigError(f"fractional_bandwidth must lie in 0.2-1.2, got "
                              f"{self.fractional_bandwidth}")
        if self.aperture_mm is not None:
            if not self.aperture_mm > 0:
                raise ConfigError(f"aperture_mm must be positive, got {self.aperture_mm}")
            object.__setattr__(self, "f_number", self.focus_mm / self.aperture_mm)
        if not (0.5 <= self.f_number <= 10.0):
            raise ConfigError(f"f_number must lie in 0.5-10, got {self.f_number}")
        if not self.focus_mm > 0:
            raise ConfigError(f"focus_mm must be positive, got {self.focus_mm}")
        if not (10.0 <= self.dynamic_range_db <= 120.0):
            raise ConfigError(f"dynamic_range_db must lie in 10-120 dB, got "
                              f"{self.dynamic_range_db}")
        if self.tgc_max_db is not None and not self.tgc_max_db >= 0:
            raise ConfigError(f"tgc_max_db must be >= 0 or None, got {self.tgc_max_db}")
        if not (0.2 <= self.display_gamma <= 5.0):
            raise ConfigError(f"display_gamma must lie in 0.2-5, got {self.display_gamma}")
        if self.sidelobe_db is not None and not (-60.0 <= self.sidelobe_db <= -15.0):
            raise ConfigError(f"sidelobe_db must lie in -60..-15 dB or be None, got "
                              f"{self.sidelobe_db}")
        if not (1.5 <= self.sidelobe_width <= 20.0):
            raise ConfigError(f"sidelobe_width must lie in 1.5-20, got {self.sidelobe_width}")
        if self.up is not None and not (1 <= int(self.up) <= 16):
            raise ConfigError(f"up must be an integer 1-16, got {self.up}")

    @property
    def wavelength_mm(self) -> float:
        return C_REF / (self.frequency_mhz * 1e3)

    def describe(self) -> dict:
        """JSON-able dict of the settings and the derived pulse and beam sizes (mm, MHz)."""
        d = asdict(self)
        d.update(aperture_mm=self.focus_mm / self.f_number, wavelength_mm=self.wavelength_mm,
                 sigma_f_mhz=sigma_f_mhz(self), axial_fwhm_mm=axial_fwhm_mm(self),
                 lateral_fwhm_focus_mm=float(lateral_fwhm_mm(self.focus_mm, self)),
                 resolution_cell_mm2=resolution_cell_mm2(self), sound_speed_image_m_s=C_REF)
        return d


def sigma_f_mhz(p: AcousticParams) -> float:
    """Standard deviation (MHz) of the Gaussian two-way pulse spectrum."""
    return p.fractional_bandwidth * p.frequency_mhz / FWHM_PER_SIGMA


def pulse_sigma_z_mm(p: AcousticParams) -> float:
    """Standard deviation (apparent mm) of the pulse envelope (amplitude) in depth."""
    return C_REF / (4.0 * math.pi * sigma_f_mhz(p) * 1e3)


def axial_fwhm_mm(p: AcousticParams) -> float:
    """-6 dB axial width of the pulse envelope (= axial speckle size, intensity-ACF FWHM)."""
    return FWHM_PER_SIGMA * pulse_sigma_z_mm(p)


def lateral_fwhm_mm(z_mm, p: AcousticParams):
    """-6 dB width (mm) of the two-way lateral PSF at apparent depth(s) `z_mm` from the probe face."""
    lam = p.wavelength_mm
    w0 = lam * p.f_number
    zr = 0.5 * 7.08 * lam * p.f_number ** 2
    wtx = w0 * np.sqrt(1.0 + ((np.asarray(z_mm, dtype=float) - p.focus_mm) / zr) ** 2)
    return 1.0 / np.sqrt(1.0 / wtx ** 2 + 1.0 / w0 ** 2)


def beam_amplitude(z_mm, p: AcousticParams):
    """Relative on-axis two-way amplitude (1 at the focus) from transmit beam spreading."""
    lam = p.wavelength_mm
    zr = 0.5 * 7.08 * lam * p.f_number ** 2
    return (1.0 + ((np.asarray(z_mm, dtype=float) - p.focus_mm) / zr) ** 2) ** -0.25


def resolution_cell_mm2(p: AcousticParams) -> float:
    """Area of the resolution cell: axial FWHM x lateral FWHM at the focus (mm^2)."""
    return axial_fwhm_mm(p) * float(lateral_fwhm_mm(p.focus_mm, p))


def centre_frequency_mhz(a_np_mhz, p: AcousticParams):
    """Centre frequency of the echo after a round-trip attenuation `a_np_mhz` (Np/MHz)."""
    return p.frequency_mhz - np.asarray(a_np_mhz) * sigma_f_mhz(p) ** 2


@dataclass
class SpecularPoints:
    """Coherent point reflectors: apparent depth (mm), column index on the fine lateral grid and
    complex amplitude (phase set by the depth when built through `add`)."""

    z_mm: list = field(default_factory=list)
    col: list = field(default_factory=list)
    amp: list = field(default_factory=list)

    def add(self, z_mm, col, amp, phase=None):
        """Append reflectors; `phase` None means the coherent echo phase of their depth."""
        z = np.atleast_1d(np.asarray(z_mm, dtype=float))
        c = np.broadcast_to(np.asarray(col, dtype=np.int64), z.shape)
        a = np.broadcast_to(np.asarray(amp, dtype=float), z.shape)
        self.z_mm.append(z)
        self.col.append(np.array(c))
        self.amp.append(np.array(a) if phase is None
                        else np.array(a) * np.exp(1j * np.broadcast_to(phase, z.shape)))

    def arrays(self):
        if not self.z_mm:
            return np.zeros(0), np.zeros(0, np.int64), np.zeros(0)
        return (np.concatenate(self.z_mm), np.concatenate(self.col),
                np.concatenate([np.asarray(a) for a in self.amp]))


@dataclass
class Medium:
    """A 2-D medium on the fine simulation grid (apparent depth).

    Attributes
    ----------
    density : ndarray float32, shape (nz_f, nx_f)
        Scatterers per mm^2.
    amplitude : ndarray float32, shape (nz_f, nx_f)
        Scatterer amplitude (linear; backscatter power ~ density * amplitude^2).
    atten_db_cm_mhz : ndarray float32, shape (nz_f, nx_f)
        One-way attenuation slope per apparent cm (already scaled by c / 1540).
    specular : SpecularPoints
    dz_f_mm, dx_mm : float
        Fine axial step and lateral step (mm). Row j is at depth ``(j + 0.5) dz_f``.
    margin : int
        Lateral padding columns on the left (cropped from the output).
    n_out_cols : int
        Output columns kept after the left margin (0: all but a right margin of `margin`; the
        right padding may be wider, to reach a fast FFT length).
    up : int
        Fine rows per output row.
    """

    density: np.ndarray
    amplitude: np.ndarray
    atten_db_cm_mhz: np.ndarray
    specular: SpecularPoints
    dz_f_mm: float
    dx_mm: float
    margin: int
    up: int
    n_out_cols: int = 0

    @property
    def shape(self):
        return self.density.shape


def choose_up(p: AcousticParams, dz_mm: float) -> int:
    """Smallest axial oversampling whose Nyquist covers the IQ band (>= 3.5 sigma + 50 % shift)."""
    if p.up is not None:
        return int(p.up)
    sk = 2.0 * sigma_f_mhz(p) * 1e3 / C_REF  # spectral SD along depth, cycles/mm (two-way)
    shift = 2.0 * (0.35 * p.frequency_mhz) * 1e3 / C_REF / 2.0  # half the largest downshift
    need = 3.5 * sk + shift  # highest |spatial frequency| to keep, cycles/mm
    return max(1, int(math.ceil(dz_mm * 2.0 * need)))  # Nyquist 1 / (2 dz_f) >= need


def margin_cols(p: AcousticParams, depth_mm: float, dx_mm: float) -> int:
    """Lateral padding (columns) that holds 3 sigma of the widest lateral PSF (2 sigma of its
    side-lobe pedestal where it has one)."""
    w = float(np.max(lateral_fwhm_mm(np.array([0.0, depth_mm]), p)))
    n_sig = 3.0 if p.sidelobe_db is None else max(3.0, 2.0 * p.sidelobe_width)
    return int(math.ceil(n_sig * w / FWHM_PER_SIGMA / dx_mm)) + 2


def padded_cols(n_cols: int, margin: int) -> int:
    """Fine-grid columns: the image plus `margin` on each side, rounded up to a fast FFT length."""
    return int(sp_fft.next_fast_len(n_cols + 2 * margin))


def homogeneous_medium(p: AcousticParams, n_rows: int, n_cols: int, spacing_mm, *,
                       per_cell: float = 10.0, amplitude: float = 1.0,
                       atten_db_cm_mhz: float = 0.0) -> Medium:
    """A uniform medium of `per_cell` scatterers per resolution cell (of `p`) for tests/benchmarks."""
    dz, dx = spacing_mm
    up = choose_up(p, dz)
    m = margin_cols(p, n_rows * dz, dx)
    shape = (n_rows * up, padded_cols(n_cols, m))
    dens = per_cell / resolution_cell_mm2(p)
    return Medium(np.full(shape, dens, np.float32), np.full(shape, amplitude, np.float32),
                  np.full(shape, atten_db_cm_mhz, np.float32), SpecularPoints(), dz / up, dx,
                  m, up, n_cols)


# ----------------------------------------------------------------------------------- kernels
@njit(cache=True, parallel=True)
def _axial_conv(src, a_np, f0, sf, a_max, dphase, g, out):  # pragma: no cover - compiled
    """Arrays are (cols, depth). out[c, j+u] += src[c, j] * A * g[u] * exp(i u theta): source-dependent Gaussian pulse whose
    centre frequency is f0 - a sf^2 and amplitude exp(-a f0 + a^2 sf^2 / 2), a = a_np[j, c]
    (clamped at a_max, where the Gaussian model would shift the centre below 0.3 f0)."""
    nx, nz = src.shape  # transposed: (cols, depth)
    half = (g.shape[0] - 1) // 2
    for c in prange(nx):
        for j in range(nz):
            s = src[c, j]
            if s.real == 0.0 and s.imag == 0.0:
                continue
            a = a_np[c, j]
            am = min(a, a_max)
            s = s * math.exp(-a * f0 + 0.5 * (am * sf) ** 2)
            th = -am * sf * sf * dphase
            lo = max(-half, -j)
            hi = min(half, nz - 1 - j)
            for u in range(lo, hi + 1):
                ph = th * u
                out[c, j + u] += s * g[u + half] * complex(math.cos(ph), math.sin(ph))


@njit(cache=True, parallel=True)
def _fir_axis0(x, g, out):  # pragma: no cover - compiled
    """Zero-padded 'same' FIR filter of complex `x` along axis 0 with real symmetric taps `g`."""
    nz, nx = x.shape
    half = (g.shape[0] - 1) // 2
    for j in prange(nz):
        for c in range(nx):
            out[j, c] = 0j
        for u in range(-half, half + 1):
            jj = j - u
            if jj < 0 or jj >= nz:
                continue
            w = g[u + half]
            for c in range(nx):
                out[j, c] += x[jj, c] * w


def _scatter_field(med: Medium, rng: np.random.Generator) -> np.ndarray:
    """Complex per-cell sum of the random scatterers' unit phasors times amplitude."""
    mu = med.density.astype(np.float64) * (med.dz_f_mm * med.dx_mm)
    counts = rng.poisson(mu.ravel())
    nz = np.flatnonzero(counts)
    k = counts[nz]
    idx = np.repeat(nz, k)
    ph = rng.uniform(0.0, 2.0 * math.pi, idx.size)
    re = np.bincount(idx, np.cos(ph), minlength=mu.size)
    im = np.bincount(idx, np.sin(ph), minlength=mu.size)
    f = (re + 1j * im).reshape(mu.shape)
    f *= med.amplitude
    return np.ascontiguousarray(f)


def _add_specular(field_: np.ndarray, med: Medium, p: AcousticParams) -> None:
    z, col, amp = med.specular.arrays()
    if z.size == 0:
        return
    nz, nx = field_.shape
    k0 = 4.0 * math.pi * p.frequency_mhz * 1e3 / C_REF  # rad/mm round trip
    a = amp * np.exp(-1j * k0 * z)
    fj = z / med.dz_f_mm - 0.5
    j0 = np.floor(fj).astype(np.int64)
    w1 = fj - j0
    ok = (col >= 0) & (col < nx)
    for jj, ww in ((j0, 1.0 - w1), (j0 + 1, w1)):
        m = ok & (jj >= 0) & (jj < nz)
        np.add.at(field_, (jj[m], col[m]), a[m] * ww[m])


def _round_trip_np_mhz(med: Medium) -> np.ndarray:
    """Round-trip attenuation accumulated to each fine cell's centre (Np/MHz)."""
    a = db_cm_mhz_to_np_mm_mhz(med.atten_db_cm_mhz.astype(np.float64)) * med.dz_f_mm
    cum = np.cumsum(a, axis=0) - 0.5 * a
    return 2.0 * cum


def _axial_taps(p: AcousticParams, dz_f: float) -> np.ndarray:
    sz = pulse_sigma_z_mm(p)
    half = int(math.ceil(4.0 * sz / dz_f))
    u = np.arange(-half, half + 1) * dz_f
    return np.exp(-u ** 2 / (2.0 * sz ** 2))


def _lateral_transfer(z_mm: np.ndarray, p: AcousticParams, dx: float, nx: int) -> np.ndarray:
    """Per-depth lateral transfer function (nz, nx) of the Gaussian two-way lateral PSF."""
    k = sp_fft.fftfreq(nx, d=dx)
    sig = lateral_fwhm_mm(z_mm, p) / FWHM_PER_SIGMA
    amp = beam_amplitude(z_mm, p) * math.sqrt(2.0 * math.pi) * sig / dx
    h = amp[:, None] * np.exp(-2.0 * math.pi ** 2 * (sig[:, None] * k[None, :]) ** 2)
    if p.sidelobe_db is not None:
        # side-lobe pedestal: a Gaussian `sidelobe_width` times wider, peak sidelobe_db down
        w = p.sidelobe_width
        h += (10.0 ** (p.sidelobe_db / 20.0) * w * amp[:, None]
              * np.exp(-2.0 * math.pi ** 2 * (w * sig[:, None] * k[None, :]) ** 2))
    return h


def reference_intensity(p: AcousticParams, dz_f: float, dx: float) -> float:
    """Mean |IQ|^2 of the reference tissue (REF_DENSITY_PER_CELL per cell, amplitude 1) at the
    focus without attenuation, from the discrete kernels (exact expectation)."""
    g = _axial_taps(p, dz_f)
    sig = float(lateral_fwhm_mm(p.focus_mm, p)) / FWHM_PER_SIGMA
    half = int(math.ceil(6 * sig / dx)) + 1
    x = np.arange(-half, half + 1) * dx
    h = np.exp(-x ** 2 / (2 * sig ** 2))
    mu = REF_DENSITY_PER_CELL / resolution_cell_mm2(p) * dz_f * dx
    return float(mu * np.sum(g ** 2) * np.sum(h ** 2))


@dataclass
class IQResult:
    """Output of `form_iq`.

    Attributes
    ----------
    iq : complex64 (nz_f, n_cols)
        Beamformed IQ (baseband at f0) after noise, before TGC, on the fine grid, margins cropped.
    tgc_db : float64 (nz_f,)
        TGC gain per fine row (0 when TGC is off).
    envelope : float32 (n_rows, n_cols)
        |IQ| x TGC averaged over each pixel's `up` fine rows, in units of the reference echo rms.
    a_np_mhz : float64 (nz_f, n_cols)
        Round-trip attenuation to each fine cell (Np/MHz).
    noise_rms : float
        Electronic noise rms in reference units.
    """

    iq: np.ndarray
    tgc_db: np.ndarray
    envelope: np.ndarray
    a_np_mhz: np.ndarray
    noise_rms: float


def form_iq(med: Medium, p: AcousticParams, rng: np.random.Generator, *,
            noise: bool = True) -> IQResult:
    """Form the IQ image of `med` with the settings `p` (see the module docstring).

    Parameters
    ----------
    med : Medium
        Fine-grid medium; its rows must be a multiple of ``med.up``.
    p : AcousticParams
    rng : numpy Generator
        Source of the scatterers and the noise.
    noise : bool
        Add electronic noise.

    Returns
    -------
    IQResult
    """
    nz, nxp = med.shape
    if med.amplitude.shape != med.shape or med.atten_db_cm_mhz.shape != med.shape:
        raise ConfigError(f"medium maps differ in shape: density {med.shape}, amplitude "
                          f"{med.amplitude.shape}, attenuation {med.atten_db_cm_mhz.shape}")
    if nz % med.up:
        raise ConfigError(f"medium rows ({nz}) must be a multiple of up ({med.up})")
    if not (np.all(np.isfinite(med.density)) and med.density.min() >= 0
            and np.all(np.isfinite(med.atten_db_cm_mhz)) and med.atten_db_cm_mhz.min() >= 0):
        raise ConfigError("medium density and attenuation must be finite and non-negative")
    dz_f, dx = med.dz_f_mm, med.dx_mm
    src = _scatter_field(med, rng)
    _add_specular(src, med, p)
    a = _round_trip_np_mhz(med)
    sf = sigma_f_mhz(p)
    f0 = p.frequency_mhz
    dphase = 2.0 * math.pi * 2.0 * dz_f / (C_REF * 1e-3)  # rad per fine row per MHz
    g = _axial_taps(p, dz_f)
    out_t = np.zeros((nxp, nz), np.complex128)  # column-major work arrays: contiguous in depth
    _axial_conv(np.ascontiguousarray(src.T), np.ascontiguousarray(a.T), f0, sf,
                0.7 * f0 / sf ** 2, dphase, g, out_t)
    out = out_t.T
    z = (np.arange(nz) + 0.5) * dz_f
    ref = math.sqrt(reference_intensity(p, dz_f, dx))
    spec = sp_fft.fft(out, axis=1, workers=-1)
    spec *= _lateral_transfer(z, p, dx, nxp) / ref
    noise_rms = 10.0 ** (p.noise_db / 20.0)
    if noise:
        # complex white noise, band-limited axially by the receive pulse and laterally by a
        # 0.7-pixel Gaussian (line interpolation), generated in the lateral-frequency domain
        w = rng.standard_normal((nz, nxp, 2)).view(np.complex128)[..., 0]
        gg = g / math.sqrt(np.sum(g ** 2))
        wf = np.empty_like(w)
        _fir_axis0(w, gg, wf)
        k = sp_fft.fftfreq(nxp)
        hn = np.exp(-2.0 * math.pi ** 2 * 0.7 ** 2 * k ** 2)
        hn *= nxp / math.sqrt(np.sum(hn ** 2))  # unit mean power after the inverse FFT
        spec += wf * (hn * noise_rms / math.sqrt(2.0))[None, :]
    iq = sp_fft.ifft(spec, axis=1, workers=-1)
    m = med.margin
    n_out = med.n_out_cols or nxp - 2 * m
    iq = iq[:, m:m + n_out]
    tgc_db = (2.0 * p.tgc_db_cm_mhz * f0 * np.maximum(z - p.tgc_start_mm, 0.0) / 10.0
              if p.tgc else np.zeros(nz))
    if p.tgc_max_db is not None:
        tgc_db = np.minimum(tgc_db, p.tgc_max_db)
    envf = np.abs(iq) * (10.0 ** ((tgc_db + p.gain_db) / 20.0))[:, None]
    env = envf.reshape(nz // med.up, med.up, -1).mean(axis=1)
    return IQResult(iq.astype(np.complex64), tgc_db, env.astype(np.float32),
                    a[:, m:m + iq.shape[1]], noise_rms)


def iq_to_display(envelope: np.ndarray, p: AcousticParams) -> np.ndarray:
    """Log-compress an envelope (reference units, gain and TGC applied) to grey 0-255 float32."""
    level = 20.0 * np.log10(np.maximum(envelope, 1e-12))
    g = 255.0 * (level - p.headroom_db + p.dynamic_range_db) / p.dynamic_range_db
    g = np.clip(g, 0.0, 255.0)
    if p.display_gamma != 1.0:
        g = 255.0 * (g / 255.0) ** p.display_gamma
    return g.astype(np.float32)
