"""Independent brute-force nearest points for every family.

Each reference search knows only the parametrisation of ``K`` (never the projection
code): a dense parameter grid (or all points), then every grid-local minimum is
refined by a bounded scalar/box optimiser from SciPy. It must agree with ``project``
to 1e-9 on random points — far, near, between the windings of the spiral, beyond its
ends. Points whose two best local minima are within 1e-7 of each other sit on the
medial axis within the optimiser's accuracy; there only the distance is compared.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from toymanifold.manifolds import AffineSubspace, Circle, Embedded, FiniteSet, Sphere, Spiral, SwissRoll, Torus

F64 = torch.float64
TOL = 1e-9


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _check(K, x: np.ndarray, ref_points: np.ndarray, ref_dist: np.ndarray, gap: np.ndarray | None = None):
    """``project``/``distance`` of ``K`` against the reference (points compared off near-ties)."""
    p, d = K.project_with_distance(torch.as_tensor(x, dtype=F64))
    p, d = p.numpy(), d.numpy()
    scale = 1.0 + np.abs(x).max()
    np.testing.assert_allclose(d, ref_dist, rtol=0, atol=TOL * scale)
    unique = np.ones(len(x), dtype=bool) if gap is None else gap > 1e-7 * scale
    assert unique.mean() > 0.9  # the comparison of points is not vacuous
    np.testing.assert_allclose(p[unique], ref_points[unique], rtol=0, atol=TOL * scale)


def _refine_1d(fun, dfun, grid: np.ndarray, values: np.ndarray, keep: int = 4):
    """Refine the ``keep`` best grid-local minima; return the best ``(t, value)`` and the runner-up value.

    An interior minimiser is the root of the derivative ``dfun`` in the bracketing grid
    cells, found by ``brentq`` to 1e-15 (minimising values instead would locate it only
    to ~√ε, since the function is flat there); a minimum at a grid end is that end.
    """
    m = len(grid)
    local = np.flatnonzero((values <= np.r_[np.inf, values[:-1]]) & (values <= np.r_[values[1:], np.inf]))
    local = local[np.argsort(values[local])[:keep]]
    minima = []  # one refined (value, t) per grid-local minimum
    for i in local:
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, m - 1)]
        cands = [float(grid[i]), float(lo), float(hi)]
        if dfun(lo) < 0 < dfun(hi):
            cands.append(optimize.brentq(dfun, lo, hi, xtol=1e-15, rtol=1e-15))
        minima.append(min((fun(t), t) for t in cands))
    minima.sort()
    (best_v, best_t), rest = minima[0], minima[1:]
    second = min((v for v, t in rest if abs(t - best_t) > 1e-6), default=np.inf)
    return best_t, best_v, second


def _newton_polish(grad, z: np.ndarray, free: np.ndarray, steps: int = 4) -> np.ndarray:
    """Newton steps on the analytic gradient in the free coordinates (FD Hessian of ``grad``).

    The fixed point is ``grad = 0`` exactly, so the Hessian's FD error only slows the
    (already local) convergence; this gets the minimiser to rounding where a value-based
    optimiser stops at ~√ε.
    """
    z = z.copy()
    idx = np.flatnonzero(free)
    if idx.size == 0:
        return z
    for _ in range(steps):
        g = grad(z)[idx]
        H = np.empty((idx.size, idx.size))
        for col, j in enumerate(idx):
            e = np.zeros_like(z)
            e[j] = 1e-6
            H[:, col] = (grad(z + e)[idx] - grad(z - e)[idx]) / 2e-6
        z[idx] -= np.linalg.solve(H, g)
    return z


# --------------------------------------------------------------------------------------
# Spiral and Swiss roll
# --------------------------------------------------------------------------------------


def _spiral_reference(s: Spiral, x: np.ndarray):
    """Nearest points of the planar points ``x`` by a grid of spacing 2e-3 rad + Brent."""
    b, t0, t1 = s.scale, s.theta_min, s.theta_max
    grid = np.linspace(t0, t1, math.ceil((t1 - t0) / 2e-3) + 1)
    curve = b * grid[:, None] * np.stack([np.cos(grid), np.sin(grid)], axis=1)
    pts, dist, gap = [], [], []
    for xi in x:
        values = ((curve - xi) ** 2).sum(-1)

        def g(t, xi=xi):
            return float((b * t * math.cos(t) - xi[0]) ** 2 + (b * t * math.sin(t) - xi[1]) ** 2)

        def dg(t, xi=xi):  # −2⟨x − γ(t), γ'(t)⟩
            c, si = math.cos(t), math.sin(t)
            r1, r2 = xi[0] - b * t * c, xi[1] - b * t * si
            return float(-2.0 * b * (r1 * (c - t * si) + r2 * (si + t * c)))

        t, v, second = _refine_1d(g, dg, grid, values)
        pts.append([b * t * math.cos(t), b * t * math.sin(t)])
        dist.append(math.sqrt(v))
        gap.append(math.sqrt(second) - math.sqrt(v))
    return np.array(pts), np.array(dist), np.array(gap)


def _spiral_points(s: Spiral, seed: int, num: int = 60) -> np.ndarray:
    """Far points, points near the curve, between windings, beyond both ends, at the centre."""
    rng = _rng(seed)
    b, t0, t1 = s.scale, s.theta_min, s.theta_max
    R = b * t1
    far = rng.uniform(-1.5 * R, 1.5 * R, size=(num, 2))
    t = rng.uniform(t0, t1, num)
    on = b * t[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    near = on + rng.normal(scale=0.3 * b, size=on.shape)
    # Half-way between consecutive windings along a ray: radius b(θ + π) at angle θ.
    tb = rng.uniform(t0, max(t0, t1 - 2 * math.pi), num)
    between = b * (tb + math.pi)[:, None] * np.stack([np.cos(tb), np.sin(tb)], axis=1)
    between += rng.normal(scale=0.05 * b, size=between.shape)
    ends = []
    for te, sign in ((t0, -1.0), (t1, 1.0)):
        c, si = math.cos(te), math.sin(te)
        tangent = np.array([c - te * si, si + te * c]) / math.hypot(c - te * si, si + te * c)
        ends.append(b * te * np.array([c, si]) + sign * rng.uniform(0.0, 2.0 * b, (num // 4, 1)) * tangent)
    centre = rng.normal(scale=0.5 * b, size=(num // 4, 2))
    return np.concatenate([far, near, between, *ends, centre, np.zeros((1, 2))])


SPIRALS = [
    Spiral(),  # scikit-learn's roll
    Spiral(0.5, 0.5 + 8 * math.pi, 0.3),  # 4 windings from near the centre
    Spiral(2.0, 2.0 + 1.2 * math.pi, 1.0),  # shorter than one winding
    Spiral(9.0, 9.0 + 5 * math.pi, 0.05),  # starts far out, small scale
]


@pytest.mark.parametrize("s", SPIRALS, ids=repr)
def test_spiral_matches_brute_force(s):
    x = _spiral_points(s, seed=hash(repr(s)) % 2**32)
    _check(s, x, *_spiral_reference(s, x))


@pytest.mark.parametrize("s", SPIRALS[:2], ids=repr)
def test_spiral_in_many_chunks_matches_brute_force(s, monkeypatch):
    """The bulk pass over several chunks and the flagged points batched across them.

    Tiny chunks put every kind of point (endpoint nearest, another winding nearer,
    no candidate in the primary window) in several chunks.
    """
    import toymanifold.manifolds._spiral_solver as spiral_module

    x = _spiral_points(s, seed=11)
    whole = s.project(torch.as_tensor(x, dtype=F64))
    monkeypatch.setattr(spiral_module, "_CHUNK", 16)
    _check(s, x, *_spiral_reference(s, x))
    # Elementwise kernels may round a vectorised body and a scalar tail differently.
    torch.testing.assert_close(s.project(torch.as_tensor(x, dtype=F64)), whole, rtol=0, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    b=st.floats(0.05, 3.0),
    t0=st.floats(0.1, 20.0),
    rho=st.floats(0.0, 80.0),
    phi=st.floats(-math.pi, math.pi),
    k=st.integers(-2, 8),
)
def test_spiral_window_lower_bound(b, t0, rho, phi, k):
    """Fact 4's window bound: on the front half-window of centre c, g ≥ (bc − ρ)² κ₀/(b² + κ₀).

    Checked against g on a dense grid of the window (clipped to θ ≥ θ₀, which the
    bound assumes); the grid minimum can only exceed the true minimum, so the bound
    must hold with room to spare only for rounding.
    """
    c = phi + 2 * math.pi * k
    theta = np.linspace(max(c - math.pi / 2, t0), c + math.pi / 2, 20001)
    if theta[0] >= theta[-1]:
        return
    x = rho * np.array([math.cos(phi), math.sin(phi)])
    g = (x[0] - b * theta * np.cos(theta)) ** 2 + (x[1] - b * theta * np.sin(theta)) ** 2
    kappa = 4 * b * rho * t0 / math.pi**2
    bound = (b * c - rho) ** 2 * kappa / (b * b + kappa) if kappa > 0 else 0.0
    assert g.min() >= bound - 1e-12 * (1.0 + rho * rho + (b * theta[-1]) ** 2)


@settings(max_examples=300, deadline=None)
@given(
    b=st.floats(0.05, 3.0),
    t0=st.floats(0.1, 20.0),
    turns=st.floats(0.2, 4.0),
    rho=st.floats(0.0, 60.0),
    phi=st.floats(-math.pi, math.pi),
    k=st.integers(-1, 8),
)
def test_spiral_settled_windows_hold_no_interior_minimum(b, t0, turns, rho, phi, k):
    """``_settled`` may skip a window only if ``g`` has no interior local minimum on it (dense grid)."""
    from toymanifold.manifolds._spiral_solver import _settled

    t1 = t0 + 2 * math.pi * turns
    c = phi + 2 * math.pi * k
    x1, x2 = (torch.tensor([v], dtype=F64) for v in (rho * math.cos(phi), rho * math.sin(phi)))
    if not bool(_settled(x1, x2, torch.tensor([c], dtype=F64), b, t0, t1)[0]):
        return
    lo, hi = max(c - math.pi / 2, t0), min(c + math.pi / 2, t1)
    if lo >= hi:
        return  # the window misses the curve
    theta = np.linspace(lo, hi, 4001)
    g = (float(x1) - b * theta * np.cos(theta)) ** 2 + (float(x2) - b * theta * np.sin(theta)) ** 2
    interior = (g[1:-1] < g[:-2]) & (g[1:-1] < g[2:])
    assert not interior.any()


@settings(max_examples=300, deadline=None)
@given(
    b=st.floats(0.05, 3.0),
    rho=st.floats(0.0, 80.0),
    phi=st.floats(-math.pi, math.pi),
    k=st.integers(0, 8),
    t0=st.floats(0.05, 20.0),
)
def test_spiral_back_half_turns_hold_no_local_minimum(b, rho, phi, k, t0):
    """Facts 2 and 3 of the solver: for ``ψ = θ − φ ∈ [π/2, 3π/2]``, ``g = ‖x − γ(θ)‖²`` has no local minimum.

    ``g′ = 2b h``; a local minimum needs ``h`` to change sign from − to +. On a dense
    grid of the back half-turn (where ``θ > 0``) it never does: ``h > 0`` on
    ``[π/2, π]`` and every root in ``[π, 3π/2]`` has ``h′ ≤ −b``. The grid step ``Δ``
    moves ``h`` by at least ``bΔ ≥ 2e-5`` near a root, far above its rounding (~1e-13);
    ``h′`` at the grid point next to a root differs from its value at the root by at
    most ``|h″| Δ ≤ (3 + θ) ρ Δ``.
    """
    step = math.pi / 8000
    theta = phi + 2 * math.pi * k + np.linspace(math.pi / 2, 3 * math.pi / 2, 8001)
    theta = theta[theta >= t0]
    if theta.size < 2:
        return
    x = rho * np.array([math.cos(phi), math.sin(phi)])
    u = x[0] * np.cos(theta) + x[1] * np.sin(theta)
    v = x[1] * np.cos(theta) - x[0] * np.sin(theta)
    h = b * theta - u - theta * v
    assert not ((h[:-1] < 0) & (h[1:] > 0)).any()
    hp = b - 2 * v + theta * u
    roots = np.flatnonzero(np.sign(h[:-1]) != np.sign(h[1:]))
    assert (hp[roots] <= -b + (3 + theta[roots] + step) * rho * step + 1e-12 * (1 + rho * theta[roots])).all()


@pytest.mark.parametrize("s", SPIRALS, ids=repr)
def test_spiral_far_points_match_brute_force(s):
    """Points 8 to 40 times the outer radius away: the far-point path (every window, no ``ρ²``)."""
    rng = _rng(5)
    rho = s.scale * s.theta_max * rng.uniform(8.0, 40.0, 40)
    phi = rng.uniform(-math.pi, math.pi, 40)
    x = rho[:, None] * np.stack([np.cos(phi), np.sin(phi)], axis=1)
    _check(s, x, *_spiral_reference(s, x))


@pytest.mark.parametrize("r", [SwissRoll(), SwissRoll(1.0, 1.0 + 5 * math.pi, 0.5, height=2.0)], ids=repr)
def test_swiss_roll_matches_brute_force(r):
    """Reference: grid over (θ, y) of the surface, refined in the box (no use of the product structure)."""
    rng = _rng(7)
    b, t0, t1, H = r.scale, r.theta_min, r.theta_max, r.height
    planar = _spiral_points(r.spiral, seed=3, num=16)
    y = rng.uniform(-0.5 * H, 1.5 * H, len(planar))  # a third beyond the edges y = 0, H
    x = np.stack([planar[:, 0], y, planar[:, 1]], axis=1)
    tg = np.linspace(t0, t1, math.ceil((t1 - t0) / 4e-3) + 1)
    T, Y = np.meshgrid(tg, np.linspace(0.0, H, 41), indexing="ij")
    grid = np.stack([T.ravel(), Y.ravel()], axis=1)

    def embed(z):
        t, yy = z[:, 0], z[:, 1]
        return np.stack([b * t * np.cos(t), yy, b * t * np.sin(t)], axis=1)

    def jac(z):
        t = z[0]
        c, si = math.cos(t), math.sin(t)
        return np.array([[b * (c - t * si), 0.0, b * (si + t * c)], [0.0, 1.0, 0.0]])

    _check(r, x, *_box_search(grid, embed, jac, [(t0, t1), (0.0, H)], x))


def test_embedded_spiral_matches_brute_force_in_the_big_space():
    """The lifted oracle against a search over the spiral's parameter in R^6 directly."""
    s = Spiral(1.0, 1.0 + 4 * math.pi, 0.5)
    E = Embedded(s, 6, seed=3)
    rng = _rng(11)
    x = rng.normal(scale=4.0, size=(60, 6))
    Q = E.frame.numpy()
    grid = np.linspace(s.theta_min, s.theta_max, 6001)
    curve = (s.scale * grid[:, None] * np.stack([np.cos(grid), np.sin(grid)], axis=1)) @ Q.T
    pts, dist, gap = [], [], []
    for xi in x:
        values = ((curve - xi) ** 2).sum(-1)

        def g(t, xi=xi):
            return float(((s.scale * t * np.array([math.cos(t), math.sin(t)]) @ Q.T - xi) ** 2).sum())

        def dg(t, xi=xi):
            c, si = math.cos(t), math.sin(t)
            res = s.scale * t * np.array([c, si]) @ Q.T - xi
            return float(2.0 * s.scale * res @ (np.array([c - t * si, si + t * c]) @ Q.T))

        t, v, second = _refine_1d(g, dg, grid, values)
        pts.append(s.scale * t * np.array([math.cos(t), math.sin(t)]) @ Q.T)
        dist.append(math.sqrt(v))
        gap.append(math.sqrt(second) - math.sqrt(v))
    _check(E, x, np.array(pts), np.array(dist), np.array(gap))


