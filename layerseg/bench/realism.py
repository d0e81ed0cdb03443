"""The realism report of a labelled dataset folder: dermis and fat speckle size and the layers'
contrast, per frame and over the set (``layerseg bench realism``).

Speckle FWHM (axial, lateral, µm) comes from the 2-D autocovariance of the display (log) image
inside the eroded layer mask (`layerseg.simulate.realism.acf_fwhm`); contrast is
``(mean layer - mean dermis) / SD dermis`` on the grey image
(`layerseg.simulate.realism.frame_realism`). Any labelled folder of the DESIGN.md layout works:
simulated (default or wide ranges), another simulator's, or real frames with manual labels, so
a training set can be placed against the scanners it is meant to cover. Reference points (a
scanner's or a paper's figures) are drawn on the plot beside the frames.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

__all__ = ["run_realism", "format_realism", "frames_csv", "realism_plot", "parse_reference"]


def parse_reference(text: str) -> tuple[str, list[float]]:
    """``NAME:AXIAL_UM,LATERAL_UM,FAT_SD[,MUSCLE_SD]`` -> (name, [4 floats], NaN when absent).

    Raises
    ------
    ValueError
        Not of that form.
    """
    name, _, vals = str(text).partition(":")
    try:
        v = [float(x) for x in vals.split(",")] if vals else []
    except ValueError:
        v = []
    if not name or not 3 <= len(v) <= 4:
        raise ValueError(f"reference {text!r}: give NAME:AXIAL_UM,LATERAL_UM,FAT_SD[,MUSCLE_SD]")
    return name, v + [float("nan")] * (4 - len(v))


def run_realism(data: str | Path, max_frames: int | None = None) -> dict:
    """Measure every labelled frame of a dataset folder.

    Parameters
    ----------
    data : path
        Dataset folder (``manifest.csv`` with label maps).
    max_frames : int, optional
        Stop after this many frames.

    Returns
    -------
    dict
        ``frames``: one flat row per labelled frame (``id``, ``frequency_mhz`` when the truth
        records it, ``dermis_thickness_mm``, ``speckle_axial_um.<layer>``,
        ``speckle_lateral_um.<layer>``, ``contrast_sd.<layer>``); ``summary``: per measure
        ``n`` and the 5/25/50/75/95th percentiles (`layerseg.simulate.realism.summarise`);
        ``muscle_below_minus2_pct`` / ``muscle_above_0_pct`` (share of frames with muscle);
        ``failures``: frames that could not be measured, with why.
    """
    from ..batch import run_each
    from ..io.dataset import read_dataset
    from ..layers import get_profile
    from ..simulate.realism import frame_realism, summarise

    ds = read_dataset(data, check_values=False)
    n = len(ds) if max_frames is None else min(len(ds), max(0, int(max_frames)))
    ids = ds.ids[:n]

    def work(key):
        item = ds[key]      # read here: a frame that cannot be read is listed, not fatal
        if item.label is None:
            return None
        layers = get_profile(item.row.get("region") or None).layers
        r = frame_realism(item.frame.bmode, np.asarray(item.label), layers,
                          item.frame.spacing_mm)
        row = {"id": item.id, "frequency_mhz": (item.truth or {}).get("acoustics", {}).get(
            "frequency_mhz") if isinstance(item.truth, dict) else None,
            "dermis_thickness_mm": r["dermis_thickness_mm"]}
        for ly, (ax, la) in r["speckle_um"].items():
            row[f"speckle_axial_um.{ly}"], row[f"speckle_lateral_um.{ly}"] = ax, la
        for ly, c in r["contrast_sd"].items():
            row[f"contrast_sd.{ly}"] = c
        return r, row

    per, flat, failures = [], [], []
    for o in run_each(ids, work, key=str):
        if not o.ok:
            failures.append({"id": o.key, "error": o.error})
        elif o.value is not None:
            per.append(o.value[0])
            flat.append(o.value[1])
    out = {"data": str(data), "frames": flat, "summary": summarise(per) if per else {},
           "failures": failures}
    m = [r.get("contrast_sd.muscle") for r in flat]
    m = [c for c in m if c is not None and np.isfinite(c)]
    if m:
        out["muscle_below_minus2_pct"] = 100.0 * float(np.mean([c < -2 for c in m]))
        out["muscle_above_0_pct"] = 100.0 * float(np.mean([c > 0 for c in m]))
    return out


def format_realism(res: dict) -> str:
    """A Markdown table of `run_realism`'s summary (percentiles over frames)."""
    qs = (5, 25, 50, 75, 95)
    lines = [f"{len(res['frames'])} labelled frame(s) of {res['data']}; speckle FWHM from the "
             "log image's 2-D autocovariance inside the eroded layer mask (µm); contrast in "
             "dermis SDs", "", "| measure | n | " + " | ".join(f"p{q}" for q in qs) + " |",
             "|---|---|" + "---|" * len(qs)]
    for k in sorted(res["summary"]):
        d = res["summary"][k]
        lines.append(f"| {k} | {d['n']} | " + " | ".join(f"{d['p' + str(q)]:.2f}" for q in qs)
                     + " |")
    if "muscle_below_minus2_pct" in res:
        lines += ["", f"muscle below -2 dermis SDs in {res['muscle_below_minus2_pct']:.0f} % of "
                  f"the frames with muscle, above 0 in {res['muscle_above_0_pct']:.0f} %"]
    for f in res["failures"]:
        lines.append(f"\nframe {f['id']} not measured: {f['error']}")
    return "\n".join(lines)


def frames_csv(res: dict) -> str:
    """`run_realism`'s per-frame rows as CSV text (id first, then the measures by name)."""
    keys = sorted({k for r in res["frames"] for k in r}, key=lambda k: (k != "id", k))
    buf = io.StringIO()
    w = csv.DictWriter(buf, keys, lineterminator="\n")
    w.writeheader()
    w.writerows(res["frames"])
    return buf.getvalue()


def realism_plot(res: dict, path: str | Path, references=()) -> None:
    """Scatter plots of the frames (dermis speckle axial vs lateral FWHM; fat vs muscle
    contrast) with `references` ((name, [axial, lateral, fat, muscle]) from
    `parse_reference`) as stars, written as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    flat = res["frames"]
    fig, (p1, p2) = plt.subplots(1, 2, figsize=(11, 4.5))
    p1.scatter([r.get("speckle_axial_um.dermis", np.nan) for r in flat],
               [r.get("speckle_lateral_um.dermis", np.nan) for r in flat], s=8, alpha=0.6,
               label="frames")
    p2.scatter([r.get("contrast_sd.fat", np.nan) for r in flat],
               [r.get("contrast_sd.muscle", np.nan) for r in flat], s=8, alpha=0.6,
               label="frames")
    for name, (ra, rl, rf, rm) in references:
        p1.scatter([ra], [rl], marker="*", s=160, label=name)
        p2.scatter([rf], [rm if np.isfinite(rm) else 0.0], marker="*", s=160, label=name)
    p1.set(xlabel="dermis speckle axial FWHM (µm)", ylabel="lateral FWHM (µm)")
    p2.set(xlabel="fat contrast (dermis SDs)", ylabel="muscle contrast (dermis SDs)")
    p1.legend(fontsize=7)
    p2.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    from ..io.safe_write import atomic_write
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue())
