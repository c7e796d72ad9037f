"""The common interface of every data set ``K`` with an exact projection oracle (THEORY §1)."""

from __future__ import annotations

import abc
import functools
import math
from collections.abc import Iterator

import torch

from ..validation import as_points, check_int, make_generator

__all__ = ["Manifold", "check_sum_bound", "project_in_blocks", "row_blocks"]

#: Rows per block for oracles made of a few elementwise passes over short rows. A
#: block's per-row temporaries (0.5 MiB per float64 vector) stay in the L2 cache from
#: one pass to the next, so only ``x`` and the result travel to memory; measured on a
#: 1 MiB-L2 x86 core, 10^6-point projections got 1.3–1.5x faster than whole-array
#: passes (and 2^14-row blocks slower again, from per-operation overhead).
BLOCK_ROWS = 1 << 17


def project_in_blocks(block, x: torch.Tensor, with_distance: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(proj(x), dist(x) or None)`` from ``block(x_b, p_b, dist_b)`` over :func:`row_blocks`.

    ``block`` writes one block's nearest points into ``p_b`` and, unless ``dist_b`` is
    None, its distances into ``dist_b``: one kernel serves ``project`` and
    ``project_with_distance``, so their points agree bit for bit.
    """
    p = torch.empty_like(x, memory_format=torch.contiguous_format)
    dist = x.new_empty(x.shape[0]) if with_distance else None
    for b in row_blocks(x):
        block(x[b], p[b], None if dist is None else dist[b])
    return p, dist


@functools.cache
def check_sum_bound(dtype: torch.dtype) -> float:
    """Bound for the blockwise check sums of the closed-form oracles.

    Sphere and torus sum ``1/‖v‖²``-type terms of a block in one dot product: the sum
    is NaN or inf where an input is, and above this bound (a sixteenth of the largest
    float) whenever some ``‖v‖²`` is subnormal, i.e. lost precision, so that a single
    comparison sends exactly the blocks that need it to the careful path.
    """
    return torch.finfo(dtype).max / 16


def row_blocks(x: torch.Tensor, rows: int | None = None) -> Iterator[slice]:
    """Row slices covering ``x``: blocks of ``rows`` on the CPU, one slice elsewhere.

    On a GPU every operation is a kernel launch and the caches are not the point, so
    the whole batch is one block there.
    """
    n = x.shape[0]
    step = (rows or BLOCK_ROWS) if x.device.type == "cpu" else max(n, 1)
    return (slice(a, min(a + step, n)) for a in range(0, n, step))


class Manifold(abc.ABC):
    """A closed set ``K ⊂ R^n`` with exact distance function and nearest points.

    Subclasses set ``ambient_dim`` (n) and ``intrinsic_dim`` (d) and implement the
    private hooks ``_sample``, ``_project`` and ``_tangent_basis``; the public methods
    validate their inputs (docs/design.md, Conventions) and keep the input's dtype and
    device for floating tensors (NumPy input becomes float64).

    THEORY §1: ``dist_K(x) = min_{y∈K} ‖x − y‖`` and ``proj_K(x)`` attains it. Off the
    medial axis the nearest point is unique; on it, ``project`` returns one valid
    nearest point (never NaN).
    """

    ambient_dim: int
    intrinsic_dim: int
    #: True where ``_project`` and ``_project_with_distance`` detect NaN/inf input
    #: themselves, inside a pass they make anyway, and raise the ``ValueError`` of
    #: the input checks (``check_finite``): the public methods then skip their own
    #: finiteness pass, which costs about 0.4x a copy of ``x``.
    _checks_finite: bool = False

    # -- public API ---------------------------------------------------------------
    @property
    @abc.abstractmethod
    def reach(self) -> float:
        """Reach of ``K`` (``math.inf`` for affine subspaces)."""

    def sample(
        self,
        num: int,
        generator: torch.Generator | int | None = None,
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Draw ``num`` points of the data distribution ``p`` on ``K``; shape ``(num, n)``.

        Randomness comes only from ``generator`` (a CPU ``torch.Generator`` or an int
        seed), so the same seed gives the same points on every device.
        """
        num = check_int(num, "num", minimum=0)
        g = make_generator(generator)
        out = self._sample(num, g)
        return out.to(dtype=dtype, device=device)

    def project(self, x) -> torch.Tensor:
        """A nearest point ``proj_K(x)`` of every row of ``x``; shape ``(B, n)``."""
        x = as_points(x, "x", self.ambient_dim, allow_nonfinite=self._checks_finite)
        return self._project(x)

    def distance(self, x) -> torch.Tensor:
        """``dist_K(x)`` of every row of ``x``; shape ``(B,)``."""
        x = as_points(x, "x", self.ambient_dim, allow_nonfinite=self._checks_finite)
        return self._distance(x)

    def project_with_distance(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """``(proj_K(x), dist_K(x))`` in one pass (the oracle call analysis code uses)."""
        x = as_points(x, "x", self.ambient_dim, allow_nonfinite=self._checks_finite)
        return self._project_with_distance(x)

    def tangent_basis(self, p) -> torch.Tensor:
        """Orthonormal rows spanning the tangent space at points ``p`` on ``K``; ``(B, d, n)``."""
        p = as_points(p, "p", self.ambient_dim)
        return self._tangent_basis(p)

    # -- hooks --------------------------------------------------------------------
    @abc.abstractmethod
    def _sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        """``(num, n)`` float64 samples on the CPU."""

    @abc.abstractmethod
    def _project(self, x: torch.Tensor) -> torch.Tensor: ...

    def _distance(self, x: torch.Tensor) -> torch.Tensor:
        return self._project_with_distance(x)[1]

    def _project_with_distance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self._project(x)
        return p, torch.linalg.vector_norm(x - p, dim=-1)

    @abc.abstractmethod
    def _tangent_basis(self, p: torch.Tensor) -> torch.Tensor: ...

    # -- conveniences ---------------------------------------------------------------
    @property
    def diameter_bound(self) -> float:
        """A radius ``R`` with ``K ⊂ B(0, R)`` (THEORY §3, Corollary 3); ``inf`` if unbounded."""
        return math.inf

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.ambient_dim}, d={self.intrinsic_dim})"
