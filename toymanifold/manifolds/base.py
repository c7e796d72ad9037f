"""The common interface of every data set ``K`` with an exact projection oracle (THEORY §1)."""

from __future__ import annotations

import abc
import math

import torch

from ..validation import as_points, check_int, make_generator

__all__ = ["Manifold", "plain_norms_are_exact", "row_norm", "scaled_norm"]

#: Dtypes whose squares overflow early (float16: 65504) or that round too coarsely for
#: a projection: the oracles compute in float32 and return in the caller's dtype.
_HALF = (torch.float16, torch.bfloat16)


def scaled_norm(u: torch.Tensor) -> torch.Tensor:
    """``‖u‖`` over the last dimension, computed as ``m ‖u/m‖`` with ``m = maxᵢ |uᵢ|``.

    The squares of ``u/m`` lie in ``[0, 1]``, so nothing overflows or underflows where
    the squares of ``u`` would (entries beyond about 1e154 or below 1e-154 in float64).
    ``m ‖u/m‖ = ‖u‖`` for any constant ``m > 0``, so ``m`` is held constant in the
    gradient: it is ``u/‖u‖`` as for the plain norm (0 at ``u = 0``), with no ``1/m²``
    to overflow for subnormal ``u``.
    """
    if u.shape[-1] == 0:
        return torch.linalg.vector_norm(u, dim=-1)  # 0 (amax has nothing to reduce)
    m = u.detach().abs().amax(dim=-1, keepdim=True)
    v = u / torch.where(m > 0, m, 1.0)
    return (m * torch.linalg.vector_norm(v, dim=-1, keepdim=True)).squeeze(-1)


def plain_norms_are_exact(norm: torch.Tensor) -> bool:
    """Whether norms computed as ``√Σuᵢ²`` (without scaling) are exact to rounding.

    They are when all are finite (no square overflowed) and at least ``√tiny/ε``
    (1e-138 in float64): the squares that underflowed are then below ``ε`` of the sum.
    A norm of exactly 0 counts as inexact, as it may be an underflow. One min/max over
    the norms decides for the whole batch.
    """
    if norm.numel() == 0:
        return True
    lo, hi = torch.aminmax(norm.detach())
    fi = torch.finfo(norm.dtype)
    return bool(lo >= math.sqrt(fi.tiny) / fi.eps) and bool(hi < math.inf)


def row_norm(u: torch.Tensor) -> torch.Tensor:
    """``‖u‖`` over the last dimension, exact to rounding for every finite ``u``.

    The plain norm where :func:`plain_norms_are_exact` says so (the common case, one
    pass), else :func:`scaled_norm` for the batch.
    """
    norm = torch.linalg.vector_norm(u, dim=-1)
    return norm if plain_norms_are_exact(norm) else scaled_norm(u)


