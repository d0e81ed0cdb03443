"""The one exception hierarchy of layerseg.

Every error that layerseg raises on bad input derives from :class:`LayersegError` and names the
file (where there is one) and the problem in words a user can act on. Readers never let a bare
pydicom, nibabel or numpy traceback escape: they catch it and raise one of these, chaining the
original as ``__cause__``.

The classes also derive from the matching built-in (``ValueError``, ``FileNotFoundError``...), so
code that catches the built-in keeps working.
"""

from __future__ import annotations

import errno as _errno
from os import PathLike

__all__ = [
    "LayersegError",
    "ReadError",
    "MissingFileError",
    "UnsupportedFormatError",
    "CorruptFileError",
    "WrongModalityError",
    "CalibrationError",
    "InvalidImageError",
    "ColourBarError",
    "DatasetError",
    "SpacingRequiredError",
    "ProfileError",
    "ScoreMapError",
    "FilterInputError",
    "ConfigError",
    "OutputError",
    "MissingDependencyError",
    "require_optional",
]


class LayersegError(Exception):
    """Base class of every layerseg error.

    Parameters
    ----------
    message : str
        What is wrong, in words a user can act on.
    path : str or path-like, optional
        The file or folder concerned; prefixed to the message.
    """

    def __init__(self, message: str, path: str | PathLike | None = None):
        self.path = None if path is None else str(path)
        self.problem = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class ReadError(LayersegError, OSError):
    """A file could not be read as a frame."""


class MissingFileError(ReadError, FileNotFoundError):
    """The file (or a file it names, such as the other half of a NIfTI/Analyze pair) does not
    exist. ``errno`` is ``ENOENT``, so ``except FileNotFoundError`` catches it too."""

    def __init__(self, message: str, path: str | PathLike | None = None):
        super().__init__(message, path)
        self.errno = _errno.ENOENT


class UnsupportedFormatError(ReadError, ValueError):
    """The file's content is not a format layerseg reads (or needs a package that is missing)."""


class CorruptFileError(ReadError, ValueError):
    """The file claims a known format but is truncated or malformed."""


class WrongModalityError(ReadError, ValueError):
    """A readable file of another modality (for example a CT DICOM) or without pixel data."""


class CalibrationError(LayersegError, ValueError):
    """Missing, contradictory or out-of-image physical calibration (mm per pixel)."""


class InvalidImageError(LayersegError, ValueError):
    """Pixel data that cannot stand for a frame: empty, single pixel, NaN/inf, wrong colour model."""


class ColourBarError(LayersegError, ValueError):
    """An elastography colour bar that is missing, malformed or does not match the overlay."""


class DatasetError(LayersegError, ValueError):
    """A dataset folder that does not follow the layout (missing files, shape mismatch, bad labels).

    ``problems`` lists every problem found, one string each.
    """

    def __init__(self, message: str, path: str | PathLike | None = None,
                 problems: list[str] | None = None):
        self.problems = list(problems or [])
        if self.problems:
            message = message + "\n  - " + "\n  - ".join(self.problems)
        super().__init__(message, path)


class SpacingRequiredError(CalibrationError):
    """A physical quantity was asked of a frame that has no pixel spacing."""


class ProfileError(LayersegError, ValueError):
    """Unknown region profile, or a label map / surfaces that do not fit the profile."""


class ScoreMapError(LayersegError, ValueError):
    """Per-pixel score maps with the wrong shape, number of classes, or non-finite values."""


class FilterInputError(LayersegError, ValueError):
    """An image or parameter a filter cannot take (NaN, negative envelope, even window...)."""


class ConfigError(LayersegError, ValueError):
    """A configuration file or override that is malformed or names unknown keys."""


class OutputError(LayersegError, OSError):
    """An output that would overwrite an input or another output of the same run, or a folder
    that cannot be written. Raised before any work is done."""


class MissingDependencyError(LayersegError, ImportError):
    """An option that needs an optional package (an extra of layerseg) that is not installed.
    The message names the package and the extra to install; ``extra`` holds the extra's name."""

    def __init__(self, message: str, extra: str | None = None):
        super().__init__(message)
        self.extra = extra


def require_optional(module: str, package: str, extra: str, what: str):
    """Import and return `module`, or raise `MissingDependencyError` saying that `what` needs
    `package` and how to install it (``pip install 'layerseg[extra]'``)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(
            f"{what} needs the optional package {package}, which is not installed: "
            f"pip install 'layerseg[{extra}]' (or pip install {package})", extra) from e
