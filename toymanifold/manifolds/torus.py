"""The torus of revolution in ``R^3`` with closed-form oracles (THEORY §1)."""

from __future__ import annotations

import math

import torch

from ..validation import check_positive
from .base import Manifold, plain_norms_are_exact

__all__ = ["Torus"]


def _hypot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``torch.hypot`` (no overflow or underflow), with gradient 0 rather than 0/0 at ``(0, 0)``."""
    zero = (a == 0) & (b == 0)
    return torch.where(zero, 0.0, torch.hypot(torch.where(zero, 1.0, a), b))


class Torus(Manifold):
    """The torus ``{((R + r cos v) cos u, (R + r cos v) sin u, r sin v)}`` in ``R^3``.

    ``R`` is the major radius (distance from the ``z``-axis to the centre of the tube),
    ``r < R`` the minor radius (radius of the tube); the torus is centred at the origin
    with the ``z``-axis as its axis of revolution.

    Exact oracles (THEORY §1). Write ``ρ = ‖(x₁, x₂)‖`` and ``D = ‖(ρ − R, x₃)‖`` (the
    distance to the core circle ``{ρ = R, x₃ = 0}``). The nearest point of the core
    circle is ``c = R (x₁, x₂, 0)/ρ`` and the nearest point of the torus is
    ``c + r (x − c)/D``, so ``dist(x) = |D − r|``. The medial axis is the ``z``-axis
    (``ρ = 0``: every point of a whole circle of the torus is nearest) and the core
    circle (``D = 0``: a whole circle of the tube is nearest); there ``project``
    returns a valid nearest point, taking the direction ``+x₁`` around the axis and the
    outward radial direction in the tube. Both oracles are these formulas, so autograd
    differentiates them (with finite values on the medial axis too).

    The reach is ``min(r, R − r)``: ``r`` is the radius of curvature of the tube, and
    ``R − r`` the distance from the inner equator to the ``z``-axis.

    Data: the uniform (area) distribution. The area element is ``r (R + r cos v) du dv``,
    so ``u`` is uniform and ``v`` has density ``∝ R + r cos v``, drawn by rejection
    (acceptance rate ``R/(R + r) ≥ 1/2``).

    Parameters
    ----------
    major_radius : float
        ``R > 0``.
    minor_radius : float
        ``r`` with ``0 < r < R`` (otherwise the surface self-intersects).

    Examples
    --------
    >>> import toymanifold as tm
    >>> t = tm.Torus(2.0, 0.5)
    >>> t.distance([[3.0, 0.0, 0.0]])
    tensor([0.5000], dtype=torch.float64)
    >>> t.reach
    0.5
    """

    ambient_dim = 3
    intrinsic_dim = 2

    def __init__(self, major_radius: float, minor_radius: float):
        self.major_radius = check_positive(major_radius, "major_radius")
        self.minor_radius = check_positive(minor_radius, "minor_radius")
        if self.minor_radius >= self.major_radius:
            raise ValueError(
                f"minor_radius must be < major_radius (a ring torus), got minor_radius={self.minor_radius} "
                f">= major_radius={self.major_radius}"
            )

    @property
    def reach(self) -> float:
        return min(self.minor_radius, self.major_radius - self.minor_radius)

    @property
    def diameter_bound(self) -> float:
        return self.major_radius + self.minor_radius

    def _sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        R, r = self.major_radius, self.minor_radius
        v = torch.empty(0, dtype=torch.float64)
        while v.numel() < num:
            # Draw a batch sized for the acceptance rate R/(R + r) plus a margin; the
            # loop runs once with overwhelming probability and at most a few times.
            m = int((num - v.numel()) * (R + r) / R * 1.1) + 16
            t = torch.rand(m, dtype=torch.float64, generator=generator) * (2 * math.pi)
            w = torch.rand(m, dtype=torch.float64, generator=generator) * (R + r)
            v = torch.cat([v, t[w < R + r * torch.cos(t)]])
        v = v[:num]
        u = torch.rand(num, dtype=torch.float64, generator=generator) * (2 * math.pi)
        ring = R + r * torch.cos(v)
        return torch.stack([ring * torch.cos(u), ring * torch.sin(u), r * torch.sin(v)], dim=-1)

    def _project_with_distance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``proj(x) = c + r (x − c)/D`` with ``c = R (x₁, x₂, 0)/ρ`` and ``dist(x) = |D − r|``.

        In coordinates ``proj(x) = (s x₁, s x₂, f x₃)`` with ``f = r/D`` and
        ``s = (R + f (ρ − R))/ρ``. Where a point lies on the medial axis (``ρ = 0`` or
        ``D = 0``) or a square over- or underflows, ``plain_norms_are_exact`` says no
        and the batch takes the angle form of ``_angles`` instead.
        """
        R, r = self.major_radius, self.minor_radius
        x1, x2, x3 = x.unbind(-1)
        rho = torch.sqrt(x1 * x1 + x2 * x2)
        a = rho - R
        D = torch.sqrt(a * a + x3 * x3)
        if not (plain_norms_are_exact(rho) and plain_norms_are_exact(D)):
            cos_u, sin_u, cos_v, sin_v, D = self._angles(x)
            ring = R + r * cos_v
            return torch.stack([ring * cos_u, ring * sin_u, r * sin_v], dim=-1), (D - r).abs()
        f = r / D
        s = (R + f * a) / rho
        return x * torch.stack([s, s, f], dim=-1), (D - r).abs()

    def _angles(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(cos u, sin u, cos v, sin v, D)`` of the nearest point of every row of ``x``.

        ``(cos u, sin u) = (x₁, x₂)/ρ`` and ``(cos v, sin v) = (ρ − R, x₃)/D`` (class
        docstring), so that ``proj(x) = ((R + r cos v) cos u, (R + r cos v) sin u, r sin v)``;
        ``ρ`` and ``D`` come from ``hypot``, which neither overflows nor underflows. On
        the medial axis a division is 0/0: there take ``u = 0`` (on the z-axis) and
        ``v = 0`` (on the core circle); the inner ``where`` keeps the gradient of those
        rows finite too.
        """
        x1, x2, x3 = x.unbind(-1)
        rho = _hypot(x1, x2)
        on_axis = rho == 0
        rho_ = torch.where(on_axis, 1.0, rho)
        a = rho - self.major_radius
        D = _hypot(a, x3)
        on_core = D == 0
        D_ = torch.where(on_core, 1.0, D)
        # x₂ = 0 on the axis and x₃ = 0 on the core circle: their sines need no guard.
        return torch.where(on_axis, 1.0, x1 / rho_), x2 / rho_, torch.where(on_core, 1.0, a / D_), x3 / D_, D

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return self._project_with_distance(x)[0]

    def _tangent_basis(self, p: torch.Tensor) -> torch.Tensor:
        """``e_u = (−sin u, cos u, 0)`` and ``e_v = (−sin v cos u, −sin v sin u, cos v)``.

        The angles are those of the nearest point (``_angles``), so the rows are
        orthonormal even for ``p`` slightly off ``K``.
        """
        cos_u, sin_u, cos_v, sin_v, _ = self._angles(p)
        e_u = torch.stack([-sin_u, cos_u, torch.zeros_like(cos_u)], dim=-1)
        e_v = torch.stack([-sin_v * cos_u, -sin_v * sin_u, cos_v], dim=-1)
        return torch.stack([e_u, e_v], dim=-2)

    def __repr__(self) -> str:
        return f"Torus(major_radius={self.major_radius}, minor_radius={self.minor_radius})"
