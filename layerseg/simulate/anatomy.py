"""Anatomy of simulated subjects: per-layer thickness by facial region, sex and age, layer presence
and the aging markers (SLEB, upper/lower dermis echo ratio), drawn from the reference table
``layerseg/data/sim_anatomy.json`` (sources in ``sim_anatomy.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

from ..errors import ConfigError
from ..layers.profiles import canonical_region, get_profile
from .ranges import draw_value

__all__ = ["SIM_REGIONS", "ANATOMY_VARIANTS", "anatomy_table", "Anatomy", "draw_anatomy",
           "layer_acoustics", "sleb_probability"]

SIM_REGIONS: tuple[str, ...] = ("forehead", "temple", "zygoma", "cheek", "nasolabial", "chin",
                                "jaw")
"""Regions with anatomy in the table (the ``default`` profile draws as ``cheek``)."""

ANATOMY_VARIANTS: tuple[str, ...] = ("default", "varied", "decoupled")
"""Names accepted by ``draw_anatomy(variant=...)`` and ``layerseg simulate --anatomy``:
``default`` draws the regions' table as it is, ``varied`` replaces layer presence and scales
layer thicknesses, ``decoupled`` replaces layer presence and draws each layer's thickness from
one range for every region (``variants`` of ``sim_anatomy.json``)."""


@lru_cache(maxsize=1)
def anatomy_table() -> dict:
    """The parsed ``sim_anatomy.json`` (cached; do not modify)."""
    with resources.files("layerseg.data").joinpath("sim_anatomy.json").open() as f:
        t = json.load(f)
    for r in SIM_REGIONS:
        if r not in t["regions"]:
            raise ConfigError(f"sim_anatomy.json lacks region {r!r}")
    for v in ANATOMY_VARIANTS[1:]:
        if v not in t.get("variants", {}):
            raise ConfigError(f"sim_anatomy.json lacks the anatomy variant {v!r}")
    return t


def layer_acoustics(layer: str) -> dict:
    """Sound speed (m/s), attenuation (dB/cm/MHz), backscatter (dB) and scatterers per resolution
    cell of a layer (or ``gel``)."""
    return anatomy_table()["acoustic"][layer]


@dataclass
class Anatomy:
    """One frame's anatomy (before lateral variation).

    Attributes
    ----------
    region : str
    profile : tuple of str
        Layer order from the skin down.
    thickness_mm : dict
        Mean anatomical thickness per profile layer (0 = absent); bone has none (it fills the
        image under its surface).
    bone_present, bone_partial : bool
    sleb_mm : float
        Anatomical thickness of the subepidermal low-echogenic band (0 = none).
    upper_lower_dermis_db : float
        Echogenicity of the upper dermis relative to the lower dermis (dB, <= 0 with age).
    sun_exposure : float
        0-1, scales the SLEB.
    """

    region: str
    age: float
    sex: str
    profile: tuple[str, ...]
    thickness_mm: dict = field(default_factory=dict)
    bone_present: bool = False
    bone_partial: bool = False
    sleb_mm: float = 0.0
    upper_lower_dermis_db: float = 0.0
    sun_exposure: float = 0.0


def _ramp(age, a0, a1):
    return float(np.clip((age - a0) / (a1 - a0), 0.0, 1.0))


def sleb_probability(age: float) -> float:
    """Probability that a subject of `age` shows a SLEB (table ``aging.sleb``)."""
    s = anatomy_table()["aging"]["sleb"]
    return s["prevalence_max"] * _ramp(age, s["prevalence_start_age"], s["prevalence_full_age"])


def draw_anatomy(region: str | None, age: float, sex: str, rng: np.random.Generator, *,
                 missing_muscle: bool | None = None, missing_deep_fat: bool | None = None,
                 bone: bool | None = None, partial_bone: bool | None = None,
                 variant: str = "default") -> Anatomy:
    """Draw one frame's anatomy.

    Parameters
    ----------
    region : str or None
        Facial region (alias allowed); None or ``default`` draws as ``cheek``.
    age : float
        Years, 10-100.
    sex : {'F', 'M'}
    rng : numpy Generator
    missing_muscle, missing_deep_fat, bone, partial_bone : bool or None
        Force a variation; None draws it from the table's presence probabilities.
    variant : {'default', 'varied', 'decoupled'}
        ``default`` draws the region's table (same rng stream as before variants existed);
        ``varied`` draws presence from the variant's probabilities (every region alike) and
        multiplies each of its ``scaled_layers``' thickness by a factor drawn per layer;
        ``decoupled`` draws presence the same way and each of its ``thickness_mm`` layers'
        anatomical thickness from that range, in every region, with no aging
        (``sim_anatomy.json`` ``variants``). Forced variations still win.

    Returns
    -------
    Anatomy
    """
    if sex not in ("F", "M"):
        raise ConfigError(f"sex must be 'F' or 'M', got {sex!r}")
    if not (10.0 <= float(age) <= 100.0):
        raise ConfigError(f"age must lie in 10-100 years, got {age}")
    if variant not in ANATOMY_VARIANTS:
        raise ConfigError(f"anatomy variant must be one of {ANATOMY_VARIANTS}, got {variant!r}")
    name = canonical_region(region)
    key = "cheek" if name == "default" else name
    prof = get_profile(name)
    t = anatomy_table()
    reg = t["regions"][key]
    ag = t["aging"]
    var = None if variant == "default" else t["variants"][variant]
    an = Anatomy(name, float(age), sex, prof.layers)
    for layer in prof.layers:
        if layer == "bone":
            continue
        e = reg[layer]
        mean, sd = e[sex]
        th = max(0.05 * mean, rng.normal(mean, sd))
        if e["basis"] == "apparent":
            th *= layer_acoustics(layer)["sound_speed_m_s"] / 1540.0
        # aging
        if layer == "dermis":
            sl = ag["dermis_slope_per_year"][sex].get(key, 0.0)
            th *= max(0.5, 1.0 + sl * max(0.0, age - ag["dermis_slope_per_year"]["from_age"]))
        elif layer == "deep_fat":
            d = ag["deep_fat_loss"]
            frac = d["fraction"].get(key, d["fraction"]["default"])
            th *= 1.0 - frac * _ramp(age, d["from_age"], d["to_age"])
        elif layer == "smas":
            d = ag["smas_loss"]
            th *= 1.0 - d["fraction"] * _ramp(age, d["from_age"], d["to_age"])
        elif layer == "fat":
            d = ag["fat_change"]
            th *= 1.0 + d["fraction"].get(key, 0.0) * _ramp(age, d["from_age"], d["to_age"])
        p = e.get("p_present", 1.0)
        if var is not None:
            p = var["p_present"].get(layer, p)
            if layer in var.get("scaled_layers", ()):
                th *= draw_value(var["thickness_scale"], rng)
            if layer in var.get("thickness_mm", {}):
                th = draw_value(var["thickness_mm"][layer], rng)
        present = rng.random() < p
        if layer == "muscle" and missing_muscle is not None:
            present = not missing_muscle
        if layer == "deep_fat" and missing_deep_fat is not None:
            present = not missing_deep_fat
        an.thickness_mm[layer] = float(th) if present else 0.0
    b = reg["bone"]
    p_bone = b["p_present"] if var is None else var["bone_p_present"]
    an.bone_present = bool(rng.random() < p_bone) if bone is None else bool(bone)
    an.bone_partial = (bool(rng.random() < b["p_partial"]) if partial_bone is None
                       else bool(partial_bone)) and an.bone_present
    an.sun_exposure = float(rng.uniform(0.0, 1.0))
    s = ag["sleb"]
    if rng.random() < sleb_probability(age):
        an.sleb_mm = float((s["thickness_base_mm"] + s["thickness_per_year_mm"]
                            * max(0.0, age - s["start_age"])) * (0.5 + an.sun_exposure))
    an.upper_lower_dermis_db = float(ag["upper_lower_dermis_db_per_year"] * max(0.0, age - 20.0))
    return an
