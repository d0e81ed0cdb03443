"""Trained segmenters: MONAI networks trained through Lightning, every answer ending in the shared
decode (`layerseg.layers.decode`).

- `transforms`: array + dictionary transforms (resampling to a fixed spacing in mm, ultrasound
  augmentation, elastography channel);
- `data`: `FrameDataModule` over dataset folders or frames simulated on the fly;
- `task`: `SegmentationTask`, the thin typed LightningModule;
- `cli`: the one LightningCLI behind ``layerseg fit|validate|test|predict``;
- `predict`: checkpoints loaded safely (``weights_only``) and used by `layerseg.segment`.

Importing this package imports torch, MONAI and Lightning; nothing outside it does.
"""

import sys as _sys

_TORCH_IMPORTED_BEFORE = "torch" in _sys.modules
"""Whether torch was imported before this package (so the user may have set its thread count;
see `export.inference_threads`). Recorded before any submodule imports torch."""
