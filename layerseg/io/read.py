"""`read`: one entry point for every frame file, dispatching on content (magic bytes).

The file's first bytes decide the format; the extension only breaks ties between formats whose
signatures both match (for example a DICOM file whose 128-byte preamble is a TIFF header).

Never imports torch or MONAI.
"""

from __future__ import annotations

import gzip
import importlib
import inspect
import os
import zlib
from pathlib import Path

from ..errors import CorruptFileError, MissingFileError, ReadError, UnsupportedFormatError
from ..frame import Frame, FrameSeries
from ._limits import refuse_special_file

__all__ = ["read", "read_frame", "sniff_format", "FORMATS"]

FORMATS = {
    # format: (module, function, extensions used as tie-breakers)
    "dicom": ("dicom", "read_dicom", (".dcm", ".dicom", ".dic", "")),
    "png": ("images", "read_image", (".png",)),
    "jpeg": ("images", "read_image", (".jpg", ".jpeg", ".jpe")),
    "tiff": ("images", "read_image", (".tif", ".tiff")),
    "nifti": ("volumes", "read_volume", (".nii", ".nii.gz", ".hdr")),
    "nrrd": ("volumes", "read_volume", (".nrrd", ".nhdr")),
    "npy": ("rf", "read_rf", (".npy",)),
    "mat": ("rf", "read_rf", (".mat",)),
    "hdf5": ("rf", "read_rf", (".uff", ".h5", ".hdf5", ".mat")),
}
"""Formats `read` recognises, the reader each goes to (``layerseg.io.<module>.<function>``), and
the extensions that break ties."""

_HEAD = 1024
_EXPLICIT_VRS = {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO",
                 b"LT", b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ",
                 b"SS", b"ST", b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT",
                 b"UV"}
_HDF5_SIG = b"\x89HDF\r\n\x1a\n"


def _looks_like_bare_dicom(b: bytes) -> bool:
    """A DICOM data set without preamble: it starts with a group 0x0002 or 0x0008 element."""
    if len(b) < 8:
        return False
    for order in ("little", "big"):
        group = int.from_bytes(b[0:2], order)
        elem = int.from_bytes(b[2:4], order)
        if group not in (0x0002, 0x0008) or elem > 0x0100:
            continue
        if b[4:6] in _EXPLICIT_VRS:
            return True
        if order == "little" and int.from_bytes(b[4:8], "little") < 0x10000:
            return True  # implicit VR little endian: a 4-byte length
    return False


