"""The torus of revolution in ``R^3`` with closed-form oracles (THEORY §1)."""

from __future__ import annotations

import math

import torch

from ..validation import check_finite, check_positive
from .base import Manifold, check_sum_bound, project_in_blocks

__all__ = ["Torus"]


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
    outward radial direction in the tube.

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
    _checks_finite = True  # in the pass that checks for the medial axis (_project_block)

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
        vs = []
        have = 0
        while have < num:
            # Draw a batch sized for the acceptance rate R/(R + r) plus a margin; the
            # loop runs once with overwhelming probability and at most a few times.
            m = int((num - have) * (R + r) / R * 1.1) + 16
            v = torch.rand(m, dtype=torch.float64, generator=generator) * (2 * math.pi)
            w = torch.rand(m, dtype=torch.float64, generator=generator) * (R + r)
            v = v[w < R + r * torch.cos(v)]
            vs.append(v)
            have += v.numel()
        v = torch.cat(vs)[:num]
        u = torch.rand(num, dtype=torch.float64, generator=generator) * (2 * math.pi)
        ring = R + r * torch.cos(v)
        return torch.stack([ring * torch.cos(u), ring * torch.sin(u), r * torch.sin(v)], dim=-1)

    def _project_with_distance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return project_in_blocks(self._project_block, x, with_distance=True)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return project_in_blocks(self._project_block, x, with_distance=False)[0]

    def _project_block(self, x: torch.Tensor, p: torch.Tensor, dist: torch.Tensor | None) -> None:
        """Write ``proj(x)`` into ``p`` (and ``dist(x)`` into ``dist``) for one row block.

        The generic formula (class docstring) is ``p = (s x₁, s x₂, f x₃)`` with
        ``f = r/D`` and ``s = (R + f (ρ − R))/ρ``, evaluated as one pass per column or
        per intermediate, most of them in place (a reduction or a broadcast over the
        size-3 last dimension costs several passes). ``1/ρ`` and ``1/D`` come from
        ``rsqrt`` (about twice as fast as ``sqrt``); ``D`` itself, needed only for the
        distance, is a correctly rounded ``sqrt``. ``1/ρ`` or ``1/D`` is infinite
        exactly on the medial axis, which makes ``s`` non-finite. One number checks
        the block, ``Σ s D² + 1/ρ² + 1/D²``: it is NaN or inf where a row is on the
        medial axis, holds NaN/inf or overflows in a square, and huge where ``ρ²`` or
        ``D²`` is subnormal (imprecise); only then are the rows found and redone by
        ``_project_medial``.
        """
        R, r = self.major_radius, self.minor_radius
        x1, x2, x3 = x.unbind(1)
        rho2 = torch.mul(x1, x1).addcmul_(x2, x2)
        inv_rho = torch.rsqrt(rho2)
        a = torch.mul(rho2, inv_rho).sub_(R)  # ρ² · ρ⁻¹ − R = ρ − R
        D2 = torch.mul(a, a).addcmul_(x3, x3)
        if dist is not None:
            torch.sqrt(D2, out=dist).sub_(r).abs_()
        inv_D = torch.rsqrt(D2)
        total = float(torch.dot(inv_rho, inv_rho)) + float(torch.dot(inv_D, inv_D)) if D2.numel() else 0.0
        f = inv_D.mul_(r)  # r/D
        scale = a.mul_(f).add_(R).mul_(inv_rho)  # (R + f (ρ − R))/ρ
        if D2.numel():
            total += float(torch.dot(scale, D2))
        p1, p2, p3 = p.unbind(1)
        torch.mul(x1, scale, out=p1)
        torch.mul(x2, scale, out=p2)
        torch.mul(x3, f, out=p3)
        if not total <= check_sum_bound(x.dtype):  # (also true for NaN)
            check_finite(x, "x")
            tiny = torch.finfo(x.dtype).tiny
            ok = (rho2 >= tiny) & (rho2 < math.inf) & (D2 >= tiny) & (D2 < math.inf)
            i = torch.nonzero(~ok).squeeze(1)
            xi = x[i]
            p[i] = self._project_medial(xi)
            if dist is not None:
                dist[i] = (torch.hypot(torch.hypot(xi[:, 0], xi[:, 1]) - R, xi[:, 2]) - r).abs()

    def _project_medial(self, x: torch.Tensor) -> torch.Tensor:
        """Rows on the medial axis or with overflowing squares: the formula with ``hypot``.

        On the z-axis take the direction +x₁, on the core circle go outward.
        """
        R, r = self.major_radius, self.minor_radius
        x1, x2, x3 = x.unbind(-1)
        rho = torch.hypot(x1, x2)
        on_axis = rho == 0
        safe_rho = torch.where(on_axis, torch.ones_like(rho), rho)
        c = torch.where(on_axis, torch.ones_like(rho), x1 / safe_rho)
        s = x2 / safe_rho  # x₂ = 0 on the axis
        a = rho - R
        D = torch.hypot(a, x3)
        on_core = D == 0
        safe_D = torch.where(on_core, torch.ones_like(D), D)
        cv = torch.where(on_core, torch.ones_like(D), a / safe_D)
        sv = x3 / safe_D  # x₃ = 0 on the core circle
        ring = R + r * cv
        return torch.stack([ring * c, ring * s, r * sv], dim=-1)

    def _tangent_basis(self, p: torch.Tensor) -> torch.Tensor:
        R = self.major_radius
        x1, x2, x3 = p.unbind(-1)
        rho = torch.hypot(x1, x2)
        # e_u: the direction of revolution; undefined only on the z-axis, which is not on K.
        inv_rho = torch.where(rho == 0, 1.0, rho).reciprocal()
        c = torch.where(rho == 0, 1.0, x1 * inv_rho)
        s = x2 * inv_rho
        zero = torch.zeros_like(c)
        e_u = torch.stack([-s, c, zero], dim=-1)
        # e_v = (−sin v cos u, −sin v sin u, cos v) with (cos v, sin v) = (ρ − R, x₃)/r;
        # normalising by the actual norm keeps the rows orthonormal for p slightly off K.
        a = rho - R
        D = torch.hypot(a, x3)
        inv_D = torch.where(D == 0, 1.0, D).reciprocal()
        cv = torch.where(D == 0, 1.0, a * inv_D)
        sv = x3 * inv_D
        e_v = torch.stack([-sv * c, -sv * s, cv], dim=-1)
        return torch.stack([e_u, e_v], dim=-2)

    def __repr__(self) -> str:
        return f"Torus(major_radius={self.major_radius}, minor_radius={self.minor_radius})"
