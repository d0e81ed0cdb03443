"""Readers: files -> `Frame` with physical calibration, and the dataset layout on disk.

Never imports torch or MONAI.
"""

from .dataset import (Dataset, DatasetItem, DatasetWriter, load_array, read_dataset,
                      write_frame_files, write_manifest)

__all__ = ["Dataset", "DatasetItem", "DatasetWriter", "read_dataset", "write_frame_files",
           "write_manifest", "load_array"]
