"""The ordered-surface head: a network that answers where each layer boundary lies in each
column instead of which layer each pixel belongs to.

With ``SegmentationTask(head="surface")`` the network's 8 output channels are the 8 surfaces of
the frame's region profile (`layerseg.layers.get_profile`: its 7 layers from the skin down,
which is not label order everywhere: the forehead has muscle above deep fat): surface 0 is the
skin entry (top of the epidermis), surface k (1-7) the bottom of the profile's k-th layer. For surface j and column c, a softmax of
channel j over the rows is the distribution of the row where the surface lies (He et al. 2019,
"Fully convolutional boundary regression for retina OCT segmentation", MICCAI). It is trained
with cross-entropy against the true surface rows (read off the label map: the skin entry, then
the running count of each layer's pixels down the column in the profile's order, so an absent
layer has zero thickness), plus the L1 distance of the expected row (soft arg-max) to the true one in rows
over the patch height.

The answer goes through the same shared decode as every other segmenter: the surfaces'
row distributions are turned into per-pixel class log-probabilities
(`surface_log_probabilities`): with ``F_j(r) = P(s_j <= r)`` the cumulative distribution of
surface j down the column, a pixel at row r lies in the profile's layer k (1-7) when
``s_{k-1} <= r < s_k``, probability ``F_{k-1}(r) - F_k(r)`` (given to that layer's label), and in
the background (gel above, tissue below the
deepest layer) with ``1 - F_0(r) + F_7(r)``; the eight sum to one. Order holds by
construction: the distribution functions are first replaced by their running minimum over the
surfaces, ``G_k = min_{j<=k} F_j`` (still distribution functions, and ``G_k <= G_{k-1}``
everywhere: each surface lies below the one above it in distribution, as the cumulative
thicknesses of He et al. make them), so no layer's probability is negative where the network's
raw distributions cross. The decode then places the surfaces, sub-pixel, under the thickness
priors.

The row softmax needs whole columns: the head infers whole frames in one pass
(``infer_mode='whole'``) and is trained on patches that span the frame depth.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ...layers.profiles import resolve_profile

__all__ = ["surfaces_from_labels", "surface_log_probabilities", "SurfaceLoss", "N_SURFACES",
           "PROB_FLOOR", "layer_orders"]

N_SURFACES = 8
"""Surfaces of the 7-layer order: the skin entry and the bottom of each layer."""

PROB_FLOOR = 1e-6
"""Smallest per-pixel class probability `surface_log_probabilities` gives."""


def layer_orders(regions: Sequence[str | None] | None, n: int,
                 device: torch.device | None = None) -> torch.Tensor:
    """The labels of each frame's region profile from the skin down, (n, 7) int64 (the default
    profile where `regions` is None or a name is unknown, as the decode takes it)."""
    regions = [None] * n if regions is None else list(regions)
    if len(regions) != n:
        raise ValueError(f"{len(regions)} regions for {n} frames")
    rows = []
    for r in regions:
        prof, _ = resolve_profile(r or None)
        if len(prof.labels) != N_SURFACES - 1:
            raise ValueError(f"the surface head needs 7-layer profiles; {prof.region} has "
                             f"{len(prof.labels)}")
        rows.append(list(prof.labels))
    return torch.as_tensor(rows, dtype=torch.long, device=device)


def surfaces_from_labels(labels: torch.Tensor,
                         regions: Sequence[str | None] | None = None) -> torch.Tensor:
    """The true surface rows of label maps.

    Parameters
    ----------
    labels : Tensor of int, shape (B, 1, rows, cols)
        Label maps 0-7 (ordered top down by their region's profile, as the simulator and the
        decode make them).
    regions : sequence of str, optional
        Each frame's region (its profile's layer order); default the default profile.

    Returns
    -------
    Tensor of float32, shape (B, 8, cols)
        Row of surface j in each column: surface 0 the first non-background row (``rows`` where
        a column has none), surface k the surface 0 row plus the pixels of the profile's layers
        1..k in the column (an absent layer adds none).
    """
    y = labels[:, 0].long()
    b, rows, cols = y.shape
    tissue = y > 0
    any_tissue = tissue.any(dim=1)
    first = torch.argmax(tissue.to(torch.int8), dim=1)             # first True row
    s0 = torch.where(any_tissue, first, torch.full_like(first, rows))
    by_label = torch.stack([(y == k).sum(dim=1) for k in range(1, N_SURFACES)], dim=1)
    order = layer_orders(regions, b, y.device)                     # (B, 7) labels
    counts = by_label.gather(1, (order - 1)[:, :, None].expand(-1, -1, cols))
    s = torch.cat([s0[:, None], s0[:, None] + torch.cumsum(counts, dim=1)], dim=1)
    return s.float()


def surface_log_probabilities(logits: torch.Tensor,
                              regions: Sequence[str | None] | None = None) -> torch.Tensor:
    """Per-pixel class log-probabilities of the surface head's output.

    Parameters
    ----------
    logits : Tensor, shape (B, 8, rows, cols)
        Channel j: the network's scores of surface j lying at each row (softmax over rows).
    regions : sequence of str, optional
        Each frame's region: layer k of its profile gets ``F_{k-1} - F_k`` (default: the
        default profile).

    Returns
    -------
    Tensor of float32, shape (B, 8, rows, cols)
        Log-probability of each label 0-7 at each pixel (see the module docstring); they sum
        to one over the labels.
    """
    p = torch.softmax(logits.float(), dim=2)
    cdf = torch.cumsum(p, dim=2)                    # P(s_j <= r)
    # ordered by construction: G_k = min_{j <= k} F_j is again a distribution function and
    # G_k <= G_{k-1} at every row, i.e. surface k lies below surface k-1 in distribution, so
    # every layer's probability G_{k-1} - G_k is non-negative without clipping
    cdf = torch.cummin(cdf, dim=1).values
    layers = cdf[:, :-1] - cdf[:, 1:]               # the profile's layers 1-7, in its order
    b, _, rows, cols = layers.shape
    probs = torch.empty_like(cdf)
    probs[:, 0] = (1.0 - cdf[:, 0] + cdf[:, -1])    # label 0
    order = layer_orders(regions, b, layers.device)
    probs.scatter_(1, order[:, :, None, None].expand(-1, -1, rows, cols), layers)
    probs = probs.clamp_min(PROB_FLOOR)
    return torch.log(probs / probs.sum(dim=1, keepdim=True))


class SurfaceLoss(torch.nn.Module):
    """Cross-entropy of each surface's row distribution against its true row, plus
    `l1_weight` x the mean absolute distance of the expected row to the true one, in patch
    heights.

    Parameters
    ----------
    l1_weight : float
        Weight of the soft arg-max distance term.
    """

    def __init__(self, l1_weight: float = 1.0):
        super().__init__()
        self.l1_weight = float(l1_weight)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor,
                regions: Sequence[str | None] | None = None) -> torch.Tensor:
        """Loss of logits (B, 8, rows, cols) against label maps (B, 1, rows, cols) of frames of
        `regions` (their profiles' layer orders; default the default profile)."""
        rows = logits.shape[2]
        target = surfaces_from_labels(labels, regions).clamp(max=rows - 1)   # (B, 8, cols)
        logits = logits.float()
        ce = F.cross_entropy(logits.transpose(1, 2), target.long())  # classes = rows
        p = torch.softmax(logits, dim=2)
        r = torch.arange(rows, dtype=p.dtype, device=p.device)[None, None, :, None]
        expected = (p * r).sum(dim=2)
        return ce + self.l1_weight * (expected - target).abs().mean() / rows
