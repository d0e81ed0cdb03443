"""NIfTI (``.nii``, ``.nii.gz``, Analyze ``.hdr``/``.img``) and NRRD (``.nrrd``, ``.nhdr``) frames.

Axis convention (the same as `layerseg.io.dataset.load_array`): the volume is indexed as stored
(no reorientation through the affine or the space directions), with

- axis 0 = x = lateral (image columns),
- axis 1 = y = depth (image rows; index 0 at the transducer),
- axis 2 = frames (a cine loop or a sweep; its step is kept in ``meta.extra['frame_step']``).

So frame ``k`` is ``volume[:, :, k].T``, shape ``(rows, cols) = (depth, lateral)``, and its spacing
is ``(axial, lateral) = (step of axis 1, step of axis 0)`` in mm. Axes of length 1 beyond the first
two are dropped (a 2-D image saved as ``(x, y, 1)`` is one frame); more than three remaining axes is
refused. This matches what annotation tools (ITK-SNAP, 3D Slicer) write for a 2-D image with x
across and y down.

Spacing comes from the header (calibration ``'header'``): NIfTI ``pixdim`` (zooms) in the unit of
``xyzt_units`` (metres and microns are converted; an unknown unit is taken as mm, except that zooms
of exactly 1 x 1 with an unknown unit are nibabel's placeholder and count as no spacing); NRRD
``space directions`` (the length of each axis' vector) or ``spacings``, in ``space units`` (mm when
absent). ``spacing=(axial_mm, lateral_mm)`` overrides it (calibration ``'user'``). A volume without
spacing gives frames with ``spacing_mm=None``.

Intensities are taken as they are: ``intensity='display'`` (default) needs grey levels 0-255 and
refuses other ranges with a message; ``intensity='envelope'`` takes non-negative linear amplitudes.
Colour volumes (NIfTI RGB types, NRRD colour axes) are refused.

Frames are decoded lazily: NIfTI through nibabel's array proxy (``dataobj[:, :, k]`` reads one
slice), NRRD by memory-mapping raw attached data; compressed NRRD is decompressed once, on the first
frame asked for.
"""

from __future__ import annotations

import math
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (CalibrationError, CorruptFileError, InvalidImageError, LayersegError,
                      MissingFileError, ReadError, UnsupportedFormatError)
from ..frame import Frame, FrameMeta, FrameSeries
from ._grey import pixels_to_grey
from ._limits import check_claimed_bytes, check_claimed_pixels, file_size, require_file

__all__ = ["read_volume", "check_nifti_size", "NIFTI_SUFFIXES", "NRRD_SUFFIXES"]

NIFTI_SUFFIXES = (".nii", ".nii.gz", ".hdr", ".img")
NRRD_SUFFIXES = (".nrrd", ".nhdr")

_UNIT_TO_MM = {"mm": 1.0, "millimeter": 1.0, "millimeters": 1.0, "millimetre": 1.0,
               "m": 1000.0, "meter": 1000.0, "meters": 1000.0, "metre": 1000.0,
               "cm": 10.0, "centimeter": 10.0, "um": 1e-3, "micron": 1e-3, "microns": 1e-3,
               "µm": 1e-3, "micrometer": 1e-3}


def _kind(p: Path) -> str:
    n = p.name.lower()
    if n.endswith(NRRD_SUFFIXES):
        return "nrrd"
    if n.endswith(NIFTI_SUFFIXES):
        return "nifti"
    # content: NRRD starts with "NRRD000", NIfTI-1 has a 348-byte header with magic at 344
    head = _head(p)
    if head.startswith(b"NRRD"):
        return "nrrd"
    if _nifti_version(head):
        return "nifti"
    raise UnsupportedFormatError("not a NIfTI or NRRD file (by name or content)", p)


def _head(p: Path, n: int = 552) -> bytes:
    """The first `n` bytes of the file, decompressed when it is gzip."""
    import gzip
    import zlib

    try:
        with open(p, "rb") as f:
            head = f.read(n)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(p, "rb") as g:
                head = g.read(n)
    except (OSError, EOFError, zlib.error) as e:
        raise ReadError(f"cannot read the file ({e})", p) from None
    return head


