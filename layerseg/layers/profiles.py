"""The label map and the per-region layer order (region profiles).

The label map is fixed (DESIGN.md): 0 background, 1 epidermis (entry echo as imaged), 2 dermis,
3 fat (superficial), 4 smas, 5 deep_fat, 6 muscle, 7 bone. The order of layers from the skin down
depends on the facial region and lives in ``layerseg/data/region_profiles.json``, not in code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..errors import ProfileError

__all__ = ["LABELS", "LABEL_NAMES", "LABEL_INDEX", "N_LABELS", "Profile", "get_profile",
           "region_names", "canonical_region", "resolve_profile"]

LABEL_NAMES: tuple[str, ...] = ("background", "epidermis", "dermis", "fat", "smas", "deep_fat",
                                "muscle", "bone")
"""Label names by index."""
LABEL_INDEX: dict[str, int] = {n: i for i, n in enumerate(LABEL_NAMES)}
"""Label index by name."""
LABELS = LABEL_INDEX
N_LABELS = len(LABEL_NAMES)


@dataclass(frozen=True)
class Profile:
    """The layer order of one region.

    Attributes
    ----------
    region : str
        Canonical region name (``default`` when unknown).
    layers : tuple of str
        Layer names from the skin down (K layers).
    labels : tuple of int
        Their label indices, same order.
    """

    region: str
    layers: tuple[str, ...]
    labels: tuple[int, ...]

    @property
    def n_layers(self) -> int:
        """K, the number of layers; a column holds K + 1 surfaces."""
        return len(self.layers)

    def position(self, layer: str | int) -> int:
        """Index of a layer (name or label) within the profile."""
        lab = LABEL_INDEX[layer] if isinstance(layer, str) else int(layer)
        try:
            return self.labels.index(lab)
        except ValueError:
            raise ProfileError(f"layer {layer!r} is not in the {self.region} profile "
                               f"{self.layers}") from None


@lru_cache(maxsize=1)
def _table() -> dict:
    with resources.files("layerseg.data").joinpath("region_profiles.json").open() as f:
        t = json.load(f)
    for name, layers in t["profiles"].items():
        unknown = [x for x in layers if x not in LABEL_INDEX or x == "background"]
        if unknown or len(set(layers)) != len(layers):
            raise ProfileError(f"region profile {name!r} in region_profiles.json is malformed: "
                               f"{layers}")
    return t


def region_names() -> tuple[str, ...]:
    """Canonical region names that have a profile (``default`` first)."""
    return tuple(_table()["profiles"])


def canonical_region(region: str | None, strict: bool = True) -> str:
    """Map a region name or alias to its canonical name; None or '' -> ``default``.

    An unknown name raises `ProfileError` when `strict`, else maps to ``default``.
    """
    if region is None or str(region).strip() == "":
        return "default"
    key = str(region).strip().lower().replace(" ", "_").replace("-", "_")
    t = _table()
    if key in t["profiles"]:
        return key
    if key in t["aliases"]:
        return t["aliases"][key]
    if strict:
        raise ProfileError(f"unknown facial region {region!r}; known regions: "
                           f"{', '.join(t['profiles'])} (aliases: {', '.join(t['aliases'])})")
    return "default"


def get_profile(region: str | None = None, strict: bool = True) -> Profile:
    """The layer profile of a region (None -> ``default``).

    Parameters
    ----------
    region : str or None
        Region name or alias (see `region_names`).
    strict : bool
        Raise `ProfileError` for an unknown region (default); otherwise use ``default``.
    """
    name = canonical_region(region, strict)
    layers = tuple(_table()["profiles"][name])
    return Profile(name, layers, tuple(LABEL_INDEX[x] for x in layers))


def resolve_profile(region: str | None) -> tuple[Profile, str | None]:
    """The profile of a region, with the default for a name the profiles do not know.

    DESIGN.md: unknown region means the default. Every command takes its profile through this
    function, so an unknown, empty or misspelt region is treated alike everywhere: the default
    layer order, and a note saying so for the QC flags.

    Parameters
    ----------
    region : str or None
        Region name or alias, as a file or manifest gives it.

    Returns
    -------
    profile : Profile
    note : str or None
        Why the default was used (None when the region is known, or was not given).
    """
    name = canonical_region(region, strict=False)
    given = region is not None and str(region).strip() != ""
    note = None
    if given and name == "default" and str(region).strip().lower() != "default":
        note = (f"region {str(region)!r} is not a known profile (known: "
                f"{', '.join(region_names())}); the default layer order was used")
    return get_profile(name), note
