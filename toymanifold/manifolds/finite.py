"""Finite sets ``K = {k_1, …, k_M}``: a training set as the data set (THEORY §1, §4)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cached_property

import torch

from ..validation import as_points
from .base import Manifold, row_norm

__all__ = ["FiniteSet"]

#: Queries per block of the nearest-point search.
_QUERY_ROWS = 4096
#: Elements of one (queries × points) block of scores: 2^19 float64 = 4 MiB (a block
#: stays in cache between the matrix product that writes it and the reduction that
#: reads it), or more for a few queries against at least 256 points.
_BLOCK_ELEMENTS = 1 << 19
#: Sets larger than this show a progress bar while their reach is computed (O(M² n)).
_PROGRESS_POINTS = 20_000


def _score_blocks(
    x: torch.Tensor, points: torch.Tensor, points_sq: torch.Tensor, scale: torch.Tensor | None = None
) -> Iterator[tuple[slice, int, torch.Tensor]]:
    """Yield ``(rows, start, S)`` with ``S[i, j] = ‖k_j‖² − 2⟨x_i, k_j⟩`` for ``j`` from ``start``.

    ``S`` is ``‖x_i − k_j‖² − ‖x_i‖²``: the same order over ``j`` as the squared
    distance (THEORY §4's expansion, one matrix product per block), without the term
    ``‖x_i‖²`` that would overflow for huge ``x`` and swamp the differences between
    points far from ``x``. With ``scale`` (a column ``m``), ``‖k_j‖²/m_i`` replaces
    ``‖k_j‖²``: the score of ``m_i x_i``, divided by ``m_i``. Blocks over queries and
    points keep the memory at one block (:data:`_BLOCK_ELEMENTS` elements) whatever
    the number of queries.
    """
    rows = min(max(1, x.shape[0]), _QUERY_ROWS)
    chunk = max(256, _BLOCK_ELEMENTS // rows)
    for r0 in range(0, x.shape[0], rows):
        block = slice(r0, r0 + rows)
        for start in range(0, points.shape[0], chunk):
            sq = points_sq[start : start + chunk]
            if scale is not None:
                sq = sq / scale[block]
            yield block, start, torch.addmm(sq, x[block], points[start : start + chunk].T, alpha=-2.0)


def _nearest(x, points, points_sq, scale=None, self_offset: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(argmin_j S_ij, min_j S_ij)`` for the scores of :func:`_score_blocks` (first index on ties).

    ``self_offset``: ``x`` is ``points[self_offset:]``, and row ``i`` skips its own
    point ``self_offset + i`` (the nearest *other* point).
    """
    best = torch.full((x.shape[0],), math.inf, dtype=x.dtype, device=x.device)
    arg = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    for rows, start, s in _score_blocks(x, points, points_sq, scale):
        if self_offset is not None:
            own = torch.arange(rows.start, rows.start + s.shape[0], device=x.device) + (self_offset - start)
            mine = torch.nonzero((own >= 0) & (own < s.shape[1])).squeeze(1)
            s[mine, own[mine]] = math.inf
        val, idx = s.min(dim=1)
        better = val < best[rows]
        best[rows] = torch.where(better, val, best[rows])
        arg[rows] = torch.where(better, idx + start, arg[rows])
    return arg, best


class FiniteSet(Manifold):
    """A finite point set ``K`` with uniform data on it (``d = 0``).

    ``project`` returns the nearest point (the first one on ties) by a blocked search of
    ``‖k‖² − 2⟨x, k⟩``, one matrix product per block (memory: one block of 4 MiB
    besides the result, for any number of queries). Where that score overflows (``x``
    beyond about 1e150 against unit points), the rows are searched again with ``x``
    divided by its largest entry. The returned distance is ``‖x − k*‖`` (scaled
    where squares would overflow), exact to rounding. Gradients: ``project`` is piecewise constant, so its
    gradient is zero; ``distance`` has gradient ``(x − k*)/‖x − k*‖``.

    The reach is half the smallest pairwise distance (``inf`` for one point). It is
    computed on first access, O(M² n) by the same blocked search, and cached; sets of
    more than 20 000 points show a progress bar meanwhile (``progress``: ``None``
    for that default, ``True``/``False`` to always show or hide it).

    Parameters
    ----------
    points : array-like of shape (M, n)
        ``M ≥ 1`` finite points.
    """

    intrinsic_dim = 0
    #: Progress bar while the reach is computed: ``None`` for sets above 20 000 points.
    progress: bool | None = None

    def __init__(self, points):
        pts = as_points(points, "points", allow_empty=False)
        if pts.shape[1] < 1:
            raise ValueError(f"points must have shape (M, n) with n >= 1, got shape {tuple(pts.shape)}")
        self.points = pts.to(torch.float64).contiguous()
        self.ambient_dim = int(self.points.shape[1])
        self._cache: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}
        if not bool(torch.isfinite(self.points_like(self.points)[1]).all()):
            raise ValueError("points must have squared norms below the float64 range (entries up to about 1e150)")

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
        """Half the smallest pairwise distance, by the blocked search of every point's nearest other point.

        The search runs on the centred points (distances do not change, and the
        expansion loses fewer digits), and each point's distance to the neighbour it
        found is then recomputed from the original coordinates.
        """
        if len(self) == 1:
            return math.inf
        from tqdm.auto import tqdm

        pts = self.points - self.points.mean(dim=0)
        sq = (pts * pts).sum(-1)
        show = len(self) > _PROGRESS_POINTS if self.progress is None else self.progress
        nearest = torch.empty(len(self), dtype=torch.long)
        with tqdm(total=len(self), disable=not show, desc="FiniteSet.reach", unit="points", leave=False) as bar:
            for r0 in range(0, len(self), _QUERY_ROWS):
                rows = slice(r0, r0 + _QUERY_ROWS)
                nearest[rows] = _nearest(pts[rows], pts, sq, self_offset=r0)[0]
                bar.update(nearest[rows].shape[0])
        return 0.5 * float(row_norm(self.points - self.points[nearest]).min())

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
        x, _ = self._points(x, "x")
        return self._nearest_index(x)

    def _nearest_index(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach()
        idx, best = _nearest(x, *self.points_like(x))
        lost = torch.nonzero(~torch.isfinite(best)).squeeze(1)
        if lost.numel():
            # The score overflowed (|x|·|k| beyond the dtype's range): search again in
            # float64 with x divided by m = max(1, its largest entry): by ‖k‖²/m − 2⟨x/m, k⟩.
            xl = x[lost].to(torch.float64)
            m = xl.abs().amax(dim=1, keepdim=True).clamp(min=1.0)
            idx[lost] = _nearest(xl / m, *self.points_like(xl), scale=m)[0]
        return idx

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        p = self.points_like(x)[0][self._nearest_index(x)]
        # Piecewise constant: connected to x with a zero gradient, so that backward()
        # through a projection works and gives 0.
        return p + 0.0 * x if x.requires_grad else p

    def _tangent_basis(self, p: torch.Tensor) -> torch.Tensor:
        return p.new_zeros((p.shape[0], 0, self.ambient_dim))

    def __repr__(self) -> str:
        return f"FiniteSet(M={len(self)}, n={self.ambient_dim})"
