"""Affine subspaces ``c + range(P)`` with Gaussian data ``N(c, s² P)`` (THEORY §2, §4)."""

from __future__ import annotations

import math

import torch

from ..validation import as_tensor, check_positive
from .base import Manifold, row_norm

__all__ = ["AffineSubspace"]


class AffineSubspace(Manifold):
    """The affine subspace ``c + span(basis)`` of dimension ``d`` in ``R^n``.

    Its data is Gaussian, ``N(c, s² P)`` with ``P`` the orthogonal projector onto the
    span, so that the ideal denoiser has the closed form of THEORY §4 and the
    concentration of THEORY §2 is exact: ``dist(x0 + σε)² = σ² χ²_{n−d}``. ``project``
    is affine, ``c + P(x − c)``, so its Jacobian is ``P``.

    Parameters
    ----------
    basis : array-like of shape (d, n)
        Rows spanning the subspace (``1 ≤ d ≤ n``); orthonormalised by QR (the span is
        what matters) and rejected if they are linearly dependent.
    offset : array-like of shape (n,), optional
        ``c``; the origin by default.
    scale : float
        Standard deviation ``s > 0`` of the data along the subspace.
    """

    def __init__(self, basis, offset=None, scale: float = 1.0):
        b = as_tensor(basis, "basis", dtype=torch.float64)
        if b.ndim != 2 or b.shape[0] < 1 or b.shape[0] > b.shape[1]:
            raise ValueError(f"basis must have shape (d, n) with 1 <= d <= n, got shape {tuple(b.shape)}")
        q, r = torch.linalg.qr(b.T)
        diag = r.diagonal().abs()
        if float(diag.min()) <= 1e-10 * float(diag.max()):
            raise ValueError("basis must have linearly independent rows, got a rank-deficient basis")
        self.basis = q.T.contiguous()
        self.intrinsic_dim, self.ambient_dim = (int(s) for s in self.basis.shape)
        if offset is None:
            self.offset = torch.zeros(self.ambient_dim, dtype=torch.float64)
        else:
            c = as_tensor(offset, "offset", dtype=torch.float64)
            if c.shape != (self.ambient_dim,):
                raise ValueError(f"offset must have shape ({self.ambient_dim},), got shape {tuple(c.shape)}")
            self.offset = c
        self.scale = check_positive(scale, "scale")

    @classmethod
    def random(cls, dim: int, ambient_dim: int, *, scale: float = 1.0, seed: int = 0) -> AffineSubspace:
        """A random ``dim``-dimensional linear subspace of ``R^ambient_dim`` (Gaussian basis, seeded)."""
        g = torch.Generator().manual_seed(seed)
        return cls(torch.randn(dim, ambient_dim, dtype=torch.float64, generator=g), scale=scale)

    @property
    def reach(self) -> float:
        return math.inf

    def _sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(num, self.intrinsic_dim, dtype=torch.float64, generator=generator)
        return self.offset + self.scale * z @ self.basis

    @property
    def _normal_basis(self) -> torch.Tensor:
        """Orthonormal rows spanning the orthogonal complement of the span; ``(n − d, n)``."""
        if not hasattr(self, "_normals"):
            q = torch.linalg.qr(self.basis.T, mode="complete")[0]
            self._normals = q[:, self.intrinsic_dim :].T.contiguous()
        return self._normals

    def _parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(proj(x), coordinates of x − proj(x) in the normal basis, or None)``.

        With ``P`` the projector onto the span, ``proj(x) = c + P(x − c)``, computed
        through whichever side is thinner: ``c + ((x − c) Bᵀ) B`` with the tangent
        basis ``B`` (``d`` rows), or ``x − ((x − c) Nᵀ) N`` with the normal basis ``N``
        (``n − d`` rows) when the codimension is smaller (a plane in ``R^3``: one
        matrix-vector product instead of two skinny matrix products). ``(x − c) Mᵀ`` is
        formed as ``x Mᵀ − c Mᵀ`` so no full-size ``x − c`` is materialised.
        """
        normal_side = self.ambient_dim - self.intrinsic_dim < self.intrinsic_dim
        m = (self._normal_basis if normal_side else self.basis).to(dtype=x.dtype, device=x.device)
        c = self.offset.to(dtype=x.dtype, device=x.device)
        coords = x @ m.T - c @ m.T
        if normal_side:
            return x - coords @ m, coords
        return c + coords @ m, None

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return self._parts(x)[0]

    def _project_with_distance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p, normal_coords = self._parts(x)
        # ‖x − p‖ is the norm of the normal coordinates (N has orthonormal rows).
        return p, row_norm(x - p if normal_coords is None else normal_coords)

    def _tangent_basis(self, p: torch.Tensor) -> torch.Tensor:
        b = self.basis.to(dtype=p.dtype, device=p.device)
        return b.expand(p.shape[0], -1, -1).clone()

    def __repr__(self) -> str:
        return f"AffineSubspace(d={self.intrinsic_dim}, n={self.ambient_dim}, scale={self.scale})"
