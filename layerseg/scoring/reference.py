"""Reference ranges from published data, z-scores, the layered aging profile and an optional,
explicitly weighted composite index.

The ranges live in ``layerseg/data/reference_ranges.json`` (versioned; every range carries its
source and sample size; published data only, never simulated data). A marker of a frame is matched
on marker, layer, site (the frame's region name as given, then its canonical region), sex and age
band; the most specific match wins (sex-specific over both-sex, age-banded over whole-study).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from ..layers.profiles import canonical_region

__all__ = ["ReferenceRanges", "load_reference_ranges", "normalise_sex", "aging_profile",
           "composite_index", "Z_LIMIT"]

Z_LIMIT = 1.96
"""|z| above which a marker is reported outside its reference range (the central 95 % of a
normal reference population)."""


def normalise_sex(sex) -> str | None:
    """'M', 'F' or None from common spellings (m/male/man, f/female/woman)."""
    if sex is None:
        return None
    s = str(sex).strip().lower()
    if s in ("m", "male", "man", "men"):
        return "M"
    if s in ("f", "female", "woman", "women", "w"):
        return "F"
    return None


def _site_key(name) -> str | None:
    if name is None or str(name).strip() == "":
        return None
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


@dataclass(frozen=True)
class ReferenceRanges:
    """Loaded reference ranges.

    Attributes
    ----------
    version : str
    ranges : tuple of dict
        Each with marker, layer, site, region, sex, age_min, age_max, mean, sd, n, source.
    sources : dict
        Source key -> citation, doi, url, population, method, confidence.
    path : str
    """

    version: str
    ranges: tuple
    sources: dict
    path: str

    def find(self, marker: str, layer: str, region: str | None, sex=None, age=None
             ) -> tuple[dict | None, str | None]:
        """The best-matching range, or ``(None, reason)``.

        Parameters
        ----------
        marker, layer : str
            Marker column name and layer name (``skin`` for frame-level skin markers).
        region : str or None
            The frame's region name as given (matched first) or any alias.
        sex : str or None
        age : float or None
            Years.
        """
        cand = [r for r in self.ranges if r["marker"] == marker and r["layer"] == layer]
        if not cand:
            return None, f"no published reference range for {layer} {marker}"
        keys = []
        raw = _site_key(region)
        if raw is not None:
            keys.append(raw)
            canon = canonical_region(raw, strict=False)
            if canon != "default" and canon not in keys:
                keys.append(canon)
        if not keys:
            return None, "region unknown; reference ranges are per site"
        sx = normalise_sex(sex)
        for key in keys:
            site = [r for r in cand if r["region"] == key]
            if not site:
                continue
            best, best_rank, why = None, -1, None
            for r in site:
                if r["sex"] is not None and r["sex"] != sx:
                    why = why or ("sex unknown; ranges here are sex-specific" if sx is None
                                  else f"no range for sex {sx}")
                    continue
                banded = r["age_min"] is not None or r["age_max"] is not None
                if banded:
                    if age is None or not math.isfinite(float(age)):
                        why = "age unknown; ranges here are per age band"
                        continue
                    lo = -math.inf if r["age_min"] is None else r["age_min"]
                    hi = math.inf if r["age_max"] is None else r["age_max"]
                    if not lo <= float(age) < hi:
                        why = why or f"age {float(age):g} outside the published age bands"
                        continue
                rank = (r["sex"] is not None) * 2 + banded
                if rank > best_rank:
                    best, best_rank = r, rank
            if best is not None:
                return best, None
            return None, why
        return None, f"no published reference range for {layer} {marker} at region {keys[0]!r}"

    def zscore(self, value, marker, layer, region, sex=None, age=None
               ) -> tuple[float | None, str | None, str | None]:
        """``(z, range_id, reason)``; z is None (with a reason) where no range applies or the
        value is empty."""
        r, why = self.find(marker, layer, region, sex, age)
        if r is None:
            return None, None, why
        if value is None or not math.isfinite(float(value)):
            return None, None, f"{marker} is empty"
        rid = f"{r['source']}:{r['region']}:{r['sex'] or 'all'}"
        if r["age_min"] is not None or r["age_max"] is not None:
            rid += f":{r['age_min']}-{r['age_max']}"
        return (float(value) - r["mean"]) / r["sd"], rid, None


def _validate(doc: dict, path: str) -> ReferenceRanges:
    need = ("marker", "layer", "site", "region", "sex", "age_min", "age_max", "mean", "sd", "n",
            "source")
    if "version" not in doc or "ranges" not in doc or "sources" not in doc:
        raise ConfigError("reference ranges need 'version', 'sources' and 'ranges'", path)
    for i, r in enumerate(doc["ranges"]):
        miss = [k for k in need if k not in r]
        if miss:
            raise ConfigError(f"range {i} lacks {miss}", path)
        if r["source"] not in doc["sources"]:
            raise ConfigError(f"range {i} cites unknown source {r['source']!r}", path)
        if not (isinstance(r["n"], int) and r["n"] > 0):
            raise ConfigError(f"range {i} needs its sample size n (a positive integer)", path)
        if not (r["sd"] > 0):
            raise ConfigError(f"range {i} needs a positive SD", path)
        if r["sex"] not in (None, "M", "F"):
            raise ConfigError(f"range {i}: sex must be 'M', 'F' or null", path)
    return ReferenceRanges(str(doc["version"]), tuple(doc["ranges"]), dict(doc["sources"]), path)


@lru_cache(maxsize=4)
def _load_packaged() -> ReferenceRanges:
    f = resources.files("layerseg.data").joinpath("reference_ranges.json")
    with f.open() as fh:
        return _validate(json.load(fh), str(f))


def load_reference_ranges(path: str | Path | None = None) -> ReferenceRanges:
    """Load reference ranges (default: the packaged, versioned file).

    A user file must follow the same layout, published data only; every range needs a source
    (key into ``sources``) and its sample size ``n``. Raises `ConfigError` otherwise.
    """
    if path is None:
        return _load_packaged()
    p = Path(path)
    try:
        with open(p) as fh:
            doc = json.load(fh)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read reference ranges ({e})", p) from e
    return _validate(doc, str(p))


def aging_profile(long_table: pd.DataFrame, z_limit: float = Z_LIMIT) -> pd.DataFrame:
    """The layered aging profile: every marker outside its reference range, per frame and layer.

    Parameters
    ----------
    long_table : DataFrame
        A long score table (``FrameScores.to_long()`` or `score_dataset` output) with
        ``<marker>_z`` columns.
    z_limit : float
        |z| above which a marker is outside its range.

    Returns
    -------
    DataFrame
        Columns ``id``, ``layer``, ``marker``, ``value``, ``z``, ``direction`` ('above' or
        'below'), ``reference``; one row per marker outside range (empty when none).
    """
    rows = []
    zcols = [c for c in long_table.columns if c.endswith("_z")]
    for _, r in long_table.iterrows():
        for zc in zcols:
            z = r[zc]
            if z is None or pd.isna(z) or abs(z) <= z_limit:
                continue
            marker = zc[:-2]
            rows.append({"id": r.get("id"), "layer": r.get("layer"), "marker": marker,
                         "value": r.get(marker), "z": float(z),
                         "direction": "above" if z > 0 else "below",
                         "reference": r.get(f"{marker}_ref")})
    return pd.DataFrame(rows, columns=["id", "layer", "marker", "value", "z", "direction",
                                       "reference"])


def composite_index(z_by_marker: dict[str, float | None], weights: dict[str, float]
                    ) -> tuple[float | None, str | None]:
    """An explicitly weighted composite of z-scores: ``sum(w z) / sum(|w|)`` over the weighted
    markers that have a z-score.

    There is no default weighting: a composite index is only as meaningful as the weights the user
    chooses and documents (for example ``{"dermis:thickness_mean_mm": -1.0}`` so that a thinner
    dermis raises the index). Keys are ``"<layer>:<marker>"``.

    Returns
    -------
    (index, reason) : (float or None, str or None)
        None with the reason when no weighted marker has a z-score.
    """
    num = den = 0.0
    missing = []
    for key, w in weights.items():
        z = z_by_marker.get(key)
        if z is None or not math.isfinite(z):
            missing.append(key)
            continue
        num += float(w) * z
        den += abs(float(w))
    if den == 0:
        return None, "no weighted marker has a z-score: " + ", ".join(missing)
    return num / den, ("without " + ", ".join(missing)) if missing else None