class Manifold(abc.ABC):
    """A closed set ``K ⊂ R^n`` with exact distance function and nearest points.

    Subclasses set ``ambient_dim`` (n) and ``intrinsic_dim`` (d) and implement the
    private hooks ``_sample``, ``_project`` and ``_tangent_basis``; the public methods
    validate their inputs (docs/design.md, Conventions) and keep the input's dtype and
    device for floating tensors (NumPy input becomes float64).

    THEORY §1: ``dist_K(x) = min_{y∈K} ‖x − y‖`` and ``proj_K(x)`` attains it. Off the
    medial axis the nearest point is unique; on it, ``project`` returns one valid
    nearest point (never NaN).

    Every oracle accepts empty batches ``(0, n)``, float16/bfloat16 points (computed in
    float32, returned in the caller's dtype) and points that require gradients; a result
    that overflows its dtype (a distance beyond 65504 in float16, or beyond 1.8e308 for
    float64 points near that size) raises a ``ValueError`` naming ``x``. ``distance`` is differentiable with gradient
    ``(x − proj_K(x))/dist_K(x)`` off the medial axis and off ``K`` (THEORY §1); the
    gradient of ``project`` is stated by each family.
    """

    ambient_dim: int
    intrinsic_dim: int

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
        seed), so the same seed gives the same points on every device. ``dtype`` must be
        a floating dtype (points on ``K`` are not integers).
        """
        num = check_int(num, "num", minimum=0)
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        g = make_generator(generator)
        out = self._sample(num, g)
        return out.to(dtype=dtype, device=device)

    def project(self, x) -> torch.Tensor:
        """A nearest point ``proj_K(x)`` of every row of ``x``; shape ``(B, n)``."""
        x, dtype = self._points(x, "x")
        return _in_dtype(self._project(x), dtype, "x")

    def distance(self, x) -> torch.Tensor:
        """``dist_K(x)`` of every row of ``x``; shape ``(B,)``."""
        x, dtype = self._points(x, "x")
        return _in_dtype(self._distance(x), dtype, "x")

    def project_with_distance(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """``(proj_K(x), dist_K(x))`` in one pass (the oracle call analysis code uses)."""
        x, dtype = self._points(x, "x")
        p, dist = self._project_with_distance(x)
        return _in_dtype(p, dtype, "x"), _in_dtype(dist, dtype, "x")

    def tangent_basis(self, p) -> torch.Tensor:
        """Orthonormal rows spanning the tangent space at points ``p`` on ``K``; ``(B, d, n)``."""
        p, dtype = self._points(p, "p")
        return _in_dtype(self._tangent_basis(p), dtype, "p")

    def _points(self, value, name: str) -> tuple[torch.Tensor, torch.dtype]:
        """Validated points in the dtype the hooks compute in, and the caller's dtype."""
        x = as_points(value, name, self.ambient_dim)
        return (x.to(torch.float32) if x.dtype in _HALF else x), x.dtype

    # -- hooks --------------------------------------------------------------------
    @abc.abstractmethod
    def _sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        """``(num, n)`` float64 samples on the CPU."""

    @abc.abstractmethod
    def _project(self, x: torch.Tensor) -> torch.Tensor: ...

    def _distance(self, x: torch.Tensor) -> torch.Tensor:
        return self._project_with_distance(x)[1]

    def _project_with_distance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The nearest point is held fixed in the distance: by the envelope theorem that
        # gives its gradient (x − p)/‖x − p‖ exactly, whatever project's gradient is.
        p = self._project(x)
        return p, row_norm(x - p.detach())

    @abc.abstractmethod
    def _tangent_basis(self, p: torch.Tensor) -> torch.Tensor: ...

    # -- conveniences ---------------------------------------------------------------
    @property
    def diameter_bound(self) -> float:
        """A radius ``R`` with ``K ⊂ B(0, R)`` (THEORY §3, Corollary 3); ``inf`` if unbounded."""
        return math.inf

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.ambient_dim}, d={self.intrinsic_dim})"


def _in_dtype(t: torch.Tensor, dtype: torch.dtype, name: str) -> torch.Tensor:
    """A hook's result back in the caller's ``dtype``; a ``ValueError`` naming ``name`` if it overflowed.

    Only float16/bfloat16 results are converted (the hooks computed them in float32);
    any other dtype is the hook's own, so that a subclass that changes it stays visible
    to ``toymanifold.testing.check_manifold``. The inputs are finite (validated), so an
    infinite result is a nearest point or a distance beyond the largest number of the
    dtype (65504 in float16). NaN is left alone: the built-in families never produce
    it from finite input, and in a subclass it is that class's bug to report.
    """
    if dtype in _HALF:
        t = t.to(dtype)
    if t.numel():
        d = t.detach()
        # A sum is finite iff every entry is, unless finite entries overflow it.
        if not bool(torch.isfinite(d.sum())) and bool(torch.isinf(d).any()):
            raise ValueError(
                f"{name} is too large for {t.dtype}: its nearest point or distance overflows "
                f"(largest {torch.finfo(t.dtype).max:.6g}); pass {name} in a wider dtype"
            )
    return t
