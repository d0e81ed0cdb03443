"""Flat ratio keys of a ``layerseg bench speed`` run: every side-by-side comparison as one
``<suite>.<case>[.<dtype>].vs_<peer>[.<rows>x<cols>].speedup`` -> float (peer time / our time,
ours faster = above 1), plus ``pipeline.*.ratio`` (the batch command's frames/s over the
segmenter's) and ``growth.<case>.linearity.ratio`` (four times the pixels: 4 x our small-frame
time over our large-frame time, above 1 = cost grows slower than the pixels), and a Markdown
table of them.

The key without a size is the largest frame run; each size also has its own key.
"""

from __future__ import annotations

import re

__all__ = ["flat_ratios", "ratios_markdown", "BASELINE_KEYS"]

BASELINE_KEYS = {"scipy.ndimage.median_filter": "scipy", "uniform_filter stats": "numpy_reference",
                 "uniform_filter + shifts": "numpy_reference", "numpy srad": "numpy_reference",
                 "skimage fast_mode": "skimage"}
"""Baseline names of `layerseg.bench.filters` -> the peer part of the key."""


def _slug(s: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", s).strip("_").lower()


def _add(out: dict, base: str, shape, value, largest) -> None:
    if value is None:
        return
    out[f"{base}.{shape[0]}x{shape[1]}.speedup"] = float(value)
    if tuple(shape) == tuple(largest):
        out[f"{base}.speedup"] = float(value)


def flat_ratios(speed: dict) -> dict[str, float]:
    """The flat ratio keys of the ``suites`` block that ``layerseg bench speed`` writes."""
    out: dict[str, float] = {}
    suites = speed.get("suites", speed)
    f = suites.get("filters", {})
    if f.get("status") == "ok":
        res = f["results"]
        largest = max((tuple(s) for s in res["sizes"]), key=lambda s: s[0] * s[1])
        for r in res["results"]:
            name = _slug(r["filter"])
            peer = BASELINE_KEYS.get(r["baseline"], _slug(r["baseline"]))
            _add(out, f"filters.{name}.vs_{peer}", r["shape"], r["speedup"], largest)
            _add(out, f"filters.{name}.vs_findpeaks", r["shape"], r["findpeaks_speedup"], largest)
    s = suites.get("search", {})
    if s.get("status") == "ok":
        rows = s["results"]
        largest = max(((r["rows"], r["cols"]) for r in rows), key=lambda t: t[0] * t[1])
        for r in rows:
            sh = (r["rows"], r["cols"])
            _add(out, "search.vs_plain", sh, r["plain"] / r["numba"], largest)
            _add(out, "search.vs_vectorised", sh, r["vectorised"] / r["numba"], largest)
    sim = suites.get("simulate", {})
    if sim.get("status") == "ok" and sim["results"].get("speedup_same_phantom") is not None:
        out["simulate.vs_pymust.speedup"] = float(sim["results"]["speedup_same_phantom"])
    cv = suites.get("opencv", {})
    if cv.get("status") == "ok":
        res = cv["results"]
        largest = max((tuple(x) for x in res["sizes"]), key=lambda t: t[0] * t[1])
        for r in res["results"]:
            _add(out, f"filters.{r['filter']}.{r['dtype']}.vs_opencv", r["shape"], r["speedup"],
                 largest)
    pl = suites.get("pipeline", {})
    if pl.get("status") == "ok":
        # not speedups: the whole batch command's frames/s over the segmenter's alone (<= 1;
        # 1 = reading, scoring and writing cost nothing)
        res = pl["results"]
        out["pipeline.infer_vs_segment.ratio"] = float(res["infer_vs_segment"]["ratio"])
        out["pipeline.score_vs_segment.ratio"] = float(res["score_vs_segment"]["ratio"])
    md = suites.get("model", {})
    if md.get("status") == "ok":
        # frames/s of the exported graph over the eager network's, alone and through
        # layerseg.segment, and of the trained model end to end over the classical segmenter's
        res = md["results"]
        sh = tuple(res["shape"])
        fps = res["frames_per_s"]
        for case, peer in (("net_exported", "net_eager"), ("segment_exported", "segment_eager"),
                           ("segment_exported", "classical"), ("segment_eager", "classical")):
            name = "eager" if peer.endswith("eager") else peer
            _add(out, f"model.{case}.vs_{name}", sh, fps[case] / fps[peer], sh)
    dv = suites.get("device", {})
    if dv.get("status") == "ok":
        # the same network on one device: bf16/fp16 over fp32 and compiled over eager (same
        # batch), and each batch's frames/s over batch 1's (fp32, eager)
        res = dv["results"]
        dev = _slug(res["device"])
        fps = {(x["precision"], x["batch"], x["compiled"]): x["frames_per_s"]
               for x in res["results"]}
        for (prec, b, comp), v in fps.items():
            if prec != "fp32" and not comp and ("fp32", b, False) in fps:
                out[f"device.{dev}.{prec}.vs_fp32.b{b}.speedup"] = v / fps[("fp32", b, False)]
            if comp and (prec, b, False) in fps:
                out[f"device.{dev}.compiled_{prec}.vs_eager.b{b}.speedup"] = \
                    v / fps[(prec, b, False)]
            if prec == "fp32" and not comp and b > 1 and ("fp32", 1, False) in fps:
                out[f"device.{dev}.fp32.b{b}.vs_b1.speedup"] = v / fps[("fp32", 1, False)]
    gr = suites.get("growth", {})
    if gr.get("status") == "ok":
        # not a peer: our cost at the small size scaled by the pixel ratio over our cost at
        # the large size (1 = proportional to pixels, above 1 = grows slower)
        for name, r in gr["results"]["cases"].items():
            out[f"growth.{_slug(name)}.linearity.ratio"] = float(r["linearity"])
    return dict(sorted(out.items()))


def ratios_markdown(ratios: dict[str, float], title: str = "Speed ratios") -> str:
    """A two-column Markdown table (key, ratio), with a line on how to read it."""
    lines = [f"# {title}", "",
             "Peer time / our time (above 1: ours faster; below 1: the peer is faster).", "",
             "| comparison | speedup |", "|---|---|"]
    for k, v in ratios.items():
        lines.append(f"| `{k}` | {v:.2f}x |")
    return "\n".join(lines) + "\n"
