"""Data files shipped with layerseg (region profiles, reference tables)."""
