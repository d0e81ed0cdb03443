"""Markers against age on a simulated cohort: a consistency check of the simulator and the scorer.

Simulates a cohort spanning 20-80 years (`layerseg.simulate.simulate_dataset`, DESIGN.md layout),
scores it from its ground-truth labels with `layerseg.scoring.score_dataset` (the same path as
``layerseg score``), plots the aging markers against age (one PNG), and checks that every marker
the simulator ages moves in the direction the simulator ages it. The expected directions are
read from the simulator's own tables (``sim_anatomy.json`` aging block, ``sim_stiffness.json``
age slopes), so this checks the two modules against each other; it validates neither against
real data.

Usage::

    python scripts/markers_vs_age.py --n 160 --out markers_vs_age.png [--workers 2] [--seed 7]
    python scripts/markers_vs_age.py --n 120 --region zygoma --out zygoma.png

Results when written (2026-11-23, seed 7): all seven regions, 160 frames: six markers consistent,
dermis thickness not resolved (a few subjects per region and sex; the truth's own slopes scatter
around the simulator's small -0.02..-0.05 mm/decade); zygoma only, 120 frames: all seven
consistent (dermis -0.034 mm/decade, SLEB +0.025 mm/decade, upper/lower dermis ratio -0.037/decade,
deep fat -0.11 mm/decade, SMAS -0.037 mm/decade, dermis SWE -1.4 kPa/decade, deep fat SWE
-0.68 kPa/decade).

The direction of each marker is the age slope of an ordinary least-squares fit
``marker ~ age + region + sex`` (regions and sexes differ far more than a decade of aging does, so
a pooled correlation would mostly show the cohort's mix); its 95 % interval decides the verdict:
"consistent" (interval on the simulator's side of 0), "AGAINST" (interval on the other side), or
"not resolved" (interval spans 0). Frames of one subject are not independent, so the intervals are
optimistic. Exit status 1 when any marker is AGAINST, else 0. Nothing is downloaded; everything is written under --work
(default: a temporary folder) and the PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr, t as student_t


def age_slope(d: pd.DataFrame, col: str) -> tuple[float, float, float]:
    """OLS slope of `col` on age (per decade) adjusted for region and sex, with its 95 % CI."""
    X = [np.ones(len(d)), d["age"].to_numpy(float) / 10.0]
    for name in ("region", "sex"):
        levels = sorted(d[name].dropna().unique())
        for lv in levels[1:]:
            X.append((d[name] == lv).to_numpy(float))
    X = np.column_stack(X)
    y = d[col].to_numpy(float)
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    dof = len(y) - X.shape[1]
    if dof < 3:
        return float(beta[1]), np.nan, np.nan
    resid = y - X @ beta
    cov = resid @ resid / dof * np.linalg.pinv(X.T @ X)
    half = student_t.ppf(0.975, dof) * np.sqrt(cov[1, 1])
    return float(beta[1]), float(beta[1] - half), float(beta[1] + half)


def expected_directions() -> dict[str, tuple[int, str]]:
    """Wide-table column -> (+1 rises / -1 falls with age, why), from the simulator's tables."""
    data = resources.files("layerseg.data")
    an = json.loads(data.joinpath("sim_anatomy.json").read_text())["aging"]
    st = json.loads(data.joinpath("sim_stiffness.json").read_text())["layers"]
    sign = lambda v: int(np.sign(v))  # noqa: E731
    slopes = [v for sex in an["dermis_slope_per_year"].values() if isinstance(sex, dict)
              for v in sex.values()]
    exp = {
        "dermis_thickness_mean_mm": (sign(np.mean(slopes)), "aging.dermis_slope_per_year"),
        "sleb_thickness_mm": (sign(an["sleb"]["thickness_per_year_mm"]),
                              "aging.sleb (prevalence and thickness grow)"),
        "dermis_echo_ratio_upper_lower": (sign(an["upper_lower_dermis_db_per_year"]),
                                          "aging.upper_lower_dermis_db_per_year"),
        "deep_fat_thickness_mean_mm": (-sign(np.mean(list(an["deep_fat_loss"]["fraction"]
                                                          .values()))), "aging.deep_fat_loss"),
        "smas_thickness_mean_mm": (-sign(an["smas_loss"]["fraction"]), "aging.smas_loss"),
    }
    for layer in ("dermis", "deep_fat"):
        exp[f"{layer}_stiffness_median_kpa"] = (sign(st[layer]["age_slope_per_year"]),
                                                f"sim_stiffness {layer}.age_slope_per_year")
    return exp


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=160, help="frames in the cohort")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("markers_vs_age.png"))
    ap.add_argument("--work", type=Path, default=None, help="folder for the dataset and tables")
    ap.add_argument("--shape", type=int, nargs=2, default=(512, 512), metavar=("ROWS", "COLS"))
    ap.add_argument("--region", default=None,
                    help="simulate one region only (default: several per subject)")
    args = ap.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from layerseg.scoring import score_dataset
    from layerseg.simulate import simulate_dataset

    work = args.work or Path(tempfile.mkdtemp(prefix="markers_vs_age_"))
    data = work / "cohort"
    if not (data / "manifest.csv").is_file():
        simulate_dataset(data, args.n, seed=args.seed, age_range=(20, 80), workers=args.workers,
                         progress=False, shape=tuple(args.shape), region=args.region)
    wide_path = work / "scores_wide.csv"
    rc = score_dataset(data, work / "scores.csv", wide=wide_path,
                       log=lambda m: print(m, file=sys.stderr))
    wide = pd.read_csv(wide_path)
    wide = wide[wide["frame_status"] == "scored"].copy()
    wide["sleb_present"] = wide["sleb_present"].astype(float)
    # a layer that runs into the image bottom has a truncated (lower-bound) thickness: left out
    for layer in ("dermis", "fat", "smas", "deep_fat", "muscle"):
        trunc = wide[f"{layer}_thickness_truncated"].astype(str).str.lower() == "true"
        wide.loc[trunc, f"{layer}_thickness_mean_mm"] = np.nan

    exp = expected_directions()
    panels = [("dermis_thickness_mean_mm", "dermis thickness (mm)"),
              ("sleb_thickness_mm", "SLEB thickness (mm, 0 = none)"),
              ("dermis_echo_ratio_upper_lower", "upper / lower dermis echo (grey ratio)"),
              ("deep_fat_thickness_mean_mm", "deep fat thickness (mm)"),
              ("smas_thickness_mean_mm", "SMAS thickness (mm)"),
              ("fat_thickness_mean_mm", "superficial fat thickness (mm)"),
              ("dermis_stiffness_median_kpa", "dermis SWE median (kPa)"),
              ("deep_fat_stiffness_median_kpa", "deep fat SWE median (kPa)"),
              ("fat_septa_per_mm", "fat septa per mm")]
    regions = sorted(wide["region"].dropna().unique())
    colours = dict(zip(regions, plt.cm.tab10.colors))
    fig, axes = plt.subplots(3, 3, figsize=(14, 11))
    rows = []
    for ax, (col, label) in zip(axes.ravel(), panels):
        d = wide[["age", "region", "sex", col]].dropna(subset=["age", "region", col])
        for reg, g in d.groupby("region"):
            ax.scatter(g["age"], g[col], s=12, color=colours[reg], label=reg, alpha=0.8)
        rho = spearmanr(d["age"], d[col]).statistic if len(d) > 3 else np.nan
        slope, lo, hi = age_slope(d, col) if len(d) > 5 else (np.nan, np.nan, np.nan)
        want = exp.get(col)
        verdict = ""
        if want is not None and np.isfinite(lo):
            if (lo > 0 and want[0] > 0) or (hi < 0 and want[0] < 0):
                verdict = "consistent"
            elif (lo > 0 and want[0] < 0) or (hi < 0 and want[0] > 0):
                verdict = "AGAINST the simulator"
            else:
                verdict = "not resolved"
            rows.append({"marker": col, "n": len(d), "slope_per_decade": slope,
                         "ci95_low": lo, "ci95_high": hi, "pooled_spearman_rho": rho,
                         "simulator_direction": "rises" if want[0] > 0 else "falls",
                         "source": want[1], "verdict": verdict})
        ax.set_title(f"{label}\nadjusted slope {slope:+.3g}/decade [{lo:+.2g}, {hi:+.2g}] "
                     f"{verdict}", fontsize=8)
        ax.set_xlabel("age (years)")
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle(f"Markers from ground-truth labels vs age, simulated cohort (n={len(wide)}, "
                 "layerseg.simulate): a consistency check, not a validation", fontsize=11)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    print(f"plot: {args.out}; tables under {work}")
    bad = table["verdict"].str.startswith("AGAINST").any() if len(table) else False
    return 1 if (bad or rc["failed"]) else 0


if __name__ == "__main__":
    sys.exit(main())
