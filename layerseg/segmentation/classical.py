"""The training-free classical segmenter: image features -> per-label scores -> ordered search.

Pipeline (every length in mm, converted with the frame's own spacing; every constant from the
configuration, `layerseg.segmentation.config`):

1. Display intensity. A ``display`` frame is used as is (grey 0-255); an ``envelope`` frame is
   log-compressed over its dynamic range (60 dB when unknown) onto 0-255.
2. Speckle filter from `layerseg.filters` (median by default) and a small Gaussian smoothing.
3. Normalisation, so gain and dynamic range drop out: ``n = (I - D) / (B - D)`` with D the
   1st percentile of the filtered frame and B the bright-tissue reference, the median over
   columns of each column's brightest ``reference_window_mm`` (the dermis, in practice).
4. Per-label scores, shape (8, rows, cols), higher is better, the sum of four explainable terms:

   * appearance: the Gaussian log-likelihood of n under each label's (mean, sd); bone is a
     two-mode model (its dark acoustic shadow and its very bright periosteal line);
   * edges: a signed axial-gradient reward placed on the *surfaces*. With E(d) the gradient of n
     (per mm) between rows d-1 and d, label k's score at row r gets ``w_k (E(r+1) - E(r))``; a
     layer on rows [a, b) then sums to ``w_k (E(b) - E(a))`` (a telescoping sum), so the surface
     between layer A above and B below earns ``(w_A - w_B) E(d)``: the weights choose, per pair of
     neighbours, whether the surface should sit where the image brightens (gel -> entry echo,
     fat -> SMAS, muscle -> bone) or darkens (dermis -> fat, SMAS -> deep fat). An absent layer
     (a = b) earns nothing;
   * texture: muscle's fibres make laterally long streaks; the streakiness (spread of a long
     lateral average over that of a short one) has a Gaussian model for the deep labels;
   * ridge: bright thin bands (the entry echo, the SMAS) earn their label
     ``w * max(0, -sigma^2 d2n/dz2)``;
   * shadow: ``below`` = the mean of n from a pixel to the frame bottom is near 0 only in a bone
     shadow: bone earns for it, the soft-tissue labels pay for it;
   * bone surface: a bone whose top is at row a earns ``weight * clip(e(a) - offset, 0, cap)``
     (telescoping, like the edges), with e = the brightest lightly smoothed value just below a
     (the periosteal echo) minus the mean of n 0.15-1 mm under it (the acoustic shadow). Below
     its top, bone is scored like deep tissue, so the line alone decides where bone begins, and
     a found bone is run on to the frame bottom after the search (nothing is seen under bone).
     (With ``bone_surface.appearance = "own"``: the bone's own two-mode appearance and a
     ``bone_cost`` per column charged on the last row);
   * deep tissue: from ``deep_tissue.start_mm`` below the skin guess, background is the
     unlabelled deep tissue under the deepest layer (DESIGN.md), scored as mid-grey tissue or
     the dark noise floor without muscle fibres, so the layers end where the muscle's fibres
     end instead of running to the frame bottom;
   * background depth: background below the first strong echo of a column (a rough skin guess:
     the first row whose next ``skin_guess.window_mm`` average exceeds a threshold) pays a
     penalty growing with depth, so the gel above the skin, not a dark deep layer, is background.

5. The ordered search (`layerseg.layers.ordered_search`) under the frame's region profile, with
   the per-layer thickness limits in mm of the configuration, and a jump limit from
   ``max_slope_deg`` (the largest surface slope, converted to rows per column with the spacing)
   on every surface but the last one when ``free_bottom_surface`` (the bottom of the deepest
   present layer steps where a bone begins or ends).
   The jump-limited search is a local optimum (`layerseg.layers.ordered_search`); when its total
   score falls more than ``smooth_fallback_per_column`` per column below the exact per-column
   answer, the per-column answer is kept and a QC flag says so.
6. Adaptation: each label's appearance (mean, sd) is re-estimated from the answer, blended with
   the prior, and the search is run again (``adapt.iterations`` rounds).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from numba import njit, prange
from scipy import ndimage as ndi

from .._nbmath import logaddexp
from ..frame import DEFAULT_DYNAMIC_RANGE_DB, Frame
from ..layers.profiles import LABEL_NAMES, N_LABELS, Profile
from ..layers.decode import SegmentationResult, decode
from .config import load_config
from .pipeline import frame_spacing, resample_to_shape, segment_with

__all__ = ["SegmentationResult", "segment_classical", "classical_scores", "label_scores",
           "frame_features", "input_grey", "working_frame"]

_EPS = 1e-6
_TISSUE_LABELS = ("epidermis", "dermis", "fat", "smas", "deep_fat", "muscle")


def _odd(n: float) -> int:
    k = max(1, int(round(n)))
    return k if k % 2 else k + 1


def input_grey(frame: Frame) -> np.ndarray:
    """The display grey levels 0-255 (float64, shape (rows, cols)) the classical segmenter reads:
    `Frame.display`, the same image the scorer measures (`layerseg.scoring.echo.display_grey`)."""
    return np.asarray(frame.display(), dtype=np.float64)


def _speckle_filter(frame: Frame, cfg: dict) -> np.ndarray:
    """The configured speckle filter through `layerseg.filters.filter_frame` on the display frame.

    The multiplicative-noise filters work on the envelope; a display frame whose compression is
    unknown is taken as `DEFAULT_DYNAMIC_RANGE_DB` for them (the one stated default)."""
    from ..filters import filter_frame
    f = cfg["filter"]
    method = f["method"]
    disp = frame.as_display()
    if method == "none":
        return input_grey(disp)
    if disp.dynamic_range_db is None:
        disp = replace(disp, dynamic_range_db=DEFAULT_DYNAMIC_RANGE_DB)
    rows, cols = disp.shape
    ay, ax = frame.spacing_mm
    wr = min(_odd(f["size_mm"][0] / ay), rows - (1 - rows % 2))
    wc = min(_odd(f["size_mm"][1] / ax), cols - (1 - cols % 2))
    kw = {} if method == "srad" else {"size" if method == "median" else "window": (wr, wc)}
    return filter_frame(disp, method, **kw).bmode.astype(np.float64)


def _loaded(config) -> dict:
    """`config` as `load_config` returns it: a configuration already loaded (a dict with the
    ``filter`` section every full configuration has) is used as it is, anything else loaded."""
    return load_config(config) if config is None or "filter" not in config else config


def frame_features(frame: Frame, config: dict | None = None) -> dict[str, np.ndarray]:
    """The image features the classical segmenter scores.

    Parameters
    ----------
    frame : Frame
        With spacing.
    config : dict, optional
        From `load_config` (defaults when None).

    Returns
    -------
    dict
        ``n`` (float64, (rows, cols)): normalised smoothed intensity (0 dark, 1 bright tissue);
        ``edge`` (float64, (rows + 1, cols)): signed axial gradient of n per mm between rows
        d-1 and d (0 at the frame's top and bottom), clipped; ``below`` (float64,
        (rows, cols)): mean of n from the pixel to the frame bottom; ``skin_row`` (float64,
        (cols,)): the rough skin guess in rows; ``ridge``, ``streak`` and ``bone_surface``
        (float64, (rows, cols)): bright-band strength, streakiness and bone-top evidence (see
        the module docstring); ``n0``: n before depth compensation; ``norm``: the (dark,
        bright - dark) grey levels that map the display image onto n.
    """
    cfg = _loaded(config)
    ay, ax = frame_spacing(frame)
    img = _speckle_filter(frame, cfg)
    sy, sx = cfg["smoothing_mm"]
    sm = ndi.gaussian_filter(img, (sy / ay, sx / ax), mode="nearest")
    win = max(1, int(round(cfg["reference_window_mm"] / ay)))
    prof = ndi.uniform_filter1d(sm, win, axis=0, mode="nearest")
    bright = float(np.median(prof.max(axis=0)))
    dark = float(np.percentile(sm, 1.0))
    n = (sm - dark) / max(bright - dark, _EPS)
    rows, cols = n.shape
    # skin guess: first row whose next window_mm average exceeds the threshold
    sg = cfg["skin_guess"]
    w = max(1, int(round(sg["window_mm"] / ay)))
    ahead = ndi.uniform_filter1d(n, w, axis=0, mode="nearest", origin=-(w // 2))
    hit = ahead > sg["threshold"]
    skin = np.where(hit.any(axis=0), hit.argmax(axis=0), rows).astype(np.float64)
    skin = ndi.median_filter(skin, size=_odd(1.0 / ax), mode="nearest")
    n0 = n
    n = _depth_compensate(n, skin, ay, cfg["depth_compensation"])
    g = ndi.gaussian_filter(n, (cfg["gradient_sigma_mm"] / ay, sx / ax), mode="nearest")
    edge = np.zeros((rows + 1, cols))
    edge[1:rows] = (g[1:] - g[:-1]) / ay
    clip = float(cfg["edges"]["clip"])
    np.clip(edge, -clip, clip, out=edge)
    csum = np.cumsum(n[::-1], axis=0)[::-1]
    below = csum / np.arange(rows, 0, -1, dtype=np.float64)[:, None]
    rs = cfg["ridge"]["sigma_mm"] / ay
    ridge = -ndi.gaussian_filter(n, (rs, sx / ax), order=(2, 0), mode="nearest") * rs * rs
    norm = (dark, max(bright - dark, _EPS))
    bone = _bone_surface_evidence(frame, img, n0, norm, cfg["bone_surface"])
    return {"n": n, "edge": edge, "below": below, "skin_row": skin, "bone_surface": bone,
            "ridge": np.maximum(ridge, 0.0), "streak": _streakiness(frame, cfg["texture"]),
            "n0": n0, "norm": norm}


def _bone_surface_evidence(frame: Frame, img: np.ndarray, n0: np.ndarray, norm: tuple,
                           bs: dict) -> np.ndarray:
    """How much a row looks like the top of a bone: a bright line just below it and the acoustic
    shadow under that line.

    With ``line`` the brightest value of the lightly smoothed, normalised display image over
    the next ``look_mm`` (the periosteal echo, which the speckle filter would blur) and
    ``below`` the mean of n (before depth compensation) from ``below_mm[0]`` to ``below_mm[1]``
    under the row (the shadow: bone reflects and absorbs nearly everything at 15-50 MHz), the
    evidence is ``line - below`` (0 where less than ``below_mm[1]`` of frame remains below)."""
    ay, ax = frame.spacing_mm
    rows, cols = n0.shape
    dark, scale = norm
    la = ndi.gaussian_filter(img, (bs["line_mm"][0] / ay, bs["line_mm"][1] / ax), mode="nearest")
    nl = (la - dark) / scale
    k = max(1, int(round(bs["look_mm"] / ay)))
    line = ndi.maximum_filter1d(nl, k, axis=0, origin=-(k // 2), mode="nearest")
    csum = np.concatenate([np.zeros((1, cols)), np.cumsum(n0, axis=0)])
    lo = max(1, int(round(bs["below_mm"][0] / ay)))
    hi = max(lo + 1, int(round(bs["below_mm"][1] / ay)))
    r = np.arange(rows)
    s0 = np.minimum(r + lo, rows)
    s1 = np.minimum(r + hi, rows)
    below = (csum[s1] - csum[s0]) / np.maximum(s1 - s0, 1)[:, None]
    ev = line - below
    ev[s1 - s0 < hi - lo] = 0.0
    return ev


def _streakiness(frame: Frame, tx: dict) -> np.ndarray:
    """Laterally long texture (muscle fibres) against isotropic speckle: the local spread of the
    image averaged over a long lateral window, over the spread averaged over a short one."""
    ay, ax = frame.spacing_mm
    img = input_grey(frame)
    za = tx["axial_mm"] / ay
    long_ = ndi.gaussian_filter(img, (za, tx["long_mm"] / ax), mode="nearest")
    short = ndi.gaussian_filter(img, (za, tx["short_mm"] / ax), mode="nearest")
    win = (tx["window_mm"][0] / ay, tx["window_mm"][1] / ax)
    mean = ndi.gaussian_filter(img, win, mode="nearest")
    s_long = ndi.gaussian_filter((long_ - mean) ** 2, win, mode="nearest")
    s_short = ndi.gaussian_filter((short - mean) ** 2, win, mode="nearest")
    # a floor (grey levels) on the short-window spread: in a shadow or below the noise floor the
    # image is flat, the ratio of two vanishing spreads is noise, and flat is not fibrous
    return np.sqrt(s_long) / (np.sqrt(s_short) + float(tx["floor_grey"]))


def _depth_compensate(n: np.ndarray, skin: np.ndarray, ay: float, dc: dict) -> np.ndarray:
    """Undo the residual depth loss (attenuation not matched by the TGC) of the deep tissue.

    The `quantile` of n over columns at each depth below the skin guess, from `start_mm` down,
    is fitted by a robust line (Theil-Sen); a negative slope is added back below `start_mm`,
    at most `max_gain`."""
    from scipy.stats import theilslopes
    rows, cols = n.shape
    if not dc["enabled"]:
        return n
    depth = (np.arange(rows, dtype=np.float64)[:, None] - skin[None, :]) * ay
    start = float(dc["start_mm"])
    step = max(1, int(round(0.05 / ay)))
    w = step * ay
    grid = np.arange(start, depth.max(), w)     # bin centres
    zs, qs = [], []
    if grid.size:
        # the pixels of bin k are those with |depth - grid[k]| < w / 2: each pixel is tested
        # against the two bins around it (one pass over the frame, not one per bin, which grew
        # with rows**2 x cols), then the bins are read off one sort
        d = depth.ravel()
        v = n.ravel()
        k0 = np.floor((d - start) / w).astype(np.int64)
        ks, vs = [], []
        for off in (0, 1):
            k = k0 + off
            ok = (k >= 0) & (k < grid.size)
            kk = k[ok]
            inside = np.abs(d[ok] - grid[kk]) < 0.5 * w
            ks.append(kk[inside])
            vs.append(v[ok][inside])
        kk = np.concatenate(ks)
        order = np.argsort(kk, kind="stable")
        vals = np.concatenate(vs)[order]
        counts = np.bincount(kk, minlength=grid.size)
        ends = np.cumsum(counts)
        for k in range(grid.size):
            if counts[k] >= max(8, cols // 4):
                zs.append(grid[k])
                qs.append(np.percentile(vals[ends[k] - counts[k]:ends[k]], dc["quantile"]))
    if len(zs) < 10:
        return n
    slope = theilslopes(qs, zs)[0]
    if not slope < 0:
        return n
    gain = np.clip(-slope * (depth - start), 0.0, float(dc["max_gain"]))
    return n + gain


def _gauss_ll(n, mean, sd):
    z = (n - mean) / sd
    return -0.5 * z * z - math.log(sd)


@njit(cache=True, parallel=True)
def _label_planes(out, use_base, n, mean, sd, log_sd, wa, tex, streak, tm0, tm1, zlo, zhi,
                  tw_half, use_ridge, ridge, wr, use_edge, de, w_edge, shadow_sign, shadow,
                  w_shadow):
    """Every label's score plane (out: (labels, rows, cols)) in one pass over the frame's rows,
    the terms of `label_scores` in the order and rounding of their NumPy expressions (same
    values bit for bit, tested), without a full-frame temporary per term and reading each
    feature row once for all labels: the appearance log-likelihood
    ``wa * (-0.5 z^2 - log sd)`` with ``z = (n - mean) / sd`` (or the plane's own values, put
    there before, where `use_base`), minus ``tw_half * z_t^2`` with the texture's
    ``z_t = clip((streak - tm0) / tm1, zlo, zhi)`` (`tex`), plus ``wr * ridge``
    (`use_ridge`), plus ``w_edge * de`` (`use_edge`), plus or minus ``w_shadow * shadow``
    (`shadow_sign` 1, -1; 0: none). The per-label parameters are arrays over the labels."""
    n_lab, rows, cols = out.shape
    for r in prange(rows):
        for lab in range(n_lab):
            o = out[lab, r]
            # the label's parameters as scalars: the pixel loop reads no array but the rows
            ub, m, s_d, lsd, tx, t0, t1, lo = (use_base[lab], mean[lab], sd[lab], log_sd[lab],
                                               tex[lab], tm0[lab], tm1[lab], zlo[lab])
            ur, w_r, ue, w_e, sg = (use_ridge[lab], wr[lab], use_edge[lab], w_edge[lab],
                                    shadow_sign[lab])
            for c in range(cols):
                if ub:
                    s = o[c]
                else:
                    z = (n[r, c] - m) / s_d
                    s = wa * ((-0.5 * z) * z - lsd)
                if tx:
                    z = (streak[r, c] - t0) / t1
                    if z < lo:
                        z = lo
                    if z > zhi:
                        z = zhi
                    s = s - (tw_half * z) * z
                if ur:
                    s = s + w_r * ridge[r, c]
                if ue:
                    s = s + w_e * de[r, c]
                if sg > 0:
                    s = s + w_shadow * shadow[r, c]
                elif sg < 0:
                    s = s - w_shadow * shadow[r, c]
                o[c] = s


@njit(cache=True, parallel=True)
def _two_mode_ll(n, m1, sd1, log_sd1, m2, sd2, log_sd2, ln2, out):
    """``logaddexp(gauss_ll(n; m1, sd1), gauss_ll(n; m2, sd2)) - log 2`` per pixel (rows,
    cols), each step as the NumPy expressions of `_gauss_ll` and `np.logaddexp` round it (same
    values bit for bit), without their full-frame temporaries."""
    rows, cols = n.shape
    for r in prange(rows):
        for c in range(cols):
            z1 = (n[r, c] - m1) / sd1
            z2 = (n[r, c] - m2) / sd2
            out[r, c] = logaddexp((-0.5 * z1) * z1 - log_sd1, (-0.5 * z2) * z2 - log_sd2,
                                  ln2) - ln2


def _two_mode(n, m1, sd1, m2, sd2):
    """The mean of two Gaussian likelihoods of `n` (rows, cols), as a log:
    ``np.logaddexp(_gauss_ll(n, m1, sd1), _gauss_ll(n, m2, sd2)) - log 2`` (`_two_mode_ll`)."""
    n = np.ascontiguousarray(n, dtype=np.float64)
    out = np.empty_like(n)
    _two_mode_ll(n, float(m1), float(sd1), math.log(sd1), float(m2), float(sd2),
                 math.log(sd2), math.log(2.0), out)
    return out


def _bone_ll(n, a):
    """Two-mode appearance (the shadow, and the bright periosteal line)."""
    return _two_mode(n, a["mean"], a["sd"], a["bright"], a["bright_sd"])


def label_scores(frame: Frame, feats: dict[str, np.ndarray], cfg: dict,
                 appearance: dict[str, tuple[float, float]] | None = None) -> np.ndarray:
    """Per-label scores (higher is better) from the features of `frame_features`.

    Parameters
    ----------
    frame : Frame
    feats : dict
        From `frame_features`.
    cfg : dict
        From `load_config`.
    appearance : dict, optional
        Label name -> (mean, sd) of n, replacing the configuration's (the adaptation step).

    Returns
    -------
    ndarray of float64, shape (8, rows, cols)
    """
    ay, _ = frame_spacing(frame)
    # one float64 copy of the normalised image, shared by the two-mode terms and the kernel
    n = np.ascontiguousarray(feats["n"], dtype=np.float64)
    edge, below = feats["edge"], feats["below"]
    rows, cols = n.shape
    app = cfg["appearance"]
    wa = float(app["weight"])
    sc = np.empty((N_LABELS, rows, cols))
    de = edge[1:] - edge[:-1]          # (rows, cols): E(r+1) - E(r)
    we = float(cfg["edges"]["weight"])
    wts = cfg["edges"]["w"]
    sh = cfg["shadow"]
    shadow = np.exp(-0.5 * (below / sh["sd"]) ** 2)
    # unlabelled deep tissue (background under the deepest layer), and bone below its line
    dt = cfg["deep_tissue"]
    ll = _two_mode(n, dt["mean"], dt["sd"], dt["dark"], dt["dark_sd"])
    zc = float(cfg["texture"]["z_cap"])
    z = np.clip((feats["streak"] - dt["texture"][0]) / dt["texture"][1], 0.0, zc)
    deep_score = wa * ll - cfg["texture"]["weight"] * 0.5 * z * z
    bs = cfg["bone_surface"]
    bone_as_deep = bs["appearance"] == "deep_tissue"
    streak = np.ascontiguousarray(feats["streak"], dtype=np.float64)
    ridge = np.ascontiguousarray(feats["ridge"], dtype=np.float64)
    par = {k: np.zeros(N_LABELS) for k in ("mean", "sd", "tm0", "zlo", "wr", "w_edge")}
    par["tm1"] = np.ones(N_LABELS)
    flag = {k: np.zeros(N_LABELS, dtype=np.bool_) for k in ("base", "tex", "ridge", "edge")}
    shadow_sign = np.zeros(N_LABELS, dtype=np.int64)
    for lab, name in enumerate(LABEL_NAMES):
        mean, sd = (appearance or {}).get(name, (app[name]["mean"], app[name]["sd"]))
        tm = cfg["texture"]["models"].get(name)
        if name == "bone" and bone_as_deep:
            # below its line, bone is told from deep tissue by the line alone
            # (a small cost per pixel breaks the tie with background: no line, no bone)
            sc[lab] = deep_score - float(bs["pixel_cost"])
            flag["base"][lab] = True
            tm = None
        elif "bright" in app[name] and (appearance is None or name not in appearance):
            sc[lab] = wa * _bone_ll(n, app[name])
            flag["base"][lab] = True
        # the appearance term (unless the plane holds it already), then: texture (robust: a
        # bright horizontal line, SMAS or periosteum, nearby also reads as streaky, so the
        # penalty stops growing at z_cap standard deviations), ridge, edge and shadow terms
        par["mean"][lab], par["sd"][lab] = float(mean), float(sd)
        flag["tex"][lab] = tm is not None and bool(cfg["texture"]["weight"])
        if flag["tex"][lab]:
            par["tm0"][lab], par["tm1"][lab] = float(tm[0]), float(tm[1])
        par["zlo"][lab] = 0.0 if name in cfg["texture"]["one_sided"] else -zc
        par["wr"][lab] = float(cfg["ridge"]["w"].get(name, 0.0))
        flag["ridge"][lab] = bool(par["wr"][lab])
        w = float(wts.get(name, 0.0))
        flag["edge"][lab] = bool(w)
        par["w_edge"][lab] = we * w
        shadow_sign[lab] = 1 if name == "bone" else -1 if name in _TISSUE_LABELS else 0
    log_sd = np.array([math.log(v) for v in par["sd"]])     # as `_gauss_ll` takes it
    _label_planes(sc, flag["base"], n, par["mean"], par["sd"], log_sd, wa, flag["tex"], streak,
                  par["tm0"], par["tm1"], par["zlo"], zc, float(cfg["texture"]["weight"]) * 0.5,
                  flag["ridge"], ridge, par["wr"], flag["edge"], de, par["w_edge"], shadow_sign,
                  shadow, float(sh["weight"]))
    # background below the first strong echo pays with depth, down to the deep-tissue start;
    # below it, background is the unlabelled deep tissue under the deepest layer, with its own model
    depth_mm = (np.arange(rows, dtype=np.float64)[:, None] - feats["skin_row"][None, :]) * ay
    sc[0] -= cfg["background_depth_penalty_per_mm"] * np.maximum(depth_mm, 0.0)
    if dt["enabled"]:
        deep = depth_mm > float(dt["start_mm"])
        ds = deep_score - float(dt["cost"]) + we * float(wts.get("background", 0.0)) * de
        sc[0] = np.where(deep, ds, sc[0])
    ib = LABEL_NAMES.index("bone")
    if bs["weight"]:
        b = np.clip(feats["bone_surface"] - float(bs["offset"]), 0.0, float(bs["cap"]))
        # telescoping: a bone on rows [a, rows) earns weight * b(a)
        db = b.copy()
        db[:-1] -= b[1:]
        sc[ib] += float(bs["weight"]) * db
    if not bone_as_deep:
        # bone must earn its existence (its periosteal line's edge and ridge terms): a bone
        # reaching the frame bottom pays a fixed cost per column, charged on the last row (with
        # the deep-tissue appearance the line offset is its price, and the cost could be dodged
        # by ending a row early: see _bone_to_bottom)
        sc[ib, rows - 1] -= cfg["bone_cost"]
    return sc


def _adapted(n: np.ndarray, labels: np.ndarray, cfg: dict) -> dict[str, tuple[float, float]]:
    ad = cfg["adapt"]
    app = cfg["appearance"]
    out = {}
    for lab, name in enumerate(LABEL_NAMES):
        mu0, sd0 = float(app[name]["mean"]), float(app[name]["sd"])
        if "bright" in app[name]:
            out[name] = (mu0, sd0)
            continue
        v = n[labels == lab]
        if v.size < 10:
            out[name] = (mu0, sd0)
            continue
        med = float(np.median(v))
        mad = float(np.median(np.abs(v - med))) * 1.4826
        share = v.size / (v.size + float(ad["prior_pixels"]))
        mu = share * med + (1.0 - share) * mu0
        sd = share * mad + (1.0 - share) * sd0
        out[name] = (mu, float(np.clip(sd, ad["sd_min"], ad["sd_max"])))
    return out


def classical_scores(frame: Frame, config: dict | str | None = None,
                     profile: Profile | None = None, priors: dict | str | None = None
                     ) -> np.ndarray:
    """The classical segmenter's per-label scores of one frame, for the shared decode.

    With ``adapt.iterations`` > 0, each round decodes the scores (`layerseg.layers.decode`),
    re-estimates each label's appearance from that answer and scores again.

    Parameters
    ----------
    frame : Frame
        B-mode frame with spacing.
    config : dict or path, optional
        Overrides of ``layerseg/data/classical_segmenter.json``.
    profile : Profile, optional
        The region profile (used by the adaptation rounds' decode; default profile when None).
    priors : dict or path, optional
        Decode priors overrides (adaptation rounds only).

    Returns
    -------
    ndarray of float64, shape (8, rows, cols)
        Higher is better.
    """
    ay, ax = frame_spacing(frame)
    cfg = load_config(config)
    feats = frame_features(frame, cfg)
    appearance = None
    for _ in range(int(cfg["adapt"]["iterations"])):
        sc = label_scores(frame, feats, cfg, appearance)
        res = decode(sc, profile, (ay, ax), frequency_mhz=frame.meta.frequency_mhz,
                     priors=priors)
        appearance = _adapted(feats["n"], res.labels, cfg)
    return label_scores(frame, feats, cfg, appearance)


def segment_classical(frame: Frame, config: dict | str | None = None, region: str | None = None,
                      return_scores: bool = False, priors: dict | str | None = None
                      ) -> SegmentationResult:
    """Segment one frame with the training-free classical segmenter: its scores
    (`classical_scores`) through the shared decode (`layerseg.layers.decode`).

    Parameters
    ----------
    frame : Frame
        B-mode frame with spacing (display or envelope intensity).
    config : dict or path, optional
        Overrides of ``layerseg/data/classical_segmenter.json`` (see `load_config`).
    region : str, optional
        Facial region (selects the layer profile and thickness priors); default
        ``frame.meta.region``; an unknown name takes the default profile with a QC flag.
    return_scores : bool
        Keep the final per-label scores in the result.
    priors : dict or path, optional
        Overrides of the decode priors (``layerseg/data/decode_priors.json``).

    Returns
    -------
    SegmentationResult

    Raises
    ------
    InvalidImageError
        Not a Frame, or a frame without usable contrast (blank, constant).
    SpacingRequiredError
        The frame has no spacing.
    ConfigError
        Malformed configuration or priors.
    """
    cfg = load_config(config)
    return segment_with(lambda f, prof: classical_scores(working_frame(f, cfg), cfg, prof,
                                                         priors),
                        frame, region=region, priors=priors, return_scores=return_scores,
                        model="classical", other_grid=True)


def working_frame(frame: Frame, config: dict | str | None = None) -> Frame:
    """The frame on the classical segmenter's working grid.

    A frame sampled finer than ``working_spacing_mm`` (per axis) is resampled to the nearest
    grid no finer than it over the same extent (`pipeline.resample_to_shape`, linear); its
    filters and smoothing widths are in mm, so on the finer grid each would span more pixels
    and the cost would grow faster than the pixels. Other frames are returned as they are.

    Parameters
    ----------
    frame : Frame
        Display frame with spacing (rows, cols).
    config : dict or path, optional
        As `load_config`.

    Returns
    -------
    Frame
        Shape (r, c) with r <= rows, c <= cols; spacing = the frame's extent over (r, c); no
        elastography (the classical segmenter does not read it).
    """
    cfg = _loaded(config)
    ay, ax = frame_spacing(frame)
    wy, wx = (float(v) for v in cfg["working_spacing_mm"])
    rows, cols = frame.shape
    r = rows if ay >= wy else max(1, int(math.floor(rows * ay / wy)))
    c = cols if ax >= wx else max(1, int(math.floor(cols * ax / wx)))
    if (r, c) == (rows, cols):
        return frame
    grey = resample_to_shape(np.asarray(frame.bmode, dtype=np.float32), (r, c), order=1)
    return replace(frame, bmode=grey, spacing_mm=(ay * rows / r, ax * cols / c), elasto=None,
                   elasto_kind=None, elasto_valid=None)
