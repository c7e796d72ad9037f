"""Round spheres ``S^d`` of radius ``R`` in ``R^(d+1)`` and the circle (THEORY §1, §4)."""

from __future__ import annotations

import math

import torch

from ..validation import as_tensor, check_finite, check_int, check_positive
from .base import Manifold, check_sum_bound, project_in_blocks

__all__ = ["Circle", "Sphere"]


class Sphere(Manifold):
    """The sphere ``{x ∈ R^(d+1) : ‖x − c‖ = R}`` with uniform data.

    Exact oracles (THEORY §4): ``proj(x) = c + R u/‖u‖`` with ``u = x − c`` and
    ``dist(x) = |‖u‖ − R|``; the reach is ``R``. The centre is the whole medial axis:
    there every point of the sphere is nearest, and ``project`` returns ``c + R e_0``.

    Parameters
    ----------
    dim : int
        Intrinsic dimension ``d ≥ 1``; the ambient dimension is ``d + 1``.
    radius : float
        ``R > 0``.
    center : array-like of shape (d + 1,), optional
        ``c``; the origin by default.

    Examples
    --------
    >>> import toymanifold as tm
    >>> s = tm.Sphere(2, radius=2.0)
    >>> s.distance([[0.0, 0.0, 3.0]])
    tensor([1.], dtype=torch.float64)
    """

    _checks_finite = True  # in the pass that checks for the centre (_project_block)

    def __init__(self, dim: int, radius: float = 1.0, center=None):
        self.intrinsic_dim = check_int(dim, "dim", minimum=1)
        self.ambient_dim = self.intrinsic_dim + 1
        self.radius = check_positive(radius, "radius")
        if center is None:
            self.center = torch.zeros(self.ambient_dim, dtype=torch.float64)
        else:
            c = as_tensor(center, "center", dtype=torch.float64)
            if c.shape != (self.ambient_dim,):
                raise ValueError(f"center must have shape ({self.ambient_dim},), got shape {tuple(c.shape)}")
            self.center = c
        self._origin_centred = not bool(self.center.any())

    @property
    def reach(self) -> float:
        return self.radius

    @property
    def diameter_bound(self) -> float:
        return float(torch.linalg.vector_norm(self.center)) + self.radius

    def _sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        g = torch.randn(num, self.ambient_dim, dtype=torch.float64, generator=generator)
        # A standard Gaussian direction is uniform on the sphere; a zero draw has probability 0.
        return self.center + self.radius * g / torch.linalg.vector_norm(g, dim=-1, keepdim=True)

    def _unit_direction(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        norm = torch.linalg.vector_norm(u, dim=-1, keepdim=True)
        e0 = torch.zeros_like(u)
        e0[:, 0] = 1.0
        # At the centre every point is nearest; pick c + R e_0 rather than 0/0.
        direction = torch.where(norm > 0, u / torch.where(norm > 0, norm, 1.0), e0)
        return direction, norm.squeeze(-1)

    def _project_block(self, x: torch.Tensor, p: torch.Tensor, dist: torch.Tensor | None) -> None:
        """Write ``proj(x)`` into ``p`` (and ``dist(x)`` into ``dist``) for one row block.

        ``p = c + u · R/‖u‖`` with ``u = x − c``. For a few columns the squared norm and
        the scaled write are one strided pass per column: a reduction or a broadcast
        over a trailing dimension of 2–3 runs an inner loop of a few elements per row
        and costs several passes. ``R/‖u‖`` comes from ``rsqrt`` (about twice as fast
        as ``sqrt``, within an ulp or two of ``R/sqrt``); ``dist`` uses a correctly
        rounded ``sqrt``. ``project`` and ``project_with_distance`` both come here, so
        their points agree bit for bit (callers compare the two).
        """
        u = x if self._origin_centred else x - self.center.to(dtype=x.dtype, device=x.device)
        n = u.shape[1]
        if n <= 4:
            cols = u.unbind(1)
            sq = torch.mul(cols[0], cols[0])
            for col in cols[1:]:
                sq.addcmul_(col, col)
        else:
            sq = torch.mul(u, u) @ torch.ones(n, dtype=u.dtype, device=u.device)
        if dist is not None:
            torch.sqrt(sq, out=dist).sub_(self.radius).abs_()
        inv = torch.rsqrt(sq)  # R/‖u‖ below
        # Two dot products check the block: Σ ‖u‖²/‖u‖ + Σ 1/‖u‖² is NaN or inf where
        # a row holds NaN/inf, sits at the centre (0·inf) or overflows in ‖u‖²
        # (inf·0), and huge where ‖u‖² is subnormal (imprecise).
        total = float(torch.dot(sq, inv)) + float(torch.dot(inv, inv)) if sq.numel() else 0.0
        if self.radius != 1.0:
            inv.mul_(self.radius)
        if n <= 4:
            for col, out in zip(cols, p.unbind(1)):
                torch.mul(col, inv, out=out)
        else:
            torch.mul(u, inv[:, None], out=p)
        if not self._origin_centred:
            p.add_(self.center.to(dtype=x.dtype, device=x.device))
        if not total <= check_sum_bound(x.dtype):  # (also true for NaN)
            self._fix_rows(x, u, sq, p, dist)

    def _fix_rows(self, x, u, sq, p, dist) -> None:
        """Rows with ``‖u‖²`` zero, subnormal, infinite or NaN, redone without it.

        Raises the input error for NaN/inf. Otherwise ``u`` is rescaled by its largest
        entry before the norm is taken; at the centre (``u = 0``) every point of the
        sphere is nearest, and ``c + R e_0`` is returned rather than 0/0.
        """
        check_finite(x, "x")
        tiny = torch.finfo(sq.dtype).tiny
        rows = torch.nonzero(~((sq >= tiny) & (sq < math.inf))).squeeze(1)
        ur = u[rows]
        m = ur.abs().amax(dim=1, keepdim=True)
        v = ur / torch.where(m > 0, m, 1.0)
        nv = torch.linalg.vector_norm(v, dim=1, keepdim=True)
        e0 = torch.zeros_like(v)
        e0[:, 0] = 1.0
        direction = torch.where(m > 0, v / torch.where(m > 0, nv, 1.0), e0)
        p[rows] = self.center.to(dtype=x.dtype, device=x.device) + self.radius * direction
        if dist is not None:
            dist[rows] = (m * nv).squeeze(1).sub_(self.radius).abs_()

    def _project_with_distance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return project_in_blocks(self._project_block, x, with_distance=True)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return project_in_blocks(self._project_block, x, with_distance=False)[0]

    def _tangent_basis(self, p: torch.Tensor) -> torch.Tensor:
        c = self.center.to(dtype=p.dtype, device=p.device)
        u, _ = self._unit_direction(p - c)
        # Householder reflection H with H e_0 = −s u: its other columns are an orthonormal
        # basis of u's complement. Taking s = sign(u_0) keeps ‖v‖ ≥ √2 (no cancellation).
        s = torch.where(u[:, :1] >= 0, 1.0, -1.0).to(u.dtype)
        v = u.clone()
        v[:, :1] += s
        eye = torch.eye(self.ambient_dim, dtype=p.dtype, device=p.device)
        h = eye - 2.0 * v[:, :, None] * v[:, None, :] / (v * v).sum(-1)[:, None, None]
        return h[:, 1:, :]

    def __repr__(self) -> str:
        return f"Sphere(dim={self.intrinsic_dim}, radius={self.radius})"


class Circle(Sphere):
    """The circle of radius ``R`` in ``R^2`` (``Sphere(1, R)``; THEORY §4, ``A_2 = I_1/I_0``)."""

    def __init__(self, radius: float = 1.0, center=None):
        super().__init__(1, radius=radius, center=center)

    def __repr__(self) -> str:
        return f"Circle(radius={self.radius})"
