"""The classical segmenter's configuration: a documented JSON file with overrides.

The defaults live in ``layerseg/data/classical_segmenter.json`` (every key is described there in
``_doc`` entries). A user changes any part of it by passing a dict or a JSON file of the same shape:
the override is merged key by key into the defaults, and keys that the defaults do not know are
refused (a typo never passes silently). Keys starting with ``_`` are comments.
"""

from __future__ import annotations

import os
from typing import Any

from .._jsonconfig import merge, number, packaged_json, read_override
from ..errors import ConfigError
from ..layers.decode import thickness_limits_mm
from ..layers.profiles import LABEL_NAMES

__all__ = ["DEFAULT_CONFIG_FILE", "default_config", "load_config", "thickness_limits_mm"]

DEFAULT_CONFIG_FILE = "classical_segmenter.json"
"""Name of the default configuration in the ``layerseg.data`` package."""


def default_config() -> dict[str, Any]:
    """The default configuration as a fresh dict (comments removed)."""
    return packaged_json(DEFAULT_CONFIG_FILE)


def load_config(config: dict | str | os.PathLike | None = None) -> dict[str, Any]:
    """The segmenter configuration: defaults merged with an override.

    Parameters
    ----------
    config : dict or path or None
        None: the defaults. A dict, or the path of a JSON file holding one, with any subset of
        the keys of ``layerseg/data/classical_segmenter.json``; nested mappings merge key by key.

    Returns
    -------
    dict
        The full configuration, validated.

    Raises
    ------
    ConfigError
        Unreadable file, malformed JSON, unknown key, or a value out of range (named).
    """
    cfg = default_config()
    over, src = read_override(config)
    if over is None:
        return _validate(cfg, src)
    return _validate(merge(cfg, over, "", src), src)


def _num(v, where, src, lo=None, hi=None, allow_zero=True) -> float:
    return number(v, where, src, lo, hi, allow_zero)


def _validate(cfg: dict, src) -> dict:
    f = cfg["filter"]
    if f["method"] not in ("median", "srad", "lee", "kuan", "frost", "none"):
        raise ConfigError(f"filter.method must be one of median, srad, lee, kuan, frost, none; "
                          f"got {f['method']!r}", src)
    if len(f["size_mm"]) != 2:
        raise ConfigError("filter.size_mm must be [axial, lateral] in mm", src)
    for i, v in enumerate(f["size_mm"]):
        _num(v, f"filter.size_mm[{i}]", src, lo=0.0)
    ws = cfg["working_spacing_mm"]
    if not isinstance(ws, (list, tuple)) or len(ws) != 2:
        raise ConfigError("working_spacing_mm must be [axial, lateral] in mm", src)
    for i, v in enumerate(ws):
        _num(v, f"working_spacing_mm[{i}]", src, lo=0.0, allow_zero=False)
    for i, v in enumerate(cfg["smoothing_mm"]):
        _num(v, f"smoothing_mm[{i}]", src, lo=0.0)
    _num(cfg["gradient_sigma_mm"], "gradient_sigma_mm", src, lo=0.0, allow_zero=False)
    _num(cfg["reference_window_mm"], "reference_window_mm", src, lo=0.0, allow_zero=False)
    _num(cfg["bone_cost"], "bone_cost", src, lo=0.0)
    app = cfg["appearance"]
    for name in LABEL_NAMES:
        if name not in app:
            raise ConfigError(f"appearance.{name} is missing", src)
        _num(app[name]["mean"], f"appearance.{name}.mean", src)
        _num(app[name]["sd"], f"appearance.{name}.sd", src, lo=0.0, allow_zero=False)
    for key in ("edges", "ridge"):
        for name in cfg[key]["w"]:
            if name not in LABEL_NAMES:
                raise ConfigError(f"{key}.w names unknown label {name!r}", src)
    _num(cfg["ridge"]["sigma_mm"], "ridge.sigma_mm", src, lo=0.0, allow_zero=False)
    _num(cfg["texture"]["z_cap"], "texture.z_cap", src, lo=0.0, allow_zero=False)
    dt = cfg["deep_tissue"]
    _num(dt["start_mm"], "deep_tissue.start_mm", src, lo=0.0)
    _num(dt["mean"], "deep_tissue.mean", src)
    _num(dt["dark"], "deep_tissue.dark", src)
    _num(dt["sd"], "deep_tissue.sd", src, lo=0.0, allow_zero=False)
    _num(dt["dark_sd"], "deep_tissue.dark_sd", src, lo=0.0, allow_zero=False)
    _num(dt["cost"], "deep_tissue.cost", src)
    if len(dt["texture"]) != 2:
        raise ConfigError("deep_tissue.texture must be [mean, sd] of the streakiness", src)
    _num(dt["texture"][1], "deep_tissue.texture[1]", src, lo=0.0, allow_zero=False)
    bs = cfg["bone_surface"]
    if bs["appearance"] not in ("deep_tissue", "own"):
        raise ConfigError(f"bone_surface.appearance must be 'deep_tissue' or 'own', got "
                          f"{bs['appearance']!r}", src)
    _num(bs["weight"], "bone_surface.weight", src, lo=0.0)
    _num(bs["cap"], "bone_surface.cap", src, lo=0.0)
    _num(bs["pixel_cost"], "bone_surface.pixel_cost", src, lo=0.0)
    _num(bs["offset"], "bone_surface.offset", src)
    _num(bs["look_mm"], "bone_surface.look_mm", src, lo=0.0, allow_zero=False)
    for key in ("line_mm", "below_mm"):
        if len(bs[key]) != 2:
            raise ConfigError(f"bone_surface.{key} must hold two lengths in mm", src)
        for i, v in enumerate(bs[key]):
            _num(v, f"bone_surface.{key}[{i}]", src, lo=0.0)
    if not bs["below_mm"][0] < bs["below_mm"][1]:
        raise ConfigError("bone_surface.below_mm must be [start, end] with start < end", src)
    ad = cfg["adapt"]
    if int(ad["iterations"]) != ad["iterations"] or ad["iterations"] < 0:
        raise ConfigError(f"adapt.iterations must be a whole number >= 0, got "
                          f"{ad['iterations']!r}", src)
    if not 0 < ad["sd_min"] <= ad["sd_max"]:
        raise ConfigError("adapt.sd_min must be positive and at most adapt.sd_max", src)
    return cfg
