"""Shared helpers of the JSON configuration files (the classical segmenter's parameters, the
decode priors): comments, key-by-key merging of a user's override with unknown keys refused, and
named range checks. numpy-free, import-light."""

from __future__ import annotations

import copy
import json
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["packaged_json", "strip_comments", "merge", "read_override", "number"]


def packaged_json(name: str) -> dict[str, Any]:
    """A JSON file of the ``layerseg.data`` package as a fresh dict, comments removed."""
    return strip_comments(json.loads(resources.files("layerseg.data").joinpath(name).read_text()))


def strip_comments(d):
    """Drop every key starting with ``_`` (``_doc`` comments), recursively."""
    if isinstance(d, dict):
        return {k: strip_comments(v) for k, v in d.items() if not str(k).startswith("_")}
    return d


def merge(base: dict, over: dict, path: str = "", src=None, open_keys: tuple[str, ...] = ()
          ) -> dict:
    """`over` merged into a copy of `base` key by key; unknown keys raise `ConfigError`.

    Parameters
    ----------
    open_keys : tuple of str
        Dotted paths of mappings whose keys are free (a thickness table naming a new region):
        anything below them is taken as given, and checked by the caller.
    """
    out = copy.deepcopy(base)
    for k, v in over.items():
        if str(k).startswith("_"):
            continue
        where = f"{path}.{k}" if path else str(k)
        if k not in base:
            if any(path == o or path.startswith(o + ".") for o in open_keys):
                out[k] = strip_comments(copy.deepcopy(v))
                continue
            raise ConfigError(f"unknown configuration key {where!r}; known keys here: "
                              f"{sorted(base)}", src)
        if isinstance(base[k], dict) and not isinstance(v, dict):
            raise ConfigError(f"configuration key {where!r} must be a mapping, got {v!r}", src)
        if isinstance(base[k], dict):
            out[k] = merge(base[k], v, where, src, open_keys)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_override(config) -> tuple[dict | None, Path | None]:
    """An override given as None, a dict, or the path of a JSON file: ``(mapping, source)``."""
    if config is None:
        return None, None
    src = None
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
    return over, src


def number(v, where: str, src=None, lo: float | None = None, hi: float | None = None,
           allow_zero: bool = True) -> float:
    """`v` as a finite float within ``[lo, hi]`` (and non-zero unless `allow_zero`), or a
    `ConfigError` naming `where`."""
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
