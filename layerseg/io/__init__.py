"""Readers: files -> `Frame` with physical calibration, and the dataset layout on disk.

`read` is the one entry point: it dispatches on the file's content (DICOM, PNG/JPEG/TIFF,
NIfTI/NRRD, raw RF) and returns a lazy `FrameSeries`; `read_frame` returns one frame.

Never imports torch or MONAI.
"""

from .colour import (ColourBar, decode_colour, default_colour_bar, encode_colour, load_lut,
                     sample_colour_bar)
from .dataset import (Dataset, DatasetItem, DatasetWriter, load_array, read_dataset,
                      write_frame_files, write_manifest)
from .dicom import deidentify_key, read_dicom
from .images import read_image, read_sidecar, rgb_to_grey
from .read import read, read_frame, sniff_format
from .volumes import read_volume

__all__ = ["read", "read_frame", "sniff_format",
           "read_dicom", "deidentify_key",
           "read_image", "read_sidecar", "rgb_to_grey", "read_volume",
           "ColourBar", "load_lut", "sample_colour_bar", "decode_colour", "encode_colour",
           "default_colour_bar",
           "Dataset", "DatasetItem", "DatasetWriter", "read_dataset", "write_frame_files",
           "write_manifest", "load_array"]
