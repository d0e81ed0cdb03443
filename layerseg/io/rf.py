"""Raw RF and baseband IQ data -> B-mode frames: envelope, log compression, resampling.

`rf_to_frame` turns one array of beamformed lines into a `Frame`:

1. envelope: ``|hilbert(rf)|`` along the samples for real RF (scipy.signal.hilbert), ``|iq|`` for
   complex baseband IQ;
2. grid: sample ``k`` lies at depth ``k * c / (2 fs)`` (two-way travel at the assumed sound speed
   `c_m_s`, 1540 m/s as scanners display), line ``j`` at ``j * line_pitch_mm``;
3. resampling (optional, ``pixel_mm``) onto a regular grid of the stated spacing by linear
   interpolation of the envelope (scipy.ndimage.map_coordinates), after a Gaussian anti-alias filter
   (sigma ``(factor - 1) / 2`` samples, as scikit-image's resize uses) along each axis that is
   decimated;
4. log compression to grey 0-255 over `dynamic_range_db` below a reference
   (`layerseg.frame.envelope_to_display`): by default the frame's peak envelope, so the peak is
   255 and anything ``dynamic_range_db`` or more below it is 0.

The frame has ``intensity='display'``, ``dynamic_range_db`` set (so its echogenicity can be given
in dB) and calibration ``'rf_sampling'`` (``'user'`` where ``spacing`` was given instead,
``'sidecar'`` where a .npy file's sidecar gives ``spacing_mm``).

`read_rf` reads files:

- ``.npy``: ``(samples, lines)`` or ``(frames, samples, lines)``, real RF or complex IQ
  (memory-mapped, frames decoded lazily). Acquisition parameters come from the arguments, or from a
  sidecar ``<stem>.json`` beside the file with keys ``fs_mhz``, ``f0_mhz``, ``line_pitch_mm``,
  ``c_m_s``, ``dynamic_range_db``, ``iq``, ``pixel_mm``, ``spacing_mm`` (arguments win).
- ``.mat`` (MATLAB v5 through scipy.io.loadmat, loaded whole; v7.3/HDF5 through h5py, read frame
  by frame): the data variable is
  `variable` or the first present of `RF_NAMES`, else the only 2-D/3-D numeric array. MATLAB
  order is ``(samples, lines)`` or ``(samples, lines, frames)`` (frames last). Parameters not given
  as arguments are taken from scalar variables named as in `MAT_PARAM_NAMES`; a sampling or centre
  frequency above 1e4 is read as Hz (else MHz), a pitch below 0.01 as metres (else mm), the sound
  speed in m/s. ``meta.extra['mat_parameters']`` records which variables were used.
- USTB UFF (``.uff``/``.h5``, through pyuff-ustb where installed): ``BeamformedData`` on a
  ``LinearScan``; the grid comes from the scan's ``z_axis``/``x_axis`` (calibration
  ``'header'``), the data are IQ or RF as stored (each frame read from the HDF5 file only when
  asked for). Channel data (not beamformed), sector scans (not scan-converted) and
  data with several uncompounded channels or waves are refused with `UnsupportedFormatError`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage, signal

from ..checks import check_image_2d
from ..errors import (CalibrationError, CorruptFileError, InvalidImageError, LayersegError,
                      UnsupportedFormatError)
from ..frame import DEFAULT_DYNAMIC_RANGE_DB, Frame, FrameMeta, FrameSeries, envelope_to_display
from ._limits import check_claimed_bytes, check_claimed_pixels, file_size, require_file
from .images import load_json_object

__all__ = ["read_rf", "rf_to_frame", "rf_envelope", "RF_NAMES", "MAT_PARAM_NAMES"]

RF_NAMES = ("rf", "RF", "rf_data", "RFdata", "RFData", "rfdata", "iq", "IQ", "iq_data", "IQData",
            "IQdata", "data")
"""Variable names tried, in order, for the data in a .mat file when `variable` is not given."""

MAT_PARAM_NAMES = {
    "fs_mhz": ("fs", "Fs", "fs_mhz", "sampling_frequency", "samplingFrequency", "fsamp"),
    "f0_mhz": ("f0", "fc", "f0_mhz", "center_frequency", "centerFrequency", "centre_frequency",
               "modulation_frequency"),
    "line_pitch_mm": ("line_pitch_mm", "line_pitch", "pitch", "dx"),
    "c_m_s": ("c", "c0", "c_m_s", "sound_speed", "speed_of_sound"),
}
"""Scalar variables of a .mat file read as acquisition parameters (see the module docstring)."""

_SIDECAR_KEYS = ("fs_mhz", "f0_mhz", "line_pitch_mm", "c_m_s", "dynamic_range_db", "iq",
                 "pixel_mm", "spacing_mm", "comment")


# ------------------------------------------------------------------------------ array level
def rf_envelope(rf: np.ndarray, iq: bool | None = None, source=None) -> np.ndarray:
    """Envelope of beamformed lines.

    Parameters
    ----------
    rf : ndarray, shape (samples, lines)
        Real RF (envelope ``|hilbert(rf, axis=0)|``) or complex baseband IQ (envelope ``|iq|``).
    iq : bool, optional
        Force the interpretation; None decides by dtype (complex = IQ).

    Returns
    -------
    ndarray, float64, shape (samples, lines), >= 0
    """
    a = np.asarray(rf)
    if a.dtype.kind not in "biufc":
        raise InvalidImageError(f"RF data type {a.dtype} is not numeric", source)
    is_iq = a.dtype.kind == "c" if iq is None else bool(iq)
    if is_iq and a.dtype.kind != "c":
        raise InvalidImageError("iq=True needs complex IQ samples (I + jQ), got a real array",
                                source)
    if not is_iq and a.dtype.kind == "c":
        raise InvalidImageError("complex data given with iq=False; complex samples are baseband "
                                "IQ (leave iq unset)", source)
    if is_iq:
        return np.abs(a.astype(np.complex128))
    return np.abs(signal.hilbert(a.astype(np.float64), axis=0))


def _resample_axis(a: np.ndarray, axis: int, step_in: float, step_out: float) -> np.ndarray:
    """Resample `a` along `axis` from `step_in` to `step_out` (same origin): linear interpolation
    at ``k * step_out``, after a Gaussian anti-alias filter when decimating."""
    n = a.shape[axis]
    ratio = step_out / step_in
    if abs(ratio - 1) < 1e-9:
        return a
    if ratio > 1:
        a = ndimage.gaussian_filter1d(a, sigma=(ratio - 1) / 2, axis=axis, mode="nearest")
    n_out = int(math.floor((n - 1) / ratio + 1e-9)) + 1
    pos = np.arange(n_out) * ratio
    coords = np.meshgrid(*[pos if d == axis else np.arange(a.shape[d]) for d in range(a.ndim)],
                         indexing="ij")
    return ndimage.map_coordinates(a, coords, order=1, mode="nearest")


def _check_positive(name, v, path, err=CalibrationError):
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise err(f"{name} must be a number, got {v!r}", path) from None
    if not (math.isfinite(f) and f > 0):
        raise err(f"{name} must be a positive finite number, got {v!r}", path)
    return f


def rf_to_frame(rf, fs_mhz: float | None = None, *, f0_mhz: float | None = None,
                iq: bool | None = None, dynamic_range_db: float = DEFAULT_DYNAMIC_RANGE_DB,
                pixel_mm=None, line_pitch_mm: float | None = None, c_m_s: float = 1540.0,
                spacing=None, reference: float | str = "max", source=None,
                frame_index: int = 0, extra: dict | None = None,
                calibration: str | None = None) -> Frame:
    """One B-mode frame from beamformed RF lines or baseband IQ.

    Parameters
    ----------
    rf : ndarray, shape (samples, lines)
        Real RF or complex IQ, one column per beamformed line, row 0 at the transducer.
    fs_mhz : float
        Sampling rate along the lines in MHz; gives the axial sample spacing ``c / (2 fs)``.
    f0_mhz : float, optional
        Centre (transmit or demodulation) frequency in MHz; recorded, and real RF must satisfy
        ``fs >= 2 f0`` (else the rates are wrong or the RF is aliased).
    iq : bool, optional
        Complex data are IQ; None decides by dtype.
    dynamic_range_db : float
        Log-compression range mapped onto grey 0-255.
    pixel_mm : float or (float, float), optional
        Resample to this pixel spacing ``(axial, lateral)`` in mm (a single number: square
        pixels); None keeps the acquisition grid (one row per sample, one column per line).
    line_pitch_mm : float
        Distance between neighbouring lines in mm.
    c_m_s : float
        Assumed sound speed (m/s) for the depth axis.
    spacing : (float, float), optional
        ``(axial_mm, lateral_mm)`` of the samples and lines, given directly (calibration
        ``'user'``); then `fs_mhz` and `line_pitch_mm` are not needed.
    reference : 'max', 'p99.9' or float
        Envelope amplitude at 0 dB (grey 255): the frame's peak (default), its 99.9th percentile,
        or a fixed amplitude (to compress every frame of a loop alike).
    source, frame_index, extra, calibration
        Recorded in the frame's metadata (readers fill them in).

    Returns
    -------
    Frame
        ``bmode`` float32 grey 0-255, ``intensity='display'``, ``dynamic_range_db`` set,
        ``spacing_mm`` the output grid.

    Raises
    ------
    CalibrationError
        Missing sampling rate or line pitch (and no `spacing`), rates that look like Hz, or
        ``fs < 2 f0`` for real RF.
    InvalidImageError
        Not a 2-D numeric array, too small, NaN/inf samples, an all-zero signal.
    """
    a = np.asarray(rf)
    check_image_2d(a, "RF data", source, "(samples, lines)")
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        raise InvalidImageError(f"RF data holds {int((~np.isfinite(a)).sum())} NaN/inf "
                                "sample(s)", source)
    dr = _check_positive("dynamic_range_db", dynamic_range_db, source, InvalidImageError)
    c = _check_positive("c_m_s", c_m_s, source)
    fs = _check_positive("fs_mhz", fs_mhz, source)
    f0 = _check_positive("f0_mhz", f0_mhz, source)
    pitch = _check_positive("line_pitch_mm", line_pitch_mm, source)
    for name, v in (("fs_mhz", fs), ("f0_mhz", f0)):
        if v is not None and v > 1e4:
            raise CalibrationError(f"{name}={v:g} looks like Hz; give it in MHz", source)
    if c < 300 or c > 5000:
        raise CalibrationError(f"c_m_s={c:g} m/s is not a sound speed in tissue", source)
    env = rf_envelope(a, iq, source)
    is_iq = a.dtype.kind == "c"
    if not is_iq and fs is not None and f0 is not None and fs < 2 * f0:
        raise CalibrationError(f"sampling rate {fs:g} MHz is below twice the centre frequency "
                               f"{f0:g} MHz: the RF would be aliased; check both rates", source)
    if spacing is not None:
        try:
            dz, dx = (float(s) for s in spacing)
        except (TypeError, ValueError):
            raise CalibrationError(f"spacing must be (axial_mm, lateral_mm), got {spacing!r}",
                                   source) from None
        calib = calibration or "user"
    else:
        missing = [n for n, v in (("fs_mhz (sampling rate)", fs),
                                  ("line_pitch_mm (distance between lines)", pitch)) if v is None]
        if missing:
            raise CalibrationError(f"RF data needs {' and '.join(missing)} to place samples and "
                                   "lines in mm; give them, or spacing=(axial_mm, lateral_mm)",
                                   source)
        dz, dx = c / (2.0 * fs * 1e3), pitch
        calib = calibration or "rf_sampling"
    for n, v in (("axial", dz), ("lateral", dx)):
        if not (math.isfinite(v) and v > 0):
            raise CalibrationError(f"{n} spacing must be positive, got {v!r}", source)
    out_sp = (dz, dx)
    if pixel_mm is not None:
        try:
            pz, px = ((float(pixel_mm),) * 2 if np.isscalar(pixel_mm)
                      else tuple(float(p) for p in pixel_mm))
        except (TypeError, ValueError):
            raise CalibrationError(f"pixel_mm must be a number or (axial_mm, lateral_mm), got "
                                   f"{pixel_mm!r}", source) from None
        if not (pz > 0 and px > 0 and math.isfinite(pz) and math.isfinite(px)):
            raise CalibrationError(f"pixel_mm must be positive, got {pixel_mm!r}", source)
        env = _resample_axis(env, 0, dz, pz)
        env = _resample_axis(env, 1, dx, px)
        if env.shape[0] < 2 or env.shape[1] < 2:
            raise CalibrationError(f"pixel_mm {pixel_mm!r} leaves fewer than 2 x 2 pixels "
                                   f"({env.shape}); choose a finer grid", source)
        out_sp = (pz, px)
    if reference == "max":
        ref = float(env.max())
    elif reference == "p99.9":
        ref = float(np.percentile(env, 99.9))
    else:
        ref = _check_positive("reference", reference, source, InvalidImageError)
    if not ref > 0:
        raise InvalidImageError("the RF signal is zero everywhere; nothing to log-compress",
                                source)
    grey = envelope_to_display(env, dr, reference=ref)
    meta_extra = {"fs_mhz": fs, "f0_mhz": f0, "c_m_s": c, "line_pitch_mm": pitch,
                  "envelope": "iq" if is_iq else "hilbert", "log_reference": ref,
                  "acquisition_spacing_mm": [dz, dx], **(extra or {})}
    if calib == "user":
        meta_extra["spacing_override"] = True
    meta = FrameMeta(source=None if source is None else str(source), frame_index=frame_index,
                     frequency_mhz=f0, calibration=calib, extra=meta_extra)
    return Frame(grey, out_sp, intensity="display", dynamic_range_db=dr, meta=meta)


# ------------------------------------------------------------------------------ files
def _sidecar(p: Path) -> dict[str, Any]:
    sp = p.with_suffix(".json")
    if not sp.is_file():
        return {}
    d = load_json_object(sp, _SIDECAR_KEYS, what="RF sidecar")
    if "spacing_mm" in d:
        d["spacing"] = d.pop("spacing_mm")
    d.pop("comment", None)
    return d


def read_rf(path: str | os.PathLike, *, fs_mhz: float | None = None, f0_mhz: float | None = None,
            dynamic_range_db: float | None = None, pixel_mm=None, spacing=None,
            iq: bool | None = None, c_m_s: float | None = None,
            line_pitch_mm: float | None = None, variable: str | None = None,
            reference: float | str = "max") -> FrameSeries:
    """Read raw RF or IQ (.npy, .mat, USTB .uff) as log-compressed B-mode frames.

    Parameters
    ----------
    path : str or path-like
    fs_mhz, f0_mhz, pixel_mm, spacing, iq, line_pitch_mm, reference
        As in `rf_to_frame`. For .npy and .mat, values not given are looked up in the sidecar
        JSON / the .mat variables (see the module docstring); UFF files carry their own grid.
    dynamic_range_db : float, optional
        Log-compression range; default the sidecar's, else 60 dB.
    c_m_s : float, optional
        Sound speed; default the file's (.mat variable or sidecar), else 1540 m/s.
    variable : str, optional
        The data variable of a .mat file, or the location of the beamformed data in a UFF file.

    Returns
    -------
    FrameSeries
        Frames decoded lazily (the first at once, so a bad file fails here).

    Raises
    ------
    ReadError, UnsupportedFormatError, CorruptFileError
        Missing, unrecognised or unreadable file, no data variable found, UFF content that is not
        beamformed linear-scan data, pyuff-ustb missing for a UFF file.
    CalibrationError
        Missing sampling rate or line pitch (no `spacing`), implausible rates.
    InvalidImageError
        Data of the wrong shape, NaN/inf, all zero.
    """
    p = Path(path)
    require_file(p)
    with open(p, "rb") as f:
        head = f.read(512)
    given = {"fs_mhz": fs_mhz, "f0_mhz": f0_mhz, "line_pitch_mm": line_pitch_mm, "iq": iq,
             "pixel_mm": pixel_mm, "spacing": spacing, "c_m_s": c_m_s,
             "dynamic_range_db": dynamic_range_db, "reference": reference}
    suffix = p.suffix.lower()
    if head.startswith(b"\x93NUMPY"):
        if variable is not None:
            raise UnsupportedFormatError("variable= applies to .mat and UFF files, not .npy", p)
        return _read_npy(p, given)
    if head.startswith(b"MATLAB 5.0"):
        return _read_mat(p, given, variable)
    if head.startswith(b"\x89HDF") or (head.startswith(b"MATLAB 7.3") and suffix == ".mat"):
        if suffix == ".mat" or b"MATLAB 7.3" in head:
            return _read_mat73(p, given, variable)
        return _read_uff(p, given, variable)
    if suffix == ".mat":
        raise CorruptFileError("not a MATLAB .mat file (no MATLAB 5.0 or 7.3 header)", p)
    raise UnsupportedFormatError("not an RF file layerseg reads (.npy, MATLAB .mat, USTB UFF)", p)


def _params(given: dict, found: dict) -> dict:
    """Arguments win over what the file says; then the defaults (60 dB, 1540 m/s)."""
    out = {"dynamic_range_db": 60.0, "c_m_s": 1540.0}
    out.update({k: v for k, v in found.items() if v is not None})
    out.update({k: v for k, v in given.items() if v is not None})
    return out


def _series(p: Path, n: int, get, params: dict, extra: dict) -> FrameSeries:
    def load(k: int) -> Frame:
        return rf_to_frame(get(k), source=str(p), frame_index=k, extra=extra, **params)

    first = load(0)
    cache = {0: first}
    return FrameSeries(n, lambda k: cache.pop(k) if k in cache else load(k), source=str(p))


def check_npy_header(p: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Read a ``.npy`` header and check the array it claims before anything is loaded.

    Parameters
    ----------
    p : Path
        The ``.npy`` file.

    Returns
    -------
    (shape, dtype)
        As the header states them.

    Raises
    ------
    CorruptFileError
        Not a readable ``.npy`` header, an object array, or data larger than the file holds.
    InvalidImageError
        More than `layerseg.io._limits.MAX_PIXELS` elements claimed.
    """
    try:
        with open(p, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            offset = f.tell()
    except OSError as e:
        raise CorruptFileError(f".npy cannot be read ({e})", p) from e
    except Exception as e:  # noqa: BLE001 - numpy raises ValueError/SyntaxError/... on bad headers
        raise CorruptFileError(f".npy header cannot be parsed ({type(e).__name__}: {e})",
                               p) from e
    if dtype.hasobject:
        raise CorruptFileError(".npy holds Python objects (pickled), not numbers; object arrays "
                               "are not read", p)
    check_claimed_pixels(shape, p, "the .npy header")
    check_claimed_bytes(offset + math.prod(shape) * dtype.itemsize, file_size(p), p,
                        f"the .npy header (shape {tuple(shape)}, {dtype})")
    return tuple(shape), dtype


def _read_npy(p: Path, given) -> FrameSeries:
    check_npy_header(p)
    try:
        a = np.load(p, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        why = ("object arrays are not RF" if "pickle" in str(e).lower()
               else "the file may be truncated")
        raise CorruptFileError(f".npy cannot be read ({e}); {why}", p) from e
    except OSError as e:
        raise CorruptFileError(f".npy cannot be read ({e}); the file may be truncated", p) from e
    side = _sidecar(p)
    params = _params(given, side)
    if given.get("spacing") is None and side.get("spacing") is not None:
        params["calibration"] = "sidecar"   # the file's own calibration, not a user override
    if a.ndim == 2:
        return _series(p, 1, lambda k: np.asarray(a), params, {"format": "npy"})
    if a.ndim == 3:
        return _series(p, a.shape[0], lambda k: np.asarray(a[k]), params,
                       {"format": "npy", "frames_axis": 0})
    raise InvalidImageError(f".npy RF must be (samples, lines) or (frames, samples, lines), got "
                            f"shape {a.shape}", p)


def _mat_scalar(v) -> float | None:
    try:
        a = np.asarray(v, dtype=float).ravel()
    except (TypeError, ValueError):
        return None
    return float(a[0]) if a.size == 1 and math.isfinite(a[0]) else None


def _mat_params(scalars: dict[str, float]) -> tuple[dict, dict]:
    found, used = {}, {}
    for key, names in MAT_PARAM_NAMES.items():
        for nm in names:
            if nm in scalars:
                v = scalars[nm]
                if not v > 0:
                    continue  # e.g. modulation_frequency 0 for RF data
                if key in ("fs_mhz", "f0_mhz") and v > 1e4:
                    v = v / 1e6
                if key == "line_pitch_mm" and v < 0.01:
                    v = v * 1e3
                found[key], used[key] = v, nm
                break
    return found, used


def _pick_variable(p: Path, arrays: dict[str, tuple], variable: str | None) -> str:
    if variable is not None:
        if variable not in arrays:
            raise UnsupportedFormatError(f"variable {variable!r} not found; the file holds "
                                         f"{sorted(arrays)}", p)
        return variable
    for nm in RF_NAMES:
        if nm in arrays:
            return nm
    cands = [k for k, shape in arrays.items() if len(shape) in (2, 3)
             and min(shape) > 1]
    if len(cands) == 1:
        return cands[0]
    raise UnsupportedFormatError(f"cannot tell which variable holds the RF data (variables: "
                                 f"{sorted(arrays)}); pass variable=NAME", p)


def _read_mat(p: Path, given, variable) -> FrameSeries:
    import scipy.io
    try:
        # the variables' claimed shapes first, so a header claiming a huge array is refused
        # before scipy allocates it
        listed = scipy.io.whosmat(str(p))
    except NotImplementedError:
        return _read_mat73(p, given, variable)
    except Exception as e:  # noqa: BLE001 - scipy raises several types for bad files
        raise CorruptFileError(f"cannot be read as a MATLAB file ({type(e).__name__}: {e})",
                               p) from e
    total = 0
    for name, shape, _cls in listed:
        total += check_claimed_pixels(shape, p, f"the header of variable {name!r}")
    check_claimed_pixels((total,), p, "the variables' headers together")
    try:
        d = scipy.io.loadmat(str(p))
    except NotImplementedError:  # v7.3 with a v5-looking header: HDF5
        return _read_mat73(p, given, variable)
    except Exception as e:  # noqa: BLE001 - scipy raises several types for bad files
        raise CorruptFileError(f"cannot be read as a MATLAB file ({type(e).__name__}: {e})",
                               p) from e
    d = {k: v for k, v in d.items() if not k.startswith("__")}
    arrays = {k: np.shape(v) for k, v in d.items() if isinstance(v, np.ndarray)
              and v.dtype.kind in "biufc" and v.size > 1}
    scalars = {k: s for k, v in d.items() if (s := _mat_scalar(v)) is not None}
    name = _pick_variable(p, arrays, variable)
    a = np.asarray(d[name])
    found, used = _mat_params(scalars)
    params = _params(given, found)
    extra = {"format": "mat", "mat_variable": name, "mat_parameters": used}
    if a.ndim == 2:
        return _series(p, 1, lambda k: a, params, extra)
    if a.ndim == 3:
        return _series(p, a.shape[2], lambda k: a[:, :, k], params, {**extra, "frames_axis": 2})
    raise InvalidImageError(f"variable {name!r} has shape {a.shape}; expected (samples, lines) "
                            "or (samples, lines, frames)", p)


def _read_mat73(p: Path, given, variable) -> FrameSeries:
    import h5py
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        raise CorruptFileError(f"cannot be read as a MATLAB 7.3 (HDF5) file ({e})", p) from e
    with f:
        arrays, scalars = {}, {}
        for k, ds in f.items():
            if not isinstance(ds, h5py.Dataset) or k.startswith("#"):
                continue
            shape = tuple(reversed(ds.shape))  # MATLAB order
            check_claimed_pixels(shape, p, f"the HDF5 header of variable {k!r}")
            if ds.dtype.names and {"real", "imag"} <= set(ds.dtype.names):
                arrays[k] = shape
            elif ds.dtype.kind in "biuf":
                if int(np.prod(shape)) == 1:
                    scalars[k] = float(np.asarray(ds).ravel()[0])
                else:
                    arrays[k] = shape
        name = _pick_variable(p, arrays, variable)
        ndim = len(arrays[name])
    found, used = _mat_params(scalars)
    params = _params(given, found)
    extra = {"format": "mat-v7.3", "mat_variable": name, "mat_parameters": used}

    def get(k: int) -> np.ndarray:
        try:
            with h5py.File(p, "r") as fh:
                ds = fh[name]
                raw = ds[k] if ndim == 3 else ds[()]   # h5py order is MATLAB's reversed
        except (OSError, KeyError) as e:
            raise CorruptFileError(f"variable {name!r} cannot be read ({e})", p) from e
        if raw.dtype.names:
            raw = raw["real"] + 1j * raw["imag"]
        return np.asarray(raw).T

    if ndim == 2:
        return _series(p, 1, get, params, extra)
    if ndim == 3:
        return _series(p, arrays[name][2], get, params, {**extra, "frames_axis": 2})
    raise InvalidImageError(f"variable {name!r} has shape {arrays[name]}; expected (samples, "
                            "lines) or (samples, lines, frames)", p)


def _read_uff(p: Path, given, variable) -> FrameSeries:
    try:
        import pyuff_ustb as pyuff
    except ImportError:
        raise UnsupportedFormatError("an HDF5 file (USTB UFF?) needs the optional package "
                                     "pyuff-ustb: pip install pyuff-ustb", p) from None
    try:
        uff = pyuff.Uff(str(p))
        keys = list(uff._reader.keys())
        classes = {}
        for k in keys:
            try:
                classes[k] = str(uff._reader[k].attrs["class"])
            except (KeyError, LayersegError):
                continue
            except Exception:  # noqa: BLE001 - groups without a class attribute
                continue
    except Exception as e:  # noqa: BLE001
        raise CorruptFileError(f"cannot be read as a USTB UFF file ({type(e).__name__}: {e})",
                               p) from e
    if variable is not None:
        if variable not in classes:
            raise UnsupportedFormatError(f"UFF location {variable!r} not found; the file holds "
                                         f"{sorted(classes)}", p)
        loc = variable
    else:
        bf = [k for k, c in classes.items() if c == "uff.beamformed_data"]
        if not bf:
            ch = [k for k, c in classes.items() if c == "uff.channel_data"]
            if ch:
                raise UnsupportedFormatError(
                    f"the UFF file holds channel data ({ch}) but no beamformed data; beamform it "
                    "(for example with USTB or PyMUST) and save uff.beamformed_data", p)
            raise UnsupportedFormatError(f"the file holds no USTB beamformed data (HDF5 groups: "
                                         f"{sorted(keys)})", p)
        loc = bf[0]
    if classes[loc] != "uff.beamformed_data":
        raise UnsupportedFormatError(f"UFF location {loc!r} is {classes[loc]}, not "
                                     "uff.beamformed_data", p)
    try:
        bd = uff.read(loc)
        scan = bd.scan
        fs_hz = bd.sampling_frequency
        f_mod = bd.modulation_frequency
        data = _UffArray(uff._reader[loc]["data"])
    except Exception as e:  # noqa: BLE001
        raise CorruptFileError(f"UFF beamformed data {loc!r} cannot be read "
                               f"({type(e).__name__}: {e})", p) from e
    if not isinstance(scan, pyuff.LinearScan):
        raise UnsupportedFormatError(f"UFF scan is a {type(scan).__name__}; only LinearScan "
                                     "(rectangular grid) is read: scan-convert sector data first",
                                     p)
    x = np.asarray(scan.x_axis, dtype=float).ravel()
    z = np.asarray(scan.z_axis, dtype=float).ravel()
    nx, nz = len(x), len(z)
    if nx < 2 or nz < 2:
        raise InvalidImageError(f"UFF scan grid is {nz} x {nx}; a frame needs at least 2 x 2", p)
    dx_mm, dz_mm = float(np.mean(np.diff(x))) * 1e3, float(np.mean(np.diff(z))) * 1e3
    if not (dx_mm > 0 and dz_mm > 0):
        raise CalibrationError(f"UFF scan axes must increase (steps {dz_mm:g}, {dx_mm:g} mm)", p)
    check_claimed_pixels(data.shape, p, f"the UFF data set {loc!r}")
    pix = [i for i, s in enumerate(data.shape) if s == nx * nz]
    if not pix:
        raise CorruptFileError(f"UFF data shape {data.shape} has no axis of {nx * nz} pixels "
                               f"({nz} x {nx} scan)", p)
    pa = pix[0]
    others = [i for i in range(data.ndim) if i != pa and data.shape[i] > 1]
    if len(others) > 1:
        raise UnsupportedFormatError(f"UFF data shape {data.shape} has several channels or waves; "
                                     "compound them into one image per frame first", p)
    fa = others[0] if others else None
    n = data.shape[fa] if fa is not None else 1
    sp = given.get("spacing") or (dz_mm, dx_mm)
    calib = "user" if given.get("spacing") else "header"
    extra = {"format": "uff", "uff_location": loc,
             "uff_sampling_frequency_hz": None if fs_hz is None else float(fs_hz),
             "uff_modulation_frequency_hz": None if f_mod is None else float(f_mod),
             "uff_z0_mm": float(z[0] * 1e3), "uff_x0_mm": float(x[0] * 1e3)}
    f0 = given.get("f0_mhz") or (float(f_mod) / 1e6 if f_mod else None)

    def get(k: int) -> np.ndarray:
        idx = [0] * data.ndim
        idx[pa] = slice(None)
        if fa is not None:
            idx[fa] = k
        try:
            a = data[tuple(idx)]
        except Exception as e:  # noqa: BLE001 - h5py errors on damaged files
            raise CorruptFileError(f"UFF frame {k} cannot be read ({type(e).__name__}: {e})",
                                   p) from e
        # pixels run z fastest (USTB: X(:) of an (Nz, Nx) grid)
        return a.reshape(nx, nz).T

    params = _params({k: given.get(k) for k in ("iq", "pixel_mm", "dynamic_range_db",
                                                "reference")},
                     {"spacing": sp, "calibration": calib})

    def load(k: int) -> Frame:
        fr = rf_to_frame(get(k), source=str(p), frame_index=k, extra=extra, **params)
        fr.meta.frequency_mhz = f0
        return fr

    first = load(0)
    cache = {0: first}
    return FrameSeries(n, lambda k: cache.pop(k) if k in cache else load(k), source=str(p))


class _UffArray:
    """Lazy view of a UFF data set (real, or complex stored as real/imag): slicing reads only
    the slice from the HDF5 file."""

    def __init__(self, reader):
        self.reader = reader
        attrs = reader.attrs or {}
        self.is_complex = "complex" in attrs and bool(np.squeeze(attrs["complex"]))
        with (reader["real"] if self.is_complex else reader).read() as ds:
            self.shape = tuple(ds.shape)
        self.ndim = len(self.shape)

    def __getitem__(self, idx):
        if self.is_complex:
            with self.reader["real"].read() as re_, self.reader["imag"].read() as im_:
                return np.asarray(re_[idx]) + 1j * np.asarray(im_[idx])
        with self.reader.read() as ds:
            return np.asarray(ds[idx])