def _nifti_version(head: bytes) -> int:
    """1 or 2 for a single-file NIfTI-1/-2 header (``n+1``/``n+2``), -1 for the header of a
    NIfTI-1 ``.hdr``/``.img`` pair (``ni1``), 0 otherwise."""
    if len(head) >= 348 and head[344:348] == b"n+1\0":
        return 1
    if len(head) >= 348 and head[344:348] == b"ni1\0":
        return -1
    if head[4:8] == b"n+2\0":
        return 2
    return 0


def read_volume(path: str | os.PathLike, spacing=None, *, intensity: str = "display"
                ) -> FrameSeries:
    """Read a NIfTI or NRRD image or stack as frames.

    Parameters
    ----------
    path : str or path-like
        ``.nii``, ``.nii.gz``, ``.hdr`` or ``.nrrd``/``.nhdr`` (also recognised by content).
    spacing : (float, float), optional
        ``(axial_mm, lateral_mm)``; overrides the header (calibration ``'user'``).
    intensity : {'display', 'envelope'}
        What the voxel values are: display grey 0-255 (default) or a linear envelope >= 0.

    Returns
    -------
    FrameSeries
        One frame per index of axis 2 (see the module docstring for the axis convention), each
        with ``bmode`` float32 ``(rows, cols) = (axis 1, axis 0)``.

    Raises
    ------
    ReadError, UnsupportedFormatError, CorruptFileError
        Missing, unrecognised, malformed or truncated file.
    InvalidImageError
        Empty or single-pixel frames, NaN/inf voxels, values outside the intensity's range,
        colour data.
    CalibrationError
        Header spacing that is zero, negative or in an unknown unit.
    """
    p = Path(path)
    if intensity not in ("display", "envelope"):
        raise InvalidImageError(f"intensity must be 'display' or 'envelope', got {intensity!r}", p)
    require_file(p)
    src = _NiftiSource(p) if _kind(p) == "nifti" else _NrrdSource(p)
    shape = src.shape
    keep = [0, 1] + [i for i in range(2, len(shape)) if shape[i] != 1]
    if len(shape) < 2:
        raise InvalidImageError(f"volume has {len(shape)} axis/axes (shape {shape}); a frame needs "
                                "two", p)
    if len(keep) > 3:
        raise UnsupportedFormatError(f"volume of shape {shape} has more than one non-singleton "
                                     "axis beyond x and y; expected (x, y) or (x, y, frames)", p)
    nx, ny = shape[0], shape[1]
    if nx * ny == 0:
        raise InvalidImageError(f"volume is empty (shape {shape})", p)
    if nx == 1 and ny == 1:
        raise InvalidImageError("each frame is a single pixel; a frame needs at least 2 x 2", p)
    if nx < 2 or ny < 2:
        raise InvalidImageError(f"frames are too small ({ny} x {nx} pixels); a frame needs at "
                                "least 2 x 2", p)
    frame_axis = keep[2] if len(keep) == 3 else None
    n = shape[frame_axis] if frame_axis is not None else 1
    if spacing is not None:
        sp, calib = spacing, "user"
    else:
        sp = src.spacing_mm()
        calib = "header" if sp is not None else None
    extra = {"format": src.format, "volume_shape": list(shape), **src.extra}
    notes = getattr(src, "notes", None)
    if notes:
        extra["reader_notes"] = list(notes)
    if calib == "user":
        extra["spacing_override"] = True

    def load(k: int) -> Frame:
        idx = [0] * len(shape)
        idx[0], idx[1] = slice(None), slice(None)
        if frame_axis is not None:
            idx[frame_axis] = k
        a = src.slice(tuple(idx))
        if a.dtype.kind == "c" or a.dtype.fields is not None:
            raise UnsupportedFormatError(f"voxel type {a.dtype} (complex or colour) is not a grey "
                                         "B-mode; convert the volume to grey", p)
        img = pixels_to_grey(np.asarray(a).T, scale="as_is", intensity=intensity, source=p,
                             what=f"frame {k}")
        meta = FrameMeta(source=str(p), frame_index=k, calibration=calib, extra=dict(extra))
        try:
            return Frame(img, sp, intensity=intensity, meta=meta)
        except CalibrationError as e:
            if calib == "header" and "spacing" in e.problem:
                raise CalibrationError(f"header {e.problem}", p) from None
            raise

    first = load(0)
    cache = {0: first}
    return FrameSeries(n, lambda k: cache.pop(k) if k in cache else load(k), source=str(p))


