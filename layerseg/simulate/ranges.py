"""Per-frame parameter ranges of the simulator (``layerseg/data/sim_ranges.json``).

``default`` is today's simulator (coded in `layerseg.simulate.core.simulate_frame`, kept
bit-for-bit); ``wide`` draws the probe (centre frequency, bandwidth, F-number, focus), the
display chain (TGC, gain, dynamic range, grey map, noise floor) and each layer's backscatter,
scatterer density and interface echoes from the distributions of the data file, whose entries
each say where the range comes from. ``wide_faint`` is ``wide`` with the superficial fat
nearly as bright as the dermis (a set's ``base`` and ``override`` in the file).
"""

from __future__ import annotations

import copy
import json
import math
from functools import lru_cache
from importlib import resources

import numpy as np

from ..errors import ConfigError

__all__ = ["RANGES", "ranges_table", "range_spec", "draw_value", "draw_wide"]

RANGES: tuple[str, ...] = ("default", "wide", "wide_faint")
"""Names accepted by ``simulate_frame(ranges=...)`` and ``layerseg simulate --ranges``. Every
name but ``default`` draws its settings per frame (`draw_wide`)."""


@lru_cache(maxsize=1)
def ranges_table() -> dict:
    """The parsed ``sim_ranges.json`` (cached; do not modify)."""
    with resources.files("layerseg.data").joinpath("sim_ranges.json").open() as f:
        t = json.load(f)
    for name in RANGES:
        if name not in t["ranges"]:
            raise ConfigError(f"sim_ranges.json lacks the range set {name!r}")
    return t


def range_spec(name: str = "wide") -> dict:
    """The distributions of one drawn range set, with a ``base`` set's entries resolved.

    Parameters
    ----------
    name : str
        A name of `RANGES` other than ``default``.

    Returns
    -------
    dict
        Groups as in ``wide`` (``acoustics``, ``layers``, ``specular_db``, ``texture_db``,
        ``display``, ``textures``): the base set's, with the set's ``override`` entries
        replacing those of the same group and key (a new copy; the table is not changed).

    Raises
    ------
    ConfigError
        An unknown name, ``default`` (not drawn), or an override naming an entry the base lacks
        (which would change the draw order).
    """
    t = ranges_table()["ranges"]
    if name not in RANGES or name == "default":
        raise ConfigError(f"range set must be one of {RANGES[1:]}, got {name!r}")
    entry = t[name]
    if "base" not in entry:
        return copy.deepcopy(entry)
    out = range_spec(entry["base"])
    _override(out, entry.get("override", {}), f"ranges.{name}.override")
    return out


def _override(base: dict, over: dict, where: str) -> None:
    for k, v in over.items():
        if k not in base:
            raise ConfigError(f"sim_ranges.json {where} names {k!r}, which its base set lacks")
        if isinstance(v, dict) and "dist" not in v:
            _override(base[k], v, f"{where}.{k}")
        else:
            base[k] = v


def draw_value(spec: dict, rng: np.random.Generator, drawn: dict | None = None) -> float:
    """Draw one value from a range entry.

    Parameters
    ----------
    spec : dict
        ``{"dist": "uniform" | "loguniform", "low": a, "high": b}``, optionally
        ``"relative_to": "group.key"`` (the draw is added to that already drawn value).
    rng : numpy Generator
    drawn : dict, optional
        Values drawn so far, nested as ``{group: {key: value}}`` (for ``relative_to``).

    Returns
    -------
    float
    """
    lo, hi = float(spec["low"]), float(spec["high"])
    if not lo <= hi:
        raise ConfigError(f"range low {lo} exceeds high {hi}")
    dist = spec.get("dist", "uniform")
    if dist == "uniform":
        v = float(rng.uniform(lo, hi))
    elif dist == "loguniform":
        if lo <= 0:
            raise ConfigError(f"a loguniform range needs low > 0, got {lo}")
        v = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    else:
        raise ConfigError(f"unknown distribution {dist!r} (uniform, loguniform)")
    rel = spec.get("relative_to")
    if rel:
        group, key = rel.split(".", 1)
        try:
            v += float(drawn[group][key])
        except (KeyError, TypeError):
            raise ConfigError(f"relative_to {rel!r} names a value not drawn before") from None
    return v


def draw_wide(rng: np.random.Generator, name: str = "wide") -> dict:
    """Draw one frame's settings of a drawn range set (``wide`` or one based on it).

    Parameters
    ----------
    rng : numpy Generator
    name : str
        The range set (`range_spec`).

    Returns
    -------
    dict
        ``acoustics`` (frequency_mhz, fractional_bandwidth, f_number, focus_below_skin_mm,
        noise_db, tgc_db_cm_mhz, gain_db, dynamic_range_db, display_gamma), ``layers`` ({layer:
        {backscatter_db and/or per_cell}}, overriding ``sim_anatomy.json``), ``specular_db``
        ({interface: dB}), ``texture_db``, ``display`` (``envelope_smoothing``: sigma of the
        envelope's low-pass as a fraction of the speckle FWHM, drawn from a child stream of
        `rng`) and ``textures`` (`layerseg.simulate.textures.Textures` magnitudes, from a
        second child stream). Draw order is the file's order, so the same generator state gives
        the same values.
    """
    w = range_spec(name)
    out: dict = {"acoustics": {}, "layers": {}, "specular_db": {}}
    for k, spec in w["acoustics"].items():
        out["acoustics"][k] = draw_value(spec, rng)
    flat: dict = {}
    for ly, entries in w["layers"].items():
        out["layers"][ly] = {}
        for k, spec in entries.items():
            v = draw_value(spec, rng, flat)
            out["layers"][ly][k] = v
            flat.setdefault(ly, {})[k] = v
    for k, spec in w["specular_db"].items():
        out["specular_db"][k] = draw_value(spec, rng)
    out["texture_db"] = draw_value(w["texture_db"], rng)
    # the display settings come from a child stream: adding one leaves every draw above, and
    # everything the frame draws after, as it was
    display = child_rng(rng)
    out["display"] = {k: draw_value(spec, display) for k, spec in w.get("display", {}).items()}
    # the textures' magnitudes come from a second child stream, for the same reason
    tex = child_rng(rng)
    out["textures"] = {k: draw_value(spec, tex) for k, spec in w.get("textures", {}).items()
                       if isinstance(spec, dict)}
    return out


def child_rng(rng: np.random.Generator) -> np.random.Generator:
    """An independent stream derived from `rng`'s seed sequence without drawing from `rng`
    (``Generator.spawn``: the same child for the same seed and spawn count).

    Raises
    ------
    ConfigError
        `rng` was made without a seed sequence (so no independent child can be derived).
    """
    try:
        return rng.spawn(1)[0]
    except (AttributeError, TypeError, ValueError) as e:
        from ..errors import ConfigError
        raise ConfigError("the simulator's random generator must come from a seed sequence "
                          "(numpy.random.default_rng(seed)); it derives independent streams "
                          f"from it ({e})") from None
