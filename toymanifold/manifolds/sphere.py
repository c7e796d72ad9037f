"""Round spheres ``S^d`` of radius ``R`` in ``R^(d+1)`` and the circle (THEORY §1, §4)."""

from __future__ import annotations

import torch

from .._validation import as_tensor, check_int, check_positive
from .base import Manifold

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

    def _squared_norm(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(u, ‖u‖²)`` with ``u = x − c``.

        A reduction over a short last dimension (``(u * u).sum(-1)``, even
        ``vector_norm``) runs an inner loop of a few elements per row and is several
        times slower than elementwise passes or a matrix-vector product.
        """
        u = x if self._origin_centred else x - self.center.to(dtype=x.dtype, device=x.device)
        if u.shape[1] > 2:
            # Beyond two columns, squaring in one pass and summing by a matrix-vector
            # product beats one strided pass per column.
            return u, torch.mul(u, u) @ torch.ones(u.shape[1], dtype=u.dtype, device=u.device)
        sq = torch.mul(u[:, 0], u[:, 0])
        sq.addcmul_(u[:, 1], u[:, 1])
        return u, sq

    def _scaled_direction(self, x: torch.Tensor, u: torch.Tensor, inv: torch.Tensor) -> torch.Tensor:
        """``c + u · inv`` (``inv = R/‖u‖``), with the centre patched where ``u = 0``."""
        p = torch.mul(u, inv[:, None])
        if not self._origin_centred:
            p.add_(self.center.to(dtype=x.dtype, device=x.device))
        # inv = inf exactly on the centre (‖u‖ = 0); a reduction instead of a boolean
        # mask keeps the common case free of full-size temporaries.
        if x.shape[0] and bool(inv.max() == torch.inf):
            # At the centre every point is nearest; return c + R e_0 rather than 0/0.
            on_axis = torch.nonzero(torch.isinf(inv)).squeeze(1)
            e0 = torch.zeros_like(p[:1])
            e0[0, 0] = self.radius
            p[on_axis] = e0 + self.center.to(dtype=x.dtype, device=x.device)
        return p

    def _project_with_distance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u, sq = self._squared_norm(x)
        # The same nearest point as ``project`` bit for bit (callers compare the two),
        # and a correctly rounded norm so that dist(x) is exact where it can be.
        p = self._scaled_direction(x, u, self._inverse_norm(sq.clone()))
        return p, sq.sqrt_().sub_(self.radius).abs_()

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        u, sq = self._squared_norm(x)
        return self._scaled_direction(x, u, self._inverse_norm(sq))

    def _inverse_norm(self, sq: torch.Tensor) -> torch.Tensor:
        """``R/‖u‖`` in place of ``sq = ‖u‖²``.

        rsqrt is about twice as fast as sqrt here and 1/‖u‖ is all the projection
        needs (within an ulp or two of R/sqrt); rsqrt(0) = inf marks the centre.
        """
        inv = torch.rsqrt_(sq)
        return inv.mul_(self.radius) if self.radius != 1.0 else inv

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
