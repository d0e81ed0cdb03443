"""Regenerate layerseg/filters/_median_unrolled.py, the unrolled register kernels of the median
filter (3 x 3, 5 x 5, 7 x 7), from `layerseg.filters.median.unrolled_source`.

tests/filters/test_median.py checks that the committed file equals the generator's output.
"""

from pathlib import Path

from layerseg.filters import median

if __name__ == "__main__":
    target = Path(median.__file__).with_name(median.UNROLLED_MODULE)
    target.write_text(median.unrolled_source(), encoding="utf-8")
    print(f"wrote {target}")