# --------------------------------------------------------------------------------------
# Closed-form families and the finite set
# --------------------------------------------------------------------------------------


def test_circle_matches_brute_force():
    K = Circle(1.5, center=[0.5, -1.0])
    x = _rng(0).normal(scale=3.0, size=(200, 2))
    grid = np.linspace(-math.pi, math.pi, 20001)
    c = np.array([0.5, -1.0])
    pts, dist = [], []
    for xi in x:
        values = ((c + 1.5 * np.stack([np.cos(grid), np.sin(grid)], 1) - xi) ** 2).sum(-1)
        t, v, _ = _refine_1d(
            lambda t, xi=xi: float(((c + 1.5 * np.array([math.cos(t), math.sin(t)]) - xi) ** 2).sum()),
            lambda t, xi=xi: float(
                -3.0 * (c + 1.5 * np.array([math.cos(t), math.sin(t)]) - xi) @ [math.sin(t), -math.cos(t)]
            ),
            grid,
            values,
            keep=1,
        )
        pts.append(c + 1.5 * np.array([math.cos(t), math.sin(t)]))
        dist.append(math.sqrt(v))
    _check(K, x, np.array(pts), np.array(dist))


def _active_set_newton(f, z: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Newton on the gradient of ``f``; coordinates that leave the box are fixed at the bound."""
    free = np.ones_like(z, dtype=bool)
    for _ in range(3):
        try:
            z = _newton_polish(lambda z: f(z)[1], z, free, steps=8)
        except np.linalg.LinAlgError:
            return np.full_like(z, np.nan)
        out = (z < lo) | (z > hi)
        if not out.any():
            break
        z, free = np.clip(z, lo, hi), free & ~out
    return z


def _box_search(param_grid: np.ndarray, embed, jac, bounds, x: np.ndarray, starts: int = 3):
    """Best of ``starts`` box-constrained searches from the best grid parameters.

    Each start runs Newton on the analytic gradient ``2 Jᵀ(embed(z) − x)`` (with an
    active set for the box): from a grid point of a fine grid it converges to the
    basin's minimiser to rounding, where value-based optimisers stop at ~√ε.
    """
    surf = embed(param_grid)
    lo, hi = np.array(bounds).T
    pts, dist, gap = [], [], []
    for xi in x:
        order = np.argsort(((surf - xi) ** 2).sum(-1))

        def f(z, xi=xi):
            res = embed(z[None])[0] - xi
            return float(res @ res), 2.0 * jac(z) @ res

        found, used = [], []
        for k in order[:2000]:
            z0 = param_grid[k]
            if any(np.abs(z0 - u).max() < 0.2 for u in used):
                continue  # one start per basin
            used.append(z0)
            z = _active_set_newton(f, z0.astype(float), lo, hi)
            if not (np.isfinite(z).all() and f(z)[0] <= f(z0)[0]):
                # Newton left the basin from this start: descend first, then polish.
                opt = optimize.minimize(f, z0, jac=True, method="L-BFGS-B", bounds=bounds)
                z = _active_set_newton(f, opt.x, lo, hi)
                if not (np.isfinite(z).all() and f(z)[0] <= opt.fun * (1 + 1e-12)):
                    z = opt.x
            found.append((f(z)[0], embed(z[None])[0]))
            if len(used) == starts:
                break
        found.sort(key=lambda item: item[0])
        best_v, best_p = found[0]
        # Runner-up: the best minimum at a different point (starts may share a basin).
        second = min((v for v, q in found if np.abs(q - best_p).max() > 1e-6), default=np.inf)
        pts.append(best_p)
        dist.append(math.sqrt(best_v))
        gap.append(math.sqrt(second) - math.sqrt(best_v))
    return np.array(pts), np.array(dist), np.array(gap)


def test_sphere_matches_brute_force():
    K = Sphere(2, 2.0, center=[1.0, 0.0, -1.0])
    c = np.array([1.0, 0.0, -1.0])
    x = c + _rng(1).normal(scale=3.0, size=(80, 3))

    def embed(z):  # (polar, azimuth)
        a, b = z[:, 0], z[:, 1]
        return c + 2.0 * np.stack([np.sin(a) * np.cos(b), np.sin(a) * np.sin(b), np.cos(a)], axis=1)

    def jac(z):
        a, b = z
        return 2.0 * np.array(
            [
                [math.cos(a) * math.cos(b), math.cos(a) * math.sin(b), -math.sin(a)],
                [-math.sin(a) * math.sin(b), math.sin(a) * math.cos(b), 0.0],
            ]
        )

    A, B = np.meshgrid(np.linspace(0, math.pi, 181), np.linspace(-math.pi, math.pi, 361), indexing="ij")
    grid = np.stack([A.ravel(), B.ravel()], axis=1)
    # Wrap the azimuth's box a little so that minima at ±π are interior.
    _check(K, x, *_box_search(grid, embed, jac, [(0, math.pi), (-1.5 * math.pi, 1.5 * math.pi)], x))


def test_torus_matches_brute_force():
    R, r = 2.0, 0.7
    K = Torus(R, r)
    x = _rng(2).normal(scale=2.0, size=(80, 3))

    def embed(z):  # (around the axis, around the tube)
        u, v = z[:, 0], z[:, 1]
        ring = R + r * np.cos(v)
        return np.stack([ring * np.cos(u), ring * np.sin(u), r * np.sin(v)], axis=1)

    def jac(z):
        u, v = z
        ring = R + r * math.cos(v)
        return np.array(
            [
                [-ring * math.sin(u), ring * math.cos(u), 0.0],
                [-r * math.sin(v) * math.cos(u), -r * math.sin(v) * math.sin(u), r * math.cos(v)],
            ]
        )

    U, V = np.meshgrid(np.linspace(-math.pi, math.pi, 241), np.linspace(-math.pi, math.pi, 121), indexing="ij")
    grid = np.stack([U.ravel(), V.ravel()], axis=1)
    box = [(-1.5 * math.pi, 1.5 * math.pi)] * 2
    _check(K, x, *_box_search(grid, embed, jac, box, x))


def test_affine_subspace_matches_least_squares():
    rng = _rng(3)
    basis = rng.normal(size=(2, 5))
    offset = rng.normal(size=5)
    K = AffineSubspace(basis, offset=offset)
    x = rng.normal(scale=5.0, size=(100, 5))
    coef, *_ = np.linalg.lstsq(basis.T, (x - offset).T, rcond=None)
    ref = offset + (basis.T @ coef).T
    _check(K, x, ref, np.linalg.norm(x - ref, axis=1))


def test_finite_set_matches_exhaustive_search():
    rng = _rng(4)
    pts = rng.normal(size=(500, 7))
    K = FiniteSet(pts)
    x = np.concatenate([rng.normal(scale=2.0, size=(200, 7)), pts[:50] + 1e-6 * rng.normal(size=(50, 7))])
    d = np.linalg.norm(x[:, None, :] - pts[None, :, :], axis=-1)
    order = np.sort(d, axis=1)
    _check(K, x, pts[d.argmin(1)], order[:, 0], order[:, 1] - order[:, 0])
    assert K.reach == pytest.approx(
        0.5 * np.sort(np.linalg.norm(pts[:, None] - pts[None], axis=-1), axis=None)[len(pts)], rel=1e-12
    )
