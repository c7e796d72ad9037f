"""Finite sets ``K = {k_1, …, k_M}``: a training set as the data set (THEORY §1, §4)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cached_property

import torch

from ..validation import as_points
from .base import Manifold

__all__ = ["FiniteSet", "sq_distance_blocks"]

# Elements of one (batch × chunk) block of squared distances: 2^19 float64 = 4 MiB, so a
# block stays in cache between the matrix product that writes it and the reduction
# that reads it.
_BLOCK_ELEMENTS = 1 << 19


def sq_distance_blocks(
    x: torch.Tensor, points: torch.Tensor, points_sq: torch.Tensor, chunk: int | None = None
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(start, D)`` with ``D[b, j] = ‖x_b − k_{start+j}‖²`` over chunks of ``points``.

    ``D = ‖x‖² − 2 x kᵀ + ‖k‖²`` costs one matrix product per chunk (THEORY §4), and the
    memory is ``O(B × chunk)``. The expansion can round a tiny squared distance below
    zero; callers that need exact distances recompute them for the winners.
    """
    if chunk is None:
        chunk = max(256, _BLOCK_ELEMENTS // max(1, x.shape[0]))
    x_sq = (x * x).sum(-1, keepdim=True)
    for start in range(0, points.shape[0], chunk):
        k = points[start : start + chunk]
        yield start, torch.addmm(points_sq[start : start + chunk] + x_sq, x, k.T, beta=1.0, alpha=-2.0)


class FiniteSet(Manifold):
    """A finite point set ``K`` with uniform data on it (``d = 0``).

    ``project`` returns the nearest point (the first one on ties) by a blocked search of
    ``‖x − k‖²`` computed as one matrix product per block; the returned distance is then
    recomputed as ``‖x − k*‖`` so it is exact to rounding. The reach is half the smallest
    pairwise distance (``inf`` for one point), computed once by the same blocked search.

    Parameters
    ----------
    points : array-like of shape (M, n)
        ``M ≥ 1`` finite points.
    """

    intrinsic_dim = 0

    def __init__(self, points):
        pts = as_points(points, "points", allow_empty=False)
        if pts.shape[1] < 1:
            raise ValueError(f"points must have shape (M, n) with n >= 1, got shape {tuple(pts.shape)}")
        self.points = pts.to(torch.float64).contiguous()
        self.ambient_dim = int(self.points.shape[1])
        self._cache: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def points_like(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(points, ‖points‖²)`` in ``x``'s dtype and device (cached per dtype/device)."""
        key = (x.dtype, x.device)
        if key not in self._cache:
            pts = self.points.to(dtype=x.dtype, device=x.device)
            self._cache[key] = (pts, (pts * pts).sum(-1))
        return self._cache[key]

    @cached_property
    def _reach(self) -> float:
        if len(self) == 1:
            return math.inf
        best, pair = math.inf, (0, 0)
        pts, sq = self.points_like(self.points)
        for start, d2 in sq_distance_blocks(pts, pts, sq):
            cols = torch.arange(d2.shape[1])
            d2[cols + start, cols] = math.inf  # a point's distance to itself does not count
            val, flat = d2.min(dim=0)
            j = int(val.argmin())
            if float(val[j]) < best:
                best, pair = float(val[j]), (int(flat[j]), start + j)
        # Recompute the winning pair's distance directly: the expansion loses digits.
        return 0.5 * float(torch.linalg.vector_norm(self.points[pair[0]] - self.points[pair[1]]))

    @property
    def reach(self) -> float:
        return self._reach

    @property
    def diameter_bound(self) -> float:
        return float(torch.linalg.vector_norm(self.points, dim=-1).max())

    def _sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(self), (num,), generator=generator)
        return self.points[idx]

    def nearest_index(self, x) -> torch.Tensor:
        """Index of a nearest point of every row of ``x``; shape ``(B,)``."""
        x = as_points(x, "x", self.ambient_dim)
        return self._nearest_index(x)

    def _nearest_index(self, x: torch.Tensor) -> torch.Tensor:
        pts, sq = self.points_like(x)
        best = torch.full((x.shape[0],), math.inf, dtype=x.dtype, device=x.device)
        arg = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        for start, d2 in sq_distance_blocks(x, pts, sq):
            val, idx = d2.min(dim=1)
            better = val < best
            best = torch.where(better, val, best)
            arg = torch.where(better, idx + start, arg)
        return arg

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        pts, _ = self.points_like(x)
        return pts[self._nearest_index(x)]

    def _tangent_basis(self, p: torch.Tensor) -> torch.Tensor:
        return p.new_zeros((p.shape[0], 0, self.ambient_dim))

    def __repr__(self) -> str:
        return f"FiniteSet(M={len(self)}, n={self.ambient_dim})"
