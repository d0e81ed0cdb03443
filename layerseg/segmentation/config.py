"""The classical segmenter's configuration: a documented JSON file with overrides.

The defaults live in ``layerseg/data/classical_segmenter.json`` (every key is described there in
``_doc`` entries). A user changes any part of it by passing a dict or a JSON file of the same shape:
the override is merged key by key into the defaults, and keys that the defaults do not know are
refused (a typo never passes silently). Keys starting with ``_`` are comments.
"""

from __future__ import annotations

import copy
import json
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..layers.profiles import LABEL_NAMES, Profile

__all__ = ["DEFAULT_CONFIG_FILE", "default_config", "load_config", "thickness_limits_mm"]

DEFAULT_CONFIG_FILE = "classical_segmenter.json"
"""Name of the default configuration in the ``layerseg.data`` package."""

_REF_FREQUENCY_MHZ = 24.0
"""Frequency at which the epidermis (entry-echo) limits of the config are stated."""


def default_config() -> dict[str, Any]:
    """The default configuration as a fresh dict (comments removed)."""
    text = resources.files("layerseg.data").joinpath(DEFAULT_CONFIG_FILE).read_text()
    return _strip_comments(json.loads(text))


def _strip_comments(d):
    if isinstance(d, dict):
        return {k: _strip_comments(v) for k, v in d.items() if not str(k).startswith("_")}
    return d


def _merge(base: dict, over: dict, path: str, src) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if str(k).startswith("_"):
            continue
        where = f"{path}.{k}" if path else str(k)
        if k not in base:
            # thickness tables may name new regions, and any layer of a region (checked later)
            if (path == "thickness_mm" and isinstance(v, dict)) or \
                    path.startswith("thickness_mm."):
                out[k] = copy.deepcopy(v)
                continue
            raise ConfigError(f"unknown configuration key {where!r}; known keys here: "
                              f"{sorted(base)}", src)
        if isinstance(base[k], dict) and not isinstance(v, dict):
            raise ConfigError(f"configuration key {where!r} must be a mapping, got {v!r}", src)
        if isinstance(base[k], dict):
            out[k] = _merge(base[k], v, where, src)
        else:
            out[k] = copy.deepcopy(v)
    return out


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
    src = None
    if config is None:
        return _validate(cfg, src)
    if isinstance(config, (str, os.PathLike)):
        src = Path(config)
        try:
            over = json.loads(src.read_text())
        except FileNotFoundError:
            raise ConfigError("configuration file does not exist", src) from None
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read the configuration as JSON ({e})", src) from e
    elif isinstance(config, dict):
        over = config
    else:
        raise ConfigError(f"config must be a dict, a JSON file path or None, got "
                          f"{type(config).__name__}")
    if not isinstance(over, dict):
        raise ConfigError("the configuration must be a JSON object (mapping)", src)
    return _validate(_merge(cfg, over, "", src), src)


def _num(v, where, src, lo=None, hi=None, allow_zero=True) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number, got {v!r}", src) from None
    if not math.isfinite(x) or (lo is not None and x < lo) or (hi is not None and x > hi) or \
            (not allow_zero and x == 0):
        raise ConfigError(f"{where} = {v!r} is out of range"
                          f"{'' if lo is None else f' (min {lo})'}"
                          f"{'' if hi is None else f' (max {hi})'}", src)
    return x


def _validate(cfg: dict, src) -> dict:
    f = cfg["filter"]
    if f["method"] not in ("median", "srad", "lee", "kuan", "frost", "none"):
        raise ConfigError(f"filter.method must be one of median, srad, lee, kuan, frost, none; "
                          f"got {f['method']!r}", src)
    if len(f["size_mm"]) != 2:
        raise ConfigError("filter.size_mm must be [axial, lateral] in mm", src)
    for i, v in enumerate(f["size_mm"]):
        _num(v, f"filter.size_mm[{i}]", src, lo=0.0)
    for i, v in enumerate(cfg["smoothing_mm"]):
        _num(v, f"smoothing_mm[{i}]", src, lo=0.0)
    _num(cfg["gradient_sigma_mm"], "gradient_sigma_mm", src, lo=0.0, allow_zero=False)
    _num(cfg["reference_window_mm"], "reference_window_mm", src, lo=0.0, allow_zero=False)
    _num(cfg["max_slope_deg"], "max_slope_deg", src, lo=0.0, hi=89.0)
    _num(cfg["bone_cost"], "bone_cost", src, lo=0.0)
    _num(cfg["smooth_fallback_per_column"], "smooth_fallback_per_column", src, lo=0.0)
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
    th = cfg["thickness_mm"]
    for region, table in th.items():
        if region == "epidermis_frequency_scaled":
            continue
        if region == "may_be_absent":
            bad = [x for x in table if x not in LABEL_NAMES or x == "background"]
            if bad:
                raise ConfigError(f"thickness_mm.may_be_absent names unknown layer(s) {bad}", src)
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"thickness_mm.{region} must map layer names to [min, max]", src)
        for layer, mm in table.items():
            if layer not in LABEL_NAMES or layer == "background":
                raise ConfigError(f"thickness_mm.{region} names unknown layer {layer!r}", src)
            if not (isinstance(mm, (list, tuple)) and len(mm) == 2):
                raise ConfigError(f"thickness_mm.{region}.{layer} must be [min, max] in mm, got "
                                  f"{mm!r}", src)
            lo = _num(mm[0], f"thickness_mm.{region}.{layer}[0]", src, lo=0.0)
            hi = _num(mm[1], f"thickness_mm.{region}.{layer}[1]", src, lo=0.0)
            if lo > hi:
                raise ConfigError(f"thickness_mm.{region}.{layer}: minimum {lo} exceeds maximum "
                                  f"{hi}", src)
    return cfg


def thickness_limits_mm(cfg: dict, profile: Profile, frequency_mhz: float | None = None
                        ) -> tuple[dict[str, float], dict[str, float]]:
    """Per-layer (min, max) thickness in mm for a profile: the region's table over the default.

    Parameters
    ----------
    cfg : dict
        A configuration from `load_config`.
    profile : Profile
        The frame's region profile.
    frequency_mhz : float, optional
        Probe frequency; scales the epidermis (entry-echo) limits by 24 / f when the config asks.

    Returns
    -------
    min_mm, max_mm : dict of str to float
        Keyed by layer name, for the profile's layers.
    """
    th = cfg["thickness_mm"]
    table = dict(th["default"])
    # (may_be_absent is read by the caller: absent_ok of the ordered search)
    table.update(th.get(profile.region, {}))
    mn, mx = {}, {}
    for layer in profile.layers:
        lo, hi = table.get(layer, (0.0, math.inf))
        lo, hi = float(lo), float(hi)
        if layer == "epidermis" and th.get("epidermis_frequency_scaled") and frequency_mhz:
            scale = _REF_FREQUENCY_MHZ / float(frequency_mhz)
            lo, hi = lo * scale, hi * scale
        mn[layer], mx[layer] = lo, hi
    return mn, mx
