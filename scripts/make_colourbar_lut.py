"""Regenerate layerseg/data/colourbar_jet.csv, layerseg's own jet-like colour bar.

The classic piecewise-linear "jet" map (dark blue -> blue -> cyan -> yellow -> red -> dark red):
r = clip(1.5 - |4x - 3|), g = clip(1.5 - |4x - 2|), b = clip(1.5 - |4x - 1|), x in [0, 1], 256
entries, values normalised 0-1 (`layerseg.io.colour.default_colour_bar` rescales them).
"""

from pathlib import Path

import numpy as np

from layerseg.io.colour import ColourBar, _write_lut_csv


def jet(n: int = 256) -> ColourBar:
    x = np.linspace(0.0, 1.0, n)
    rgb = np.stack([np.clip(1.5 - np.abs(4 * x - k), 0, 1) for k in (3, 2, 1)], 1) * 255
    return ColourBar(rgb, x, name="jet")


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "layerseg" / "data" / "colourbar_jet.csv"
    _write_lut_csv(out, jet())
    print(out)
