"""Readers: files -> `Frame` with physical calibration, and the dataset layout on disk.

`read` is the one entry point: it dispatches on the file's content (DICOM, PNG/JPEG/TIFF,
NIfTI/NRRD, raw RF) and returns a lazy `FrameSeries`; `read_frame` returns one frame.

The format readers (`read_dicom`, `read_image`, `read_volume`, `read_rf`) and the colour-bar
tools are imported on first use (PEP 562 module ``__getattr__``), so ``import layerseg.io`` stays
quick and pulls in neither scipy.signal nor pydicom until a file of that kind is read.

Never imports torch or MONAI.
"""

from __future__ import annotations

import importlib

from .dataset import (Dataset, DatasetItem, DatasetWriter, load_array, read_dataset,
                      write_frame_files, write_manifest)
from .read import read, read_frame, sniff_format

_LAZY = {
    "read_dicom": "dicom", "deidentify_key": "dicom",
    "read_image": "images", "read_sidecar": "images", "rgb_to_grey": "images",
    "read_volume": "volumes",
    "read_rf": "rf", "rf_to_frame": "rf", "rf_envelope": "rf",
    "ColourBar": "colour", "load_lut": "colour", "sample_colour_bar": "colour",
    "decode_colour": "colour", "encode_colour": "colour", "default_colour_bar": "colour",
}

__all__ = ["read", "read_frame", "sniff_format",
           "Dataset", "DatasetItem", "DatasetWriter", "read_dataset", "write_frame_files",
           "write_manifest", "load_array", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