def _signatures(b: bytes) -> list[str]:
    found = []
    if len(b) >= 132 and b[128:132] == b"DICM":
        found.append("dicom")
    if b.startswith(b"\x89PNG\r\n\x1a\n"):
        found.append("png")
    if b.startswith(b"\xff\xd8\xff"):
        found.append("jpeg")
    if b[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        found.append("tiff")
    if len(b) >= 348 and b[344:348] in (b"n+1\x00", b"ni1\x00"):
        found.append("nifti")
    if len(b) >= 8 and b[4:8] in (b"n+2\x00", b"ni2\x00"):
        found.append("nifti")
    if b.startswith(b"NRRD"):
        found.append("nrrd")
    if b.startswith(b"\x93NUMPY"):
        found.append("npy")
    if b.startswith(b"MATLAB 5.0") or b.startswith(b"MATLAB 7.3"):
        found.append("hdf5" if b.startswith(b"MATLAB 7.3") else "mat")
    if any(b[o:o + 8] == _HDF5_SIG for o in (0, 512) if len(b) >= o + 8):
        if "hdf5" not in found:
            found.append("hdf5")
    if not found and _looks_like_bare_dicom(b):
        found.append("dicom")
    return found


def sniff_format(path: str | os.PathLike) -> str:
    """The format of a file from its content: one of the keys of `FORMATS`.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str
        ``'dicom'``, ``'png'``, ``'jpeg'``, ``'tiff'``, ``'nifti'``, ``'nrrd'``, ``'npy'``,
        ``'mat'`` (MATLAB 5) or ``'hdf5'`` (MATLAB 7.3, USTB UFF).

    Raises
    ------
    MissingFileError
        The file does not exist (a `ReadError` and a `FileNotFoundError`).
    ReadError
        The path is a folder, or not a regular file (a named pipe, socket or device).
    UnsupportedFormatError
        Empty, or content of no format layerseg reads.
    """
    p = Path(path)
    if not p.exists():
        if p.is_symlink():
            raise MissingFileError("a broken symbolic link (its target does not exist, or the "
                                   "links form a loop)", p)
        raise MissingFileError("file not found", p)
    if p.is_dir():
        raise ReadError("is a folder, not a file (give a file, or a dataset folder to "
                        "read_dataset)", p)
    refuse_special_file(p)
    try:
        with open(p, "rb") as f:
            head = f.read(_HEAD)
    except OSError as e:
        raise ReadError(f"cannot open the file ({e.strerror or e})", p) from e
    if not head:
        raise UnsupportedFormatError("the file is empty (0 bytes)", p)
    found = _signatures(head)
    if not found and head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(p, "rb") as g:
                inner = g.read(_HEAD)
        except (OSError, EOFError, zlib.error) as e:
            raise CorruptFileError(f"gzip-compressed, but cannot be decompressed ({e})",
                                   p) from e
        found = [f for f in _signatures(inner) if f in ("nifti", "nrrd")]
        if not found:
            raise UnsupportedFormatError("a gzip-compressed file whose content is not NIfTI; "
                                         "decompress it first", p)
    if not found:
        raise UnsupportedFormatError(
            "content of unknown format (first bytes " + repr(head[:8]) + "); layerseg reads "
            "DICOM, PNG, JPEG, TIFF, NIfTI, NRRD, .npy, MATLAB .mat and HDF5/UFF", p)
    if len(found) > 1:
        name = p.name.lower()
        for fmt in found:
            if any(name.endswith(ext) for ext in FORMATS[fmt][2] if ext):
                return fmt
    return found[0]


def _reader(fmt: str, path: Path):
    module, func, _ = FORMATS[fmt]
    try:
        mod = importlib.import_module(f"{__package__}.{module}")
    except ImportError as e:
        raise UnsupportedFormatError(f"{fmt} content, but its reader layerseg.io.{module} cannot "
                                     f"be imported ({e})", path) from e
    return getattr(mod, func)


def read(path: str | os.PathLike, spacing: tuple[float, float] | None = None,
         **options) -> FrameSeries:
    """Read any supported frame file as a lazy series of frames, choosing the reader by content.

    Parameters
    ----------
    path : str or path-like
        DICOM, PNG/JPEG/TIFF (spacing from the caller or a ``<stem>.json`` sidecar), NIfTI/NRRD,
        raw RF (.npy, MATLAB .mat, USTB UFF/HDF5).
    spacing : (float, float), optional
        ``(axial_mm, lateral_mm)``, overriding any calibration in the file; recorded as
        ``meta.calibration == "user"``.
    **options
        Passed to the format's reader (`read_dicom`, ``read_image``, ``read_volume``,
        ``read_rf``); an option that reader does not take raises `TypeError` naming it.

    Returns
    -------
    FrameSeries
        Frames decoded on access; ``len()`` gives their number.

    Raises
    ------
    ReadError
        `MissingFileError` for a missing file, `ReadError` for a folder;
        `UnsupportedFormatError` for unknown content, and the reader's own errors
        (`CalibrationError`, `CorruptFileError`...).
    """
    p = Path(path)
    fmt = sniff_format(p)
    fn = _reader(fmt, p)
    params = inspect.signature(fn).parameters
    if not any(q.kind is inspect.Parameter.VAR_KEYWORD for q in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise TypeError(f"{p}: option(s) {unknown} are not understood by the {fmt} reader "
                            f"{fn.__module__}.{fn.__name__}")
    result = fn(p, spacing=spacing, **options)
    if isinstance(result, Frame):  # a reader of single frames
        frame = result
        return FrameSeries(1, lambda i: frame, source=str(p))
    return result


def read_frame(path: str | os.PathLike, index: int = 0, **kw) -> Frame:
    """One frame of a file: ``read(path, **kw)[index]``.

    Raises `IndexError` naming the file when `index` is out of range.
    """
    series = read(path, **kw)
    return series[index]
