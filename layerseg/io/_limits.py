"""Sizes a file's header claims, checked before anything is allocated for them.

A reader that trusts a header allocates what the header claims: a 1.5 KB file whose header says
60000 x 60000 pixels would make it allocate gigabytes before failing. Every reader therefore
calls these checks with the header's numbers before decoding:

- `check_claimed_bytes` where the format is uncompressed: the bytes the header claims must lie in
  the file (else `CorruptFileError`, the file is truncated or its header wrong);
- `check_claimed_pixels` for every format: at most `MAX_PIXELS` pixels per file (else
  `InvalidImageError`), the one stated limit.

Why ``2**28`` pixels (268 million) per file: a 24 MHz B-mode frame is at most about 1 million
pixels (a full 1024 x 1024 screen capture; a cropped B-mode is 0.1-0.5 million), so the limit
holds a 10 s cine loop of full screens at 25 frames/s, or 1000 frames of 512 x 512, with room to
spare. Decoded whole it is 256 MiB of uint8 or 1 GiB of float32, which a workstation can hold;
a header claiming more is either not an ultrasound frame file or a malicious one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

from ..errors import CorruptFileError, InvalidImageError, MissingFileError, ReadError

__all__ = ["MAX_PIXELS", "check_claimed_pixels", "check_claimed_bytes", "file_size",
           "require_file"]

MAX_PIXELS = 2 ** 28
"""Most pixels (summed over all frames, colour samples not counted) a header may claim for one
file; see the module docstring for why."""


def _n(shape: Iterable[int]) -> int:
    return math.prod(int(s) for s in shape)


def check_claimed_pixels(shape: Iterable[int], path: str | os.PathLike,
                         what: str = "the header") -> int:
    """Refuse a header that claims more than `MAX_PIXELS` pixels.

    Parameters
    ----------
    shape : iterable of int
        The claimed dimensions (rows, columns, frames... in any order); colour samples excluded.
    path : str or path-like
        The file, named in the error.
    what : str
        What claims it, for the message (``"the IHDR chunk"``).

    Returns
    -------
    int
        The number of pixels claimed.

    Raises
    ------
    InvalidImageError
        More than `MAX_PIXELS`, or a negative dimension.
    """
    dims = [int(s) for s in shape]
    if any(d < 0 for d in dims):
        raise InvalidImageError(f"{what} claims a negative dimension {tuple(dims)}", path)
    n = _n(dims)
    if n > MAX_PIXELS:
        raise InvalidImageError(
            f"{what} claims {' x '.join(map(str, dims))} = {n:,} pixels, more than the "
            f"{MAX_PIXELS:,} (2**28) pixels layerseg reads from one file "
            "(layerseg.io._limits.MAX_PIXELS); the file is not an ultrasound frame file, or its "
            "header is damaged", path)
    return n


def check_claimed_bytes(needed: int, available: int, path: str | os.PathLike,
                        what: str = "the header") -> None:
    """Refuse an uncompressed file too short for the data its header claims.

    Parameters
    ----------
    needed : int
        Bytes the header claims (data size, plus its offset when `available` is the file size).
    available : int
        Bytes the file holds for them.
    path : str or path-like
        The file, named in the error.
    what : str
        What claims it, for the message.

    Raises
    ------
    CorruptFileError
        `needed` exceeds `available`.
    """
    if int(needed) > int(available):
        raise CorruptFileError(f"{what} claims {int(needed):,} bytes of pixel data but the file "
                               f"holds only {int(available):,}; it is truncated or its header "
                               "is wrong", path)


def file_size(path: str | os.PathLike) -> int:
    """Size of the file in bytes."""
    return os.stat(path).st_size


def refuse_special_file(path, what: str = "") -> None:
    """Refuse a path that exists but is neither a folder nor a regular file: a named pipe,
    socket or device, whose read would block forever or never end (`ReadError` naming it;
    `what`, e.g. ``"sidecar"``, starts the message)."""
    from pathlib import Path
    p = Path(path)
    if p.exists() and not p.is_dir() and not p.is_file():
        raise ReadError(f"{what + ' is ' if what else ''}not a regular file (a named pipe, "
                        "socket or device): layerseg reads files only", p)


def require_file(path) -> "os.PathLike":
    """The path of an existing, non-empty regular file, or the reader's error for it.

    Raises
    ------
    MissingFileError
        Nothing at `path`.
    ReadError
        A folder or other non-file.
    CorruptFileError
        An empty (0-byte) file.
    """
    from pathlib import Path
    p = Path(path)
    if not p.is_file():
        if not p.exists():
            raise MissingFileError("file does not exist", p)
        refuse_special_file(p)
        raise ReadError("not a file", p)
    if p.stat().st_size == 0:
        raise CorruptFileError("file is empty (0 bytes)", p)
    return p
