"""Benchmark code behind ``layerseg bench`` (importable once installed).

Modules: `layerseg.bench.search` (speed of the ordered search).
"""

__all__: list[str] = []
