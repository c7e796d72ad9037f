"""Isometric copies of a manifold in a higher-dimensional space (THEORY §2: ``n ≫ d``)."""

from __future__ import annotations

import torch

from ..validation import as_manifold, as_points, check_int
from .base import Manifold, row_norm

__all__ = ["Embedded"]


class Embedded(Manifold):
    """``K = {Q y : y ∈ K_base}`` for a random frame ``Q`` (``n × m``, orthonormal columns).

    Because ``Q`` is an isometry onto its range ``V``, every oracle lifts exactly:
    ``proj_K(x) = Q proj_base(Qᵀx)`` and
    ``dist_K(x)² = dist_base(Qᵀx)² + ‖(I − QQᵀ)x‖²``; intrinsic dimension and reach
    are the base's. This is how users study ``n ≫ d`` (THEORY §2, concentration).
    Gradients are the base's, carried through the linear maps ``Q`` and ``Qᵀ``.

    Parameters
    ----------
    manifold : Manifold
        The base manifold in ``R^m``.
    ambient_dim : int
        ``n ≥ m``.
    seed : int
        Seed of the Gaussian matrix whose QR factor is ``Q``.
    """

    def __init__(self, manifold: Manifold, ambient_dim: int, seed: int = 0):
        as_manifold(manifold)
        m = manifold.ambient_dim
        self.ambient_dim = check_int(ambient_dim, "ambient_dim", minimum=1)
        if self.ambient_dim < m:
            raise ValueError(f"ambient_dim must be >= the base manifold's ambient dimension {m}, got {ambient_dim}")
        self.seed = check_int(seed, "seed", minimum=0)
        self.base = manifold
        self.intrinsic_dim = manifold.intrinsic_dim
        g = torch.Generator().manual_seed(self.seed)
        q, r = torch.linalg.qr(torch.randn(self.ambient_dim, m, dtype=torch.float64, generator=g))
        # Fix the QR sign ambiguity so the frame depends on the seed alone.
        self.frame = (q * torch.sign(r.diagonal())).contiguous()

    @property
    def reach(self) -> float:
        return self.base.reach

    @property
    def diameter_bound(self) -> float:
        return self.base.diameter_bound

    def embed(self, y) -> torch.Tensor:
        """Map base points ``y`` ``(B, m)`` into ``R^n``: ``Q y``."""
        y = as_points(y, "y", self.base.ambient_dim)
        return y @ self.frame.to(dtype=y.dtype, device=y.device).T

    def to_base(self, x) -> torch.Tensor:
        """Base coordinates ``Qᵀx`` ``(B, m)`` of points ``x`` in ``R^n`` (for plots)."""
        x = as_points(x, "x", self.ambient_dim)
        return x @ self.frame.to(dtype=x.dtype, device=x.device)

    def _sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        return self.base._sample(num, generator) @ self.frame.T

    def _project_with_distance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.frame.to(dtype=x.dtype, device=x.device)
        y = x @ q
        p_base, d_base = self.base._project_with_distance(y)
        off = x - y @ q.T
        # dist² = d_base² + ‖off‖², as one norm (exact where squares would overflow).
        return p_base @ q.T, row_norm(torch.cat([off, d_base[:, None]], dim=1))

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        q = self.frame.to(dtype=x.dtype, device=x.device)
        return self.base._project(x @ q) @ q.T

    def _tangent_basis(self, p: torch.Tensor) -> torch.Tensor:
        q = self.frame.to(dtype=p.dtype, device=p.device)
        return self.base._tangent_basis(p @ q) @ q.T

    def __repr__(self) -> str:
        return f"Embedded({self.base!r}, ambient_dim={self.ambient_dim}, seed={self.seed})"