def _affine_rotation_deg(img) -> float | None:
    """The in-plane angle (degrees) by which a NIfTI's stated affine (sform, else qform)
    turns its first two voxel axes off the world axes, when more than 1 degree; None when no
    affine is stated or it only scales or flips them."""
    try:
        h = img.header
        if int(h.get("sform_code", 0)) > 0:
            aff = h.get_sform()
        elif int(h.get("qform_code", 0)) > 0:
            aff = h.get_qform()
        else:
            return None
        m = np.asarray(aff, dtype=float)[:3, :2]
        cols = m / np.linalg.norm(m, axis=0, keepdims=True)
    except Exception:  # noqa: BLE001 - a malformed affine is not ours to judge here
        return None
    if not np.isfinite(cols).all():
        return None
    # the angle of each voxel axis from its nearest world axis
    worst = max(math.degrees(math.acos(min(1.0, float(np.abs(c).max())))) for c in cols.T)
    return worst if worst > 1.0 else None


def check_nifti_size(img, path: Path) -> None:
    """Refuse a NIfTI header claiming more voxels than `layerseg.io._limits.MAX_PIXELS`, or
    (uncompressed) more bytes than its data file holds, before any voxel is read.

    Parameters
    ----------
    img : nibabel image
        Loaded lazily (header only).
    path : Path
        The file given (named in errors with the data file where they differ).

    Raises
    ------
    InvalidImageError, CorruptFileError
    """
    shape = tuple(int(s) for s in img.shape)
    check_claimed_pixels(shape, path, "the NIfTI header")
    holder = img.file_map.get("image")
    df = Path(getattr(holder, "filename", None) or path)
    if not df.is_file():
        return  # in memory (decompressed from gzip content), or missing: reported elsewhere
    with open(df, "rb") as f:
        if f.read(2) == b"\x1f\x8b":
            return  # compressed: only the pixel limit can be checked without decompressing
    need = int(img.header.get_data_offset()) + math.prod(shape) * \
        img.header.get_data_dtype().itemsize
    check_claimed_bytes(need, file_size(df), df, "the NIfTI header (data offset plus "
                        f"{' x '.join(map(str, shape))} voxels of {img.header.get_data_dtype()})")


_NIB_LOG_LOCK = threading.Lock()


@contextmanager
def _nibabel_messages(into: list[str]):
    """Collect what nibabel logs about a header while it is read (e.g. "pixdim[1,2,3] should be
    non-zero; setting 0 dims to 1", written to stderr with no file name) into `into`."""
    import logging

    import nibabel.imageglobals as nib_globals

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            into.append(record.getMessage())

    lg = nib_globals.logger
    with _NIB_LOG_LOCK:
        saved, propagate = lg.handlers[:], lg.propagate
        lg.handlers, lg.propagate = [_Collect()], False
        try:
            yield
        finally:
            lg.handlers, lg.propagate = saved, propagate


