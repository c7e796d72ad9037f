"""Round spheres ``S^d`` of radius ``R`` in ``R^(d+1)`` and the circle (THEORY §1, §4)."""

from __future__ import annotations

import torch

from ..validation import as_tensor, check_int, check_positive
from .base import Manifold, plain_norms_are_exact

__all__ = ["Circle", "Sphere"]


class Sphere(Manifold):
    """The sphere ``{x ∈ R^(d+1) : ‖x − c‖ = R}`` with uniform data.

    Exact oracles (THEORY §4): ``proj(x) = c + R u/‖u‖`` with ``u = x − c`` and
    ``dist(x) = |‖u‖ − R|``; the reach is ``R``. The centre is the whole medial axis:
    there every point of the sphere is nearest, and ``project`` returns ``c + R e_0``.
    Both oracles are these formulas, so autograd differentiates them: ``project`` has
    Jacobian ``R (I − ûûᵀ)/‖u‖`` (``û = u/‖u‖``) off the centre.

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
        self._off_origin = bool(self.center.any())

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

    def _project_with_distance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``proj(x) = c + R u/‖u‖`` and ``dist(x) = |‖u‖ − R|`` with ``u = x − c`` (THEORY §4).

        Where a point is the centre, or the squares of ``u`` over- or underflow,
        ``plain_norms_are_exact`` says no and the batch takes ``_project_scaled``.
        """
        c = self.center.to(dtype=x.dtype, device=x.device)
        u = x - c if self._off_origin else x  # (the broadcast subtraction costs three copies of x)
        norm = torch.linalg.vector_norm(u, dim=-1, keepdim=True)
        if not plain_norms_are_exact(norm):
            return self._project_scaled(u, c)
        p = torch.addcmul(c, u, self.radius / norm) if self._off_origin else u * (self.radius / norm)
        return p, (norm.squeeze(1) - self.radius).abs()

    def _project_scaled(self, u: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same formula with ``v = u/m``, ``m = maxᵢ |uᵢ|``, for any finite ``u``.

        ``u/‖u‖ = v/‖v‖`` and ``‖u‖ = m ‖v‖``, and the squares of ``v`` lie in ``[0, 1]``:
        none overflows or underflows (1e±160 in float64). At the centre every point of
        the sphere is nearest: ``c + R e_0`` rather than 0/0 (the guarded divisions keep
        the gradient finite there too).
        """
        m = u.detach().abs().amax(dim=-1, keepdim=True)  # a constant for the gradient (``scaled_norm``)
        v = u / torch.where(m > 0, m, 1.0)
        norm_v = torch.linalg.vector_norm(v, dim=-1, keepdim=True)  # in [1, √n], or 0 at the centre
        at_centre = norm_v == 0
        direction = torch.where(at_centre, self._e0(u), v / torch.where(at_centre, 1.0, norm_v))
        return c + self.radius * direction, (m * norm_v - self.radius).abs().squeeze(1)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return self._project_with_distance(x)[0]

    def _e0(self, x: torch.Tensor) -> torch.Tensor:
        return torch.eye(1, self.ambient_dim, dtype=x.dtype, device=x.device)[0]

    def _tangent_basis(self, p: torch.Tensor) -> torch.Tensor:
        # The unit normal u at p (e_0 at the centre), as in the projection.
        u = (self._project(p) - self.center.to(dtype=p.dtype, device=p.device)) / self.radius
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
