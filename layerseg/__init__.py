"""layerseg: layer segmentation and aging markers for high-frequency facial ultrasound.

Research software, not a medical device.

Short public calls (imported lazily, so ``import layerseg`` stays light and never imports torch):

- `layerseg.read(path, ...)`: read frames (see `layerseg.io.read`);
- `layerseg.segment(frame, model="classical")`: label map 0-7 obeying the region's layer order;
- `layerseg.score(frame, labels)`: per-layer aging markers in physical units.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._allocator import tune_allocator
from .errors import LayersegError
from .frame import Frame, FrameMeta, FrameSeries

__all__ = ["__version__", "Frame", "FrameMeta", "FrameSeries", "LayersegError", "read",
           "segment", "score", "tune_allocator"]


def read(path, *args, **kwargs):
    """Read frames from a file; see `layerseg.io.read`."""
    from .io import read as _read
    return _read(path, *args, **kwargs)


def segment(frame, model="classical", **kwargs):
    """Segment a frame into the label map 0-7; see `layerseg.segmentation.segment`."""
    from .segmentation import segment as _segment
    return _segment(frame, model=model, **kwargs)


def score(frame, labels, **kwargs):
    """Per-layer aging markers of a labelled frame; see `layerseg.scoring.score`."""
    from .scoring import score as _score
    return _score(frame, labels, **kwargs)