class _NiftiSource:
    format = "nifti"

    def __init__(self, p: Path):
        import nibabel as nib
        self.path = p
        self.notes: list[str] = []
        header_msgs: list[str] = []
        try:
            with _nibabel_messages(header_msgs):
                if p.name.lower().endswith(NIFTI_SUFFIXES):
                    img = nib.load(str(p))
                else:
                    img = self._load_by_content(p)
        except LayersegError:
            raise
        except FileNotFoundError as e:
            raise MissingFileError(f"a file of the NIfTI/Analyze pair is missing ({e.filename})",
                                   p) from None
        except Exception as e:  # noqa: BLE001 - nibabel raises many types for bad headers
            raise CorruptFileError(f"cannot be read as NIfTI ({type(e).__name__}: {e})",
                                   p) from e
        self.img = img
        holder = img.file_map.get("image")
        data_file = getattr(holder, "filename", None)
        if data_file and not Path(data_file).exists():
            raise MissingFileError(f"a file of the NIfTI/Analyze pair is missing "
                                   f"({data_file})", p)
        dt = img.header.get_data_dtype()
        if dt.fields is not None:
            raise UnsupportedFormatError(f"NIfTI holds colour voxels ({dt}); convert it to grey",
                                         p)
        self.shape = tuple(int(s) for s in img.shape)
        self.extra: dict[str, Any] = {}
        check_nifti_size(img, p)
        self.notes += [f"NIfTI header: {m}" for m in dict.fromkeys(header_msgs)]
        rotated = _affine_rotation_deg(img)
        if rotated is not None:
            self.notes.append(f"NIfTI affine turns the image plane by {rotated:.0f} degrees; "
                              "frames are read as stored (axis 0 lateral, axis 1 depth), "
                              "not reoriented")

    @staticmethod
    def _load_by_content(p: Path):
        """A single-file NIfTI under another name: nibabel's `nib.load` picks the format by
        extension, so build the image from the header found in the content (lazily from the file;
        gzip content is decompressed into memory)."""
        import gzip

        import nibabel as nib
        from nibabel.fileholders import FileHolder

        version = _nifti_version(_head(p))
        if version == -1:
            raise UnsupportedFormatError("a NIfTI-1 header of a .hdr/.img pair under another "
                                         "name; rename it to .hdr beside its .img", p)
        if version == 0:
            raise UnsupportedFormatError("not a NIfTI file (no n+1/n+2 magic)", p)
        klass = nib.Nifti1Image if version == 1 else nib.Nifti2Image
        with open(p, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
        if gz:
            with gzip.open(p, "rb") as g:  # the header first: refuse a bomb before inflating it
                hdr = klass.header_class.from_fileobj(g)
            check_claimed_pixels(hdr.get_data_shape(), p, "the NIfTI header")
            return klass.from_bytes(gzip.decompress(p.read_bytes()))
        fh = FileHolder(filename=str(p))
        return klass.from_file_map({"header": fh, "image": fh})

    def spacing_mm(self):
        h = self.img.header
        zooms = [float(z) for z in h.get_zooms()]
        try:
            unit = h.get_xyzt_units()[0]
        except Exception:  # noqa: BLE001 - Analyze headers have no units
            unit = "unknown"
        dx, dy = zooms[0], zooms[1]
        if unit == "unknown" and dx == 1.0 and dy == 1.0:
            self.extra["header_spacing_ignored"] = "pixdim 1 x 1 with no unit (placeholder)"
            self.notes.append("NIfTI pixdim 1 x 1 with no unit is a placeholder: no spacing")
            return None
        scale = {"mm": 1.0, "meter": 1000.0, "micron": 1e-3, "unknown": 1.0}.get(unit)
        if scale is None:
            raise CalibrationError(f"NIfTI spatial unit {unit!r} is not a length", self.path)
        if unit == "unknown":
            self.extra["spacing_unit_assumed"] = "mm"
            self.notes.append("NIfTI header states no spatial unit; pixdim taken as mm")
        if not all(math.isfinite(z) and z > 0 for z in (dx, dy)):
            raise CalibrationError(f"NIfTI pixdim ({dx}, {dy}) must be positive; fix the header "
                                   "or pass spacing=(axial_mm, lateral_mm)", self.path)
        if len(zooms) > 2:
            self.extra["frame_step"] = zooms[2]
        return dy * scale, dx * scale

    def slice(self, idx):
        try:
            return np.asarray(self.img.dataobj[idx])
        except LayersegError:
            raise
        except Exception as e:  # noqa: BLE001 - truncated data and the like
            raise CorruptFileError(f"NIfTI voxel data cannot be read ({type(e).__name__}: {e}); "
                                   "the file may be truncated", self.path) from e


class _NrrdSource:
    format = "nrrd"

    def __init__(self, p: Path):
        import nrrd
        self.path = p
        self._data = None
        self._mm = None
        try:
            with open(p, "rb") as fh:
                hdr = nrrd.read_header(fh)
                self._offset = fh.tell()
        except Exception as e:  # noqa: BLE001 - pynrrd raises NRRDError and parse errors
            raise CorruptFileError(f"cannot be read as NRRD ({type(e).__name__}: {e})", p) from e
        self.header = hdr
        try:
            from nrrd.reader import _determine_datatype
            _determine_datatype(hdr)
            self.shape = tuple(int(s) for s in hdr["sizes"])
        except Exception as e:  # noqa: BLE001 - unknown type, missing sizes
            raise CorruptFileError(f"malformed NRRD header ({type(e).__name__}: {e})", p) from e
        self._check_size(hdr)
        kinds = [str(k).lower() for k in hdr.get("kinds", [])]
        if any("color" in k or k in ("vector", "rgb") for k in kinds):
            raise UnsupportedFormatError(f"NRRD has a colour/vector axis (kinds {kinds}); convert "
                                         "it to grey", p)
        self.extra = {}

    def _check_size(self, h) -> None:
        """Refuse more than `MAX_PIXELS` voxels, or raw data larger than what the file (or the
        detached data file) holds, before any voxel is read."""
        from nrrd.reader import _determine_datatype

        p = self.path
        check_claimed_pixels(self.shape, p, "the NRRD header")
        if str(h.get("encoding", "")).lower() != "raw":
            return  # compressed or text: only the pixel limit can be checked up front
        need = math.prod(self.shape) * _determine_datatype(h).itemsize
        detached = h.get("data file", h.get("datafile"))
        if detached is None:
            check_claimed_bytes(self._offset + need, file_size(p), p,
                                f"the NRRD header (sizes {list(self.shape)})")
            return
        if isinstance(detached, str) and "%" not in detached and " " not in detached.strip():
            df = Path(detached) if Path(detached).is_absolute() else p.parent / detached
            if df.is_file():
                check_claimed_bytes(need, file_size(df), df,
                                    f"the NRRD header {p.name} (sizes {list(self.shape)})")

    def spacing_mm(self):
        h = self.header
        n = len(self.shape)
        steps = [None] * n
        sd = h.get("space directions")
        if sd is not None:
            sd = np.asarray(sd, dtype=float)
            # rows of NaN mark non-spatial axes; the matrix has one row per axis
            for i in range(min(n, sd.shape[0])):
                row = sd[i]
                if np.all(np.isfinite(row)):
                    steps[i] = float(np.linalg.norm(row))
        elif h.get("spacings") is not None:
            for i, s in enumerate(np.asarray(h["spacings"], dtype=float)[:n]):
                steps[i] = float(s) if math.isfinite(s) else None
        if steps[0] is None or steps[1] is None:
            return None
        units = h.get("space units")
        u = str(units[0]).strip().lower() if units else "mm"
        if u not in _UNIT_TO_MM:
            raise CalibrationError(f"NRRD space unit {u!r} is not a known length unit", self.path)
        s = _UNIT_TO_MM[u]
        dx, dy = steps[0], steps[1]
        if not (dx > 0 and dy > 0):
            raise CalibrationError(f"NRRD axis steps ({dx}, {dy}) must be positive", self.path)
        if n > 2 and steps[2] is not None:
            self.extra["frame_step"] = steps[2] * s
        return dy * s, dx * s

    def _array(self):
        import nrrd
        if self._mm is not None:
            return self._mm
        if self._data is not None:
            return self._data
        h = self.header
        raw = str(h.get("encoding", "")).lower() == "raw"
        detached = any(k in h for k in ("data file", "datafile"))
        skips = any(h.get(k, 0) for k in ("byte skip", "byteskip", "line skip", "lineskip"))
        try:
            if raw and not detached and not skips:
                from nrrd.reader import _determine_datatype
                dt = _determine_datatype(h)
                need = int(np.prod(self.shape)) * dt.itemsize
                if self.path.stat().st_size - self._offset < need:
                    raise CorruptFileError(f"NRRD data is truncated (needs {need} bytes after the "
                                           "header)", self.path)
                self._mm = np.memmap(self.path, dtype=dt, mode="r", offset=self._offset,
                                     shape=self.shape, order="F")
                return self._mm
            self._data, _ = nrrd.read(str(self.path))
            return self._data
        except LayersegError:
            raise
        except Exception as e:  # noqa: BLE001
            raise CorruptFileError(f"NRRD data cannot be read ({type(e).__name__}: {e}); the "
                                   "file may be truncated", self.path) from e

    def slice(self, idx):
        return np.array(self._array()[idx])
