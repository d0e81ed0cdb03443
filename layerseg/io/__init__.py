"""Readers: files -> `Frame` with physical calibration, and the dataset layout on disk.

`read` is the one entry point: it dispatches on the file's content (DICOM, PNG/JPEG/TIFF,
NIfTI/NRRD, raw RF) and returns a lazy `FrameSeries`.

Never imports torch or MONAI.
"""

from .dataset import (Dataset, DatasetItem, DatasetWriter, load_array, read_dataset,
                      write_frame_files, write_manifest)
from .dicom import deidentify_key, read_dicom
from .read import read, read_frame, sniff_format

__all__ = ["read", "read_frame", "sniff_format", "read_dicom", "deidentify_key",
           "Dataset", "DatasetItem", "DatasetWriter", "read_dataset", "write_frame_files",
           "write_manifest", "load_array"]
