"""The Archimedean spiral (planar Swiss-roll curve) and the Swiss-roll surface (THEORY §1).

Both sets are built on the curve

    γ(θ) = b θ (cos θ, sin θ),   θ ∈ [θ₀, θ₁],   0 < θ₀ < θ₁,

whose radius ``‖γ(θ)‖ = b θ`` grows by ``2π b`` per winding. The defaults
(``θ₀ = 1.5π``, ``θ₁ = 4.5π``, ``b = 1``, height 21) are the curve and strip of
scikit-learn's ``make_swiss_roll``; unlike scikit-learn, the data here are uniform in
arc length (area for the surface), not uniform in ``θ``.

Projection
----------
``project`` is the global nearest point, exact to float64 rounding, by the solver of
``_spiral_solver`` (its docstring proves that the candidates it compares, both
endpoints and one local minimum per front half-window, contain a global minimiser;
points far outside the roll are compared without the cancellation of ``ρ²``).

Reach
-----
No closed form exists, so the reach is computed numerically from Federer's
characterisation (Federer 1959, Thm 4.18), valid for any closed set::

    reach(K) = inf_{a ≠ c ∈ K} ‖c − a‖² / (2 dist(c − a, Tan(K, a))),

where ``Tan(K, a)`` is the tangent line at an interior point and the inward tangent
half-line at an endpoint. The infimum is taken over (i) the curvature limit ``c → a``,
``1/κ(θ) = b (θ² + 1)^{3/2} / (θ² + 2)``, increasing in ``θ`` so minimal at ``θ₀``;
(ii) an interior point ``a`` against every point ``c`` (the bottleneck between
windings), on a grid of spacing at most 0.04 rad refined by bounded Nelder–Mead from
the three best grid pairs; (iii) the two endpoints against every point, on the same
grid refined by bounded scalar minimisation. The
result is ``b`` times the value for ``b = 1`` (the curve scales linearly). The
minimising pair is kept as ``_reach_witness`` so tests can check that the value is
attained (a point just beyond it along the normal has another nearest point).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy import optimize

from ..validation import check_positive
from ._spiral_solver import nearest_theta, theta_with_gradient
from .base import Manifold, row_norm

__all__ = ["Spiral", "SwissRoll"]

# --------------------------------------------------------------------------------------
# Arc length and reach
# --------------------------------------------------------------------------------------


def _arc_length(theta, b: float):
    """``s(θ) = (b/2)(θ √(1 + θ²) + asinh θ)``: arc length of ``γ`` from ``θ = 0``."""
    return 0.5 * b * (theta * torch.sqrt(1.0 + theta * theta) + torch.asinh(theta))


def _inverse_arc_length(s: torch.Tensor, b: float, t0: float, t1: float) -> torch.Tensor:
    """``θ`` with ``s(θ) = s``: Newton from the right, monotone because ``s`` is convex."""
    # s(θ) ≥ bθ²/2, so √(2s/b) ≥ θ: a start right of the root.
    theta = torch.clamp(torch.sqrt(2.0 * s / b), min=t0, max=t1)
    for _ in range(100):
        step = (_arc_length(theta, b) - s) / (b * torch.sqrt(1.0 + theta * theta))
        theta = torch.clamp(theta - step, min=t0, max=t1)
        if bool((step.abs() <= 1e-15 * theta).all()):
            break
    return theta


def _curvature_radius(theta, b: float = 1.0):
    """``1/κ(θ) = b (θ² + 1)^{3/2} / (θ² + 2)``."""
    return b * (theta * theta + 1.0) ** 1.5 / (theta * theta + 2.0)


def _np_curve(t):
    c, s = np.cos(t), np.sin(t)
    p = np.stack([t * c, t * s], axis=-1)
    d = np.stack([c - t * s, s + t * c], axis=-1)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    nrm = np.stack([-d[..., 1], d[..., 0]], axis=-1)  # left normal: towards the centre of curvature
    return p, d, nrm


def _pair_q(s, t):
    """Federer's ratio for interior ``a = γ(s)``, ``c = γ(t)`` (``b = 1``)."""
    pa, _, na = _np_curve(s)
    pc, _, _ = _np_curve(t)
    v = pc - pa
    vv = (v * v).sum(-1)
    vn = np.abs((v * na).sum(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = vv / (2.0 * vn)
    # As c → a the ratio tends to the radius of curvature; evaluate the limit there
    # rather than 0/0.
    close = np.abs(t - s) < 1e-4
    return np.where(close, _curvature_radius(s), np.where(vn > 0, q, np.inf))


def _end_q(t, t_end: float, inward: float):
    """Federer's ratio for the endpoint ``a = γ(t_end)`` (tangent half-line ``inward·γ'``)."""
    pa, da, na = _np_curve(np.asarray(t_end))
    pc, _, _ = _np_curve(t)
    v = pc - pa
    vv = (v * v).sum(-1)
    along = inward * (v * da).sum(-1)
    dist = np.where(along >= 0, np.abs((v * na).sum(-1)), np.sqrt(vv))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = vv / (2.0 * dist)
    close = np.abs(t - t_end) < 1e-4
    return np.where(close, _curvature_radius(t_end), np.where(dist > 0, q, np.inf))


@functools.lru_cache(maxsize=64)
def _unit_reach(t0: float, t1: float) -> tuple[float, tuple]:
    """Reach of ``γ`` with ``b = 1`` and its witness (see the module docstring)."""
    best = (_curvature_radius(t0), ("curvature", t0, t0))
    m = max(64, math.ceil((t1 - t0) / 0.04) + 1)
    grid = np.linspace(t0, t1, m)
    # (ii) interior pairs on the grid, in row blocks to bound memory: for every row
    # (point a) keep its best partner, then refine the best rows.
    pts, _, nrm = _np_curve(grid)
    row_best = np.full(m, np.inf)
    row_arg = np.zeros(m, dtype=np.int64)
    for start in range(0, m, 256):
        rows = slice(start, min(m, start + 256))
        v = pts[None, :, :] - pts[rows, None, :]
        vv = (v * v).sum(-1)
        vn = np.abs((v * nrm[rows, None, :]).sum(-1))
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(vn > 0, vv / (2.0 * vn), np.inf)
        i = np.arange(rows.start, rows.stop)
        q[i - start, i] = np.inf  # a = c
        row_arg[rows] = np.argmin(q, axis=1)
        row_best[rows] = q[i - start, row_arg[rows]]
    order = np.argsort(row_best)[:3]
    cands = [(row_best[i], grid[i], grid[row_arg[i]]) for i in order]
    for _, s0, u0 in cands:
        res = optimize.minimize(
            lambda z: float(_pair_q(np.asarray(z[0]), np.asarray(z[1]))),
            x0=[s0, u0],
            method="Nelder-Mead",
            bounds=[(t0, t1), (t0, t1)],
            options={"xatol": 1e-11, "fatol": 1e-14, "maxiter": 600},
        )
        val = float(res.fun)
        if val < best[0]:
            best = (val, ("pair", float(res.x[0]), float(res.x[1])))
    # (iii) endpoints against every point.
    h = grid[1] - grid[0]
    for t_end, inward in ((t0, 1.0), (t1, -1.0)):
        q = _end_q(grid, t_end, inward)
        j = int(np.argmin(q))
        lo, hi = max(t0, grid[j] - h), min(t1, grid[j] + h)
        res = optimize.minimize_scalar(
            lambda z, te=t_end, w=inward: float(_end_q(np.asarray(z), te, w)),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-13},
        )
        val, arg = (float(res.fun), float(res.x)) if res.fun < q[j] else (float(q[j]), float(grid[j]))
        if val < best[0]:
            best = (val, ("end", t_end, arg))
    return best


# --------------------------------------------------------------------------------------
# Public classes
# --------------------------------------------------------------------------------------


def _check_range(theta_min, theta_max, scale):
    t0 = check_positive(theta_min, "theta_min")
    t1 = check_positive(theta_max, "theta_max")
    if t1 <= t0:
        raise ValueError(f"theta_max must be > theta_min, got theta_max={t1} <= theta_min={t0}")
    b = check_positive(scale, "scale")
    return t0, t1, b


class Spiral(Manifold):
    """The Archimedean spiral ``γ(θ) = b θ (cos θ, sin θ)``, ``θ ∈ [θ₀, θ₁]``, in ``R^2``.

    The planar Swiss-roll curve: ``(θ₁ − θ₀)/(2π)`` windings with radial gap ``2πb``.
    ``project`` is the global nearest point (THEORY §1), exact to float64 rounding: see
    ``_spiral_solver`` for the candidate set (both endpoints and one local minimum per
    front half-window) and its proof. It is differentiable, with the Jacobian
    ``γ′(θ*) dθ*/dx`` of the implicit function theorem (zero where an endpoint is
    nearest); ``distance`` has gradient ``(x − proj(x))/dist(x)``. ``reach`` is computed
    numerically from Federer's formula (module docstring) and cached.

    Data: uniform in arc length, ``s(θ) = (b/2)(θ√(1 + θ²) + asinh θ)``, inverted by
    Newton. (scikit-learn's ``make_swiss_roll`` is uniform in ``θ`` instead.)

    Parameters
    ----------
    theta_min, theta_max : float
        ``0 < θ₀ < θ₁``. Default ``1.5π`` and ``4.5π`` (scikit-learn's roll).
    scale : float
        ``b > 0``: the radius at angle ``θ`` is ``bθ``.

    Examples
    --------
    >>> import math
    >>> import toymanifold as tm
    >>> s = tm.Spiral()
    >>> float(s.distance([[0.0, 0.0]])[0]) == s.theta_min  # the centre: the inner endpoint b θ₀ is nearest
    True
    >>> round(s.reach, 6)  # Federer's formula, numerically (module docstring)
    3.111346
    """

    ambient_dim = 2
    intrinsic_dim = 1

    def __init__(self, theta_min: float = 1.5 * math.pi, theta_max: float = 4.5 * math.pi, scale: float = 1.0):
        self.theta_min, self.theta_max, self.scale = _check_range(theta_min, theta_max, scale)

    # -- geometry shared with SwissRoll ----------------------------------------------
    def _curve(self, theta: torch.Tensor) -> torch.Tensor:
        r = self.scale * theta
        return torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=-1)

    def _unit_tangent(self, q: torch.Tensor) -> torch.Tensor:
        """Unit tangent ``γ′(θ)/‖γ′(θ)‖`` at planar points ``q`` of the curve (``θ = ‖q‖/b``).

        In float64 (as the projection) with norms that cannot overflow (``row_norm``),
        so that points far off the curve get a finite unit vector too.
        """
        theta = row_norm(q.to(torch.float64)) / self.scale
        c, s = torch.cos(theta), torch.sin(theta)
        d = torch.stack([c - theta * s, s + theta * c], dim=-1)
        return (d / row_norm(d)[:, None]).to(q.dtype)

    def _sample_theta(self, num: int, generator: torch.Generator) -> torch.Tensor:
        b, t0, t1 = self.scale, self.theta_min, self.theta_max
        s0, s1 = (float(_arc_length(torch.tensor(t, dtype=torch.float64), b)) for t in (t0, t1))
        s = s0 + (s1 - s0) * torch.rand(num, dtype=torch.float64, generator=generator)
        return _inverse_arc_length(s, b, t0, t1)

    def _nearest_point(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """The nearest point of the curve to the planar points ``(x1, x2)``; shape ``(B, 2)``, float64.

        Differentiable: the parameter carries the derivative of ``θ*(x)`` from the
        implicit function theorem (``theta_with_gradient``), so ``project``'s Jacobian
        is ``γ′(θ*) dθ*/dx`` off the medial axis (zero where an endpoint is nearest).
        """
        x1, x2 = x1.to(torch.float64), x2.to(torch.float64)
        b, t0, t1 = self.scale, self.theta_min, self.theta_max
        with torch.no_grad():
            theta = nearest_theta(x1.detach(), x2.detach(), b, t0, t1)
        if torch.is_grad_enabled() and x1.requires_grad:
            theta = theta_with_gradient(theta, x1, x2, b, t0, t1)
        return self._curve(theta)

    @property
    def reach(self) -> float:
        return self.scale * _unit_reach(self.theta_min, self.theta_max)[0]

    @property
    def _reach_witness(self) -> tuple[str, float, float]:
        """``(kind, θ_a, θ_c)`` attaining the reach: kind ``curvature``, ``pair`` or ``end``."""
        return _unit_reach(self.theta_min, self.theta_max)[1]

    @property
    def diameter_bound(self) -> float:
        return self.scale * self.theta_max

    # -- hooks ----------------------------------------------------------------------
    def _sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        return self._curve(self._sample_theta(num, generator))

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return self._nearest_point(x[:, 0], x[:, 1]).to(x.dtype)

    def _tangent_basis(self, p: torch.Tensor) -> torch.Tensor:
        return self._unit_tangent(p)[:, None, :]

    def __repr__(self) -> str:
        return f"Spiral(theta_min={self.theta_min!r}, theta_max={self.theta_max!r}, scale={self.scale!r})"


class SwissRoll(Manifold):
    """The Swiss roll ``{(bθ cos θ, y, bθ sin θ) : θ ∈ [θ₀, θ₁], y ∈ [0, H]}`` in ``R^3``.

    The product of the :class:`Spiral` in the ``(x₁, x₃)`` plane with the interval
    ``[0, H]`` on the ``x₂`` axis (scikit-learn's layout). For a product set the
    squared distance splits, so the nearest point factorises: the spiral's global
    nearest point of ``(x₁, x₃)`` and ``x₂`` clamped to ``[0, H]`` (THEORY §1). The
    surface has boundary (the two ends of the spiral and the edges ``y = 0, H``);
    points beyond the edges project onto them.

    The reach equals the spiral's: the interval factor's nearest point is always
    unique, so uniqueness fails exactly where it fails for the planar part, whose
    distance is at most the full distance.

    Data: uniform in area (arc length × uniform height).

    Parameters
    ----------
    theta_min, theta_max, scale : float
        The spiral, as in :class:`Spiral`.
    height : float
        ``H > 0``. Default 21 (scikit-learn's).
    """

    ambient_dim = 3
    intrinsic_dim = 2

    def __init__(
        self,
        theta_min: float = 1.5 * math.pi,
        theta_max: float = 4.5 * math.pi,
        scale: float = 1.0,
        height: float = 21.0,
    ):
        self.spiral = Spiral(theta_min, theta_max, scale)
        self.theta_min, self.theta_max, self.scale = self.spiral.theta_min, self.spiral.theta_max, self.spiral.scale
        self.height = check_positive(height, "height")

    @property
    def reach(self) -> float:
        return self.spiral.reach

    @property
    def diameter_bound(self) -> float:
        return math.hypot(self.spiral.diameter_bound, self.height)

    def _sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        q = self.spiral._sample(num, generator)
        y = self.height * torch.rand(num, dtype=torch.float64, generator=generator)
        return torch.stack([q[:, 0], y, q[:, 1]], dim=-1)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        q = self.spiral._nearest_point(x[:, 0], x[:, 2]).to(x.dtype)
        return torch.stack([q[:, 0], torch.clamp(x[:, 1], min=0.0, max=self.height), q[:, 1]], dim=-1)

    def _tangent_basis(self, p: torch.Tensor) -> torch.Tensor:
        d = self.spiral._unit_tangent(p[:, [0, 2]])
        zero = torch.zeros_like(d[:, 0])
        one = torch.ones_like(zero)
        e_theta = torch.stack([d[:, 0], zero, d[:, 1]], dim=-1)
        e_y = torch.stack([zero, one, zero], dim=-1)
        return torch.stack([e_theta, e_y], dim=-2)

    def __repr__(self) -> str:
        return (
            f"SwissRoll(theta_min={self.theta_min!r}, theta_max={self.theta_max!r}, scale={self.scale!r}, "
            f"height={self.height!r})"
        )
