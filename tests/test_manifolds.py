"""Shared property suite of every manifold family (THEORY §1, §6).

Tolerances come from float64 arithmetic: coordinates of size ``R`` carry rounding
errors of a few ``R·1e-16``; the projections are exact to rounding, so ``1e-10·(1 + R)``
leaves a margin of several orders of magnitude and still catches any real error (a
wrong winding or a non-converged Newton solve is off by far more).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from toymanifold.manifolds import (
    AffineSubspace,
    Circle,
    Embedded,
    FiniteSet,
    Manifold,
    Sphere,
    Spiral,
    SwissRoll,
    Torus,
)
from toymanifold.manifolds.spiral import _arc_length
from toymanifold.testing import (
    characteristic_length,
    manifolds,
    points_far,
    points_near,
    points_on,
    schedules,
    seeds,
)

F64 = torch.float64


def _size(K: Manifold, x: torch.Tensor) -> float:
    """Magnitude of the coordinates involved (for rounding-derived tolerances)."""
    r = K.diameter_bound if math.isfinite(K.diameter_bound) else 0.0
    return 1.0 + max(r, float(x.abs().max()) if x.numel() else 0.0)


def _any_points(K: Manifold) -> st.SearchStrategy[torch.Tensor]:
    return st.one_of(points_near(K), points_far(K), points_on(K))


def _interior(K: Manifold, p: torch.Tensor) -> torch.Tensor:
    """Rows of ``p`` (on ``K``) away from the boundary, where the normal space is ``T⊥``."""
    if isinstance(K, Embedded):
        return _interior(K.base, K.to_base(p))
    if isinstance(K, (Spiral, SwissRoll)):
        q = p[:, [0, 2]] if isinstance(K, SwissRoll) else p
        theta = torch.linalg.vector_norm(q, dim=-1) / K.scale
        ok = ((theta - K.theta_min).abs() > 1e-9 * K.theta_max) & ((theta - K.theta_max).abs() > 1e-9 * K.theta_max)
        if isinstance(K, SwissRoll):
            ok &= (p[:, 1] > 1e-12 * K.height) & (p[:, 1] < K.height * (1 - 1e-12))
        return ok
    return torch.ones(p.shape[0], dtype=torch.bool)


# --------------------------------------------------------------------------------------
# Properties of every family (Hypothesis)
# --------------------------------------------------------------------------------------


@given(data=st.data(), K=manifolds())
def test_project_is_idempotent_and_finite(data, K):
    x = data.draw(_any_points(K))
    p = K.project(x)
    assert p.shape == x.shape and p.dtype == x.dtype
    assert bool(torch.isfinite(p).all())
    tol = 1e-10 * _size(K, x)
    assert float((K.project(p) - p).abs().max()) <= tol


@given(data=st.data(), K=manifolds())
def test_distance_is_a_minimum_over_samples(data, K):
    x = data.draw(_any_points(K))
    q = K.sample(512, generator=data.draw(seeds()))
    p, d = K.project_with_distance(x)
    tol = 1e-10 * _size(K, x)
    # dist_K(x) ≤ ‖x − q‖ for every q ∈ K (differences formed directly: cdist's default
    # expansion ‖x‖² − 2⟨x, q⟩ + ‖q‖² has an error of ε‖x‖²/‖x − q‖, 1e-9 at 1e-7) ...
    exact = torch.cdist(x, q, compute_mode="donot_use_mm_for_euclid_dist")
    assert bool((d <= exact.min(dim=1).values + tol).all())
    # ... and it is attained at the returned point, which lies on K.
    torch.testing.assert_close(d, torch.linalg.vector_norm(x - p, dim=-1), rtol=0, atol=tol)
    torch.testing.assert_close(K.distance(x), d, rtol=0, atol=tol)
    assert float(K.distance(p).max()) <= tol


@given(data=st.data(), K=manifolds())
def test_residual_is_normal_to_tangent_space(data, K):
    if K.intrinsic_dim == 0:
        return
    x = data.draw(st.one_of(points_near(K), points_far(K)))
    p = K.project(x)
    T = K.tangent_basis(p)
    assert T.shape == (x.shape[0], K.intrinsic_dim, K.ambient_dim)
    eye = torch.eye(K.intrinsic_dim, dtype=F64).expand(x.shape[0], -1, -1)
    torch.testing.assert_close(T @ T.transpose(1, 2), eye, rtol=0, atol=1e-12)
    inner = torch.einsum("bdn,bn->bd", T, x - p)[_interior(K, p)]
    assert bool((inner.abs() <= 1e-10 * _size(K, x)).all())


@given(data=st.data(), K=manifolds())
def test_distance_is_1_lipschitz(data, K):
    x = data.draw(_any_points(K))
    y = data.draw(points_far(K, min_size=x.shape[0], max_size=x.shape[0]))
    step = data.draw(st.floats(1e-6, 1.0))
    y = x + step * (y - x)  # pairs at every scale, close ones included
    gap = (K.distance(x) - K.distance(y)).abs()
    bound = torch.linalg.vector_norm(x - y, dim=-1)
    assert bool((gap <= bound + 1e-10 * _size(K, torch.cat([x, y]))).all())


@given(K=manifolds(), seed=seeds())
def test_samples_lie_on_K(K, seed):
    x = K.sample(64, generator=seed)
    assert x.shape == (64, K.ambient_dim) and x.dtype == F64
    assert float(K.distance(x).max()) <= 1e-12 * _size(K, x)
    torch.testing.assert_close(K.sample(64, generator=seed), x, rtol=0, atol=0)  # same seed, same points


@given(data=st.data(), K=manifolds())
def test_normal_offsets_below_the_reach_project_back(data, K):
    """Federer: for ``p ∈ K``, a unit normal ``ν`` and ``t < reach``, ``proj(p + tν) = p``."""
    p = data.draw(points_on(K))
    u = torch.randn(p.shape, dtype=F64, generator=torch.Generator().manual_seed(data.draw(seeds())))
    if K.intrinsic_dim:
        T = K.tangent_basis(p)
        u = u - torch.einsum("bdn,bd->bn", T, torch.einsum("bdn,bn->bd", T, u))
    norm = torch.linalg.vector_norm(u, dim=-1, keepdim=True)
    if float(norm.min()) < 1e-6:  # the normal space is {0} (an open subset of R^n)
        return
    nu = u / norm
    reach = K.reach if math.isfinite(K.reach) else 10.0 * characteristic_length(K)
    t = torch.tensor(data.draw(st.lists(st.floats(0.0, 0.99), min_size=p.shape[0], max_size=p.shape[0])))
    x = p + (t.to(F64) * reach)[:, None] * nu
    q, d = K.project_with_distance(x)
    tol = 1e-9 * _size(K, x)
    torch.testing.assert_close(q, p, rtol=0, atol=tol)
    torch.testing.assert_close(d, t.to(F64) * reach, rtol=0, atol=tol)


@given(data=st.data(), K=manifolds(families=["circle", "sphere", "torus", "affine", "spiral", "swiss_roll", "finite"]))
def test_embedded_copy_preserves_distances_and_nearest_points(data, K):
    extra = data.draw(st.integers(0, 5))
    E = Embedded(K, K.ambient_dim + extra, seed=data.draw(st.integers(0, 1000)))
    assert (E.intrinsic_dim, E.reach) == (K.intrinsic_dim, K.reach)
    y = data.draw(_any_points(K))
    z = torch.randn(y.shape[0], E.ambient_dim, dtype=F64, generator=torch.Generator().manual_seed(1))
    w = z - E.embed(E.to_base(z))  # orthogonal to the copy's subspace
    x = E.embed(y) + w
    tol = 1e-10 * _size(K, y)
    py, dy = K.project_with_distance(y)
    px, dx = E.project_with_distance(x)
    torch.testing.assert_close(px, E.embed(py), rtol=0, atol=tol)
    torch.testing.assert_close(dx, torch.sqrt(dy**2 + (w * w).sum(-1)), rtol=0, atol=tol)
    torch.testing.assert_close(E.tangent_basis(px), K.tangent_basis(py) @ E.frame.T, rtol=0, atol=1e-12)
    assert float(E.distance(E.sample(32, generator=0)).max()) <= 1e-12 * _size(K, y)


@given(K=manifolds(max_ambient_dim=4), data=st.data())
def test_float32_input_keeps_its_dtype(K, data):
    x = data.draw(points_near(K))
    p32 = K.project(x.to(torch.float32))
    assert p32.dtype == torch.float32
    # float32 rounding of the input moves the nearest point by at most ~1e-7 relative.
    p64 = K.project(x.to(torch.float32).to(F64))
    assert float((p32.to(F64) - p64).abs().max()) <= 1e-5 * _size(K, x)


@given(s=schedules(final_zero=None))
def test_schedules_strategy_is_strictly_decreasing(s):
    assert s.dtype == F64 and s.ndim == 1 and s.shape[0] >= 2
    assert bool((s[1:] < s[:-1]).all()) and float(s[-1]) >= 0


# --------------------------------------------------------------------------------------
# Medial axis: valid nearest points, never NaN
# --------------------------------------------------------------------------------------


def _assert_valid_nearest(K: Manifold, x: torch.Tensor, expected_distance):
    expected_distance = torch.as_tensor(expected_distance, dtype=F64)
    p, d = K.project_with_distance(x)
    assert bool(torch.isfinite(p).all())
    tol = 1e-12 * _size(K, x)
    torch.testing.assert_close(d, expected_distance, rtol=0, atol=tol)
    torch.testing.assert_close(torch.linalg.vector_norm(x - p, dim=-1), d, rtol=0, atol=tol)
    assert float(K.distance(p).max()) <= tol


def test_medial_axis_of_round_shapes():
    _assert_valid_nearest(Circle(2.0), torch.zeros(1, 2, dtype=F64), [2.0])
    _assert_valid_nearest(Circle(2.0, center=[1.0, -1.0]), torch.tensor([[1.0, -1.0]], dtype=F64), [2.0])
    _assert_valid_nearest(Sphere(3, 0.5), torch.zeros(2, 4, dtype=F64), [0.5, 0.5])
    T = Torus(2.0, 0.5)
    z = torch.tensor([0.0, 1.0, -3.0], dtype=F64)
    axis = torch.stack([torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64), z], dim=1)
    _assert_valid_nearest(T, axis, torch.sqrt(4.0 + z * z) - 0.5)
    u = torch.tensor([0.0, 1.0, 2.5], dtype=F64)
    core = torch.stack([2.0 * torch.cos(u), 2.0 * torch.sin(u), torch.zeros(3, dtype=F64)], dim=1)
    _assert_valid_nearest(T, core, [0.5, 0.5, 0.5])


@pytest.mark.parametrize(
    "K",
    [
        Circle(),
        Circle(2.0, center=[1.0, -3.0]),
        Sphere(3, 0.5),
        Torus(2.0, 0.5),
        AffineSubspace([[1.0, 2.0, 0.5], [0.0, 1.0, -1.0]], offset=[1.0, 0.0, 2.0]),
        AffineSubspace([[1.0, -1.0, 0.0, 2.0]]),
        Spiral(),
        SwissRoll(),
        FiniteSet(np.random.default_rng(0).normal(size=(30, 3))),
        Embedded(Torus(2.0, 0.5), 5),
        Embedded(Sphere(2), 6),
    ],
    ids=repr,
)
@pytest.mark.parametrize("scale", [1e-200, 1e-160, 1e160, 1e200])
def test_every_family_at_extreme_magnitudes(K, scale):
    """No overflow or underflow in the squared norms: points of size 1e±200 still project onto K.

    (Squares of 1e±160 leave the float64 range; the oracles then use norms rescaled by
    the largest entry, or ``hypot``; the spiral compares far candidates without ``ρ²``.)
    """
    g = torch.Generator().manual_seed(1)
    u = torch.randn(6, K.ambient_dim, dtype=F64, generator=g) * scale
    x = u + K.center if isinstance(K, Sphere) else u
    p, d = K.project_with_distance(x)
    assert torch.isfinite(p).all() and torch.isfinite(d).all()
    tol = 1e-12 * (1.0 + float(x.abs().max()))
    assert float(K.distance(p).max()) <= 1e-12 * (1.0 + float(p.abs().max()))
    # The distance is attained by the point and no sample of K is closer.
    torch.testing.assert_close(_robust_norm(x - p), d, rtol=1e-14, atol=1e-12)
    q = K.sample(2000, generator=g)
    assert (d[:, None] <= _robust_norm(x[:, None, :] - q[None]) + tol).all()
    torch.testing.assert_close(K.project(x), p, rtol=0, atol=0)


def _robust_norm(v: torch.Tensor) -> torch.Tensor:
    """``‖v‖`` over the last dimension without overflow (rescaled by the largest entry)."""
    m = v.abs().amax(dim=-1, keepdim=True)
    return (m * torch.linalg.vector_norm(v / torch.where(m > 0, m, 1.0), dim=-1, keepdim=True)).squeeze(-1)


def test_medial_axis_of_finite_set_and_spiral():
    K = FiniteSet([[0.0, 0.0], [2.0, 0.0]])
    _assert_valid_nearest(K, torch.tensor([[1.0, 5.0]], dtype=F64), [math.sqrt(26.0)])
    s = Spiral()
    # The centre of the roll: the inner endpoint (radius bθ₀) is the nearest point.
    _assert_valid_nearest(s, torch.zeros(1, 2, dtype=F64), [s.theta_min])
    r = SwissRoll()
    _assert_valid_nearest(
        r,
        torch.tensor([[0.0, 5.0, 0.0], [0.0, -2.0, 0.0]], dtype=F64),
        [r.theta_min, math.hypot(r.theta_min, 2.0)],
    )


def _witness(s: Spiral):
    """The point ``a`` attaining the reach and the direction ``ν`` towards the medial axis."""
    kind, ta, tc = s._reach_witness
    b = s.scale

    def frame(t):
        c, si = math.cos(t), math.sin(t)
        p = torch.tensor([b * t * c, b * t * si], dtype=F64)
        d = torch.tensor([c - t * si, si + t * c], dtype=F64)
        d = d / torch.linalg.vector_norm(d)
        return p, d, torch.stack([-d[1], d[0]])

    a, da, na = frame(ta)
    if kind == "curvature":
        return a, na
    c, _, _ = frame(tc)
    v = c - a
    inward = da if ta == s.theta_min else -da
    if kind == "end" and float(v @ inward) < 0:
        return a, v / torch.linalg.vector_norm(v)
    return a, na * torch.sign(v @ na)


@settings(max_examples=25)
@given(K=manifolds(families=["spiral"]))
def test_spiral_reach_is_attained(K):
    """The computed reach is tight: beyond it along the witness normal, ``a`` stops being nearest."""
    a, nu = _witness(K)
    lam = K.reach
    inside = a + lam * (1 - 1e-3) * nu
    torch.testing.assert_close(K.project(inside[None])[0], a, rtol=0, atol=1e-9 * _size(K, a[None]))
    outside = a + lam * (1 + 1e-2) * nu
    assert float(K.distance(outside[None])[0]) < lam * (1 + 1e-2) - 1e-9 * _size(K, a[None])


def test_spiral_reach_of_default_roll():
    s = Spiral()
    # Bounded by the curvature radius at θ₀ and by half the radial gap 2πb between windings.
    assert s.reach <= min(_curvature := (s.theta_min**2 + 1) ** 1.5 / (s.theta_min**2 + 2), math.pi)
    assert s.reach > 3.0 and _curvature > s.reach
    assert SwissRoll().reach == s.reach
    assert Spiral(scale=0.5).reach == pytest.approx(0.5 * s.reach, rel=1e-12)


# --------------------------------------------------------------------------------------
# Data distributions
# --------------------------------------------------------------------------------------


def test_spiral_samples_are_uniform_in_arc_length_on_sklearn_curve():
    s = Spiral()
    x = s.sample(20000, generator=0)
    theta = torch.linalg.vector_norm(x, dim=-1)  # b = 1
    # The curve is scikit-learn's (t cos t, t sin t).
    curve = torch.stack([theta * torch.cos(theta), theta * torch.sin(theta)], dim=-1)
    assert float((curve - x).abs().max()) <= 1e-12 * s.theta_max
    s0, s1 = (float(_arc_length(torch.tensor(t, dtype=F64), 1.0)) for t in (s.theta_min, s.theta_max))
    u = ((_arc_length(theta, 1.0) - s0) / (s1 - s0)).numpy()
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # Power check: the same test rejects uniform-in-θ (scikit-learn's sampling).
    v = ((theta - s.theta_min) / (s.theta_max - s.theta_min)).numpy()
    assert stats.kstest(v, "uniform").pvalue < 1e-6


def test_swiss_roll_samples_are_uniform_in_area():
    r = SwissRoll(height=3.0)
    x = r.sample(20000, generator=1)
    assert stats.kstest(x[:, 1].numpy() / 3.0, "uniform").pvalue > 1e-3
    theta = torch.linalg.vector_norm(x[:, [0, 2]], dim=-1)
    s0, s1 = (float(_arc_length(torch.tensor(t, dtype=F64), 1.0)) for t in (r.theta_min, r.theta_max))
    assert stats.kstest(((_arc_length(theta, 1.0) - s0) / (s1 - s0)).numpy(), "uniform").pvalue > 1e-3


def test_torus_samples_are_uniform_in_area():
    R, r = 2.0, 1.5
    x = Torus(R, r).sample(20000, generator=2).numpy()
    rho = np.hypot(x[:, 0], x[:, 1])
    v = np.arctan2(x[:, 2], rho - R)  # tube angle, density ∝ R + r cos v
    u = np.arctan2(x[:, 1], x[:, 0])
    cdf_v = lambda t: (R * (t + np.pi) + r * np.sin(t)) / (2 * np.pi * R)  # noqa: E731
    assert stats.kstest(v, cdf_v).pvalue > 1e-3
    assert stats.kstest((u + np.pi) / (2 * np.pi), "uniform").pvalue > 1e-3
    assert stats.kstest((v + np.pi) / (2 * np.pi), "uniform").pvalue < 1e-6  # power check


# --------------------------------------------------------------------------------------
# Bad input: ValueError naming the argument
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: Torus(1.0, 1.0), "minor_radius"),
        (lambda: Torus(1.0, 2.0), "minor_radius"),
        (lambda: Torus(0.0, 0.5), "major_radius"),
        (lambda: Torus(-1.0, 0.5), "major_radius"),
        (lambda: Torus(2.0, -0.5), "minor_radius"),
        (lambda: Torus(float("nan"), 0.5), "major_radius"),
        (lambda: Circle(0.0), "radius"),
        (lambda: Circle(-1.0), "radius"),
        (lambda: Sphere(2, 0.0), "radius"),
        (lambda: Sphere(0), "dim"),
        (lambda: Spiral(theta_min=0.0), "theta_min"),
        (lambda: Spiral(theta_min=3.0, theta_max=2.0), "theta_max"),
        (lambda: Spiral(theta_max=float("inf")), "theta_max"),
        (lambda: Spiral(scale=0.0), "scale"),
        (lambda: SwissRoll(height=-1.0), "height"),
        (lambda: SwissRoll(scale=-2.0), "scale"),
        (lambda: FiniteSet(np.zeros((0, 3))), "points"),
        (lambda: FiniteSet(np.zeros(3)), "points"),
        (lambda: FiniteSet([[0.0, float("nan")]]), "points"),
        (lambda: AffineSubspace(np.zeros((2, 3))), "basis"),
        (lambda: AffineSubspace(np.ones(3)), "basis"),
        (lambda: AffineSubspace(np.eye(3)[:2], offset=np.zeros(2)), "offset"),
        (lambda: Embedded(Torus(2.0, 1.0), 2), "ambient_dim"),
    ],
)
def test_bad_constructor_arguments_raise_naming_them(build, name):
    with pytest.raises(ValueError, match=name):
        build()


_FAMILY_EXAMPLES = [
    Circle(),
    Circle(2.0, center=[1.0, -3.0]),
    Sphere(2),
    Sphere(5),
    Torus(2.0, 0.5),
    AffineSubspace(np.eye(4)[:2]),
    Spiral(),
    SwissRoll(),
    FiniteSet(np.eye(3)),
    Embedded(Spiral(), 5),
]


@pytest.mark.parametrize("K", _FAMILY_EXAMPLES, ids=repr)
def test_bad_points_raise_naming_the_argument(K):
    n = K.ambient_dim
    for bad in (np.zeros((3, n + 1)), np.zeros(n), np.zeros((2, n, 1))):
        with pytest.raises(ValueError, match="x"):
            K.project(bad)
        with pytest.raises(ValueError, match="x"):
            K.distance(bad)
    for value in (float("nan"), float("inf"), -float("inf")):
        for col in range(n):
            x = np.ones((2, n))
            x[1, col] = value
            for method in (K.project, K.distance, K.project_with_distance):
                with pytest.raises(ValueError, match="x must be finite"):
                    method(x)
    with pytest.raises(ValueError, match="p"):
        K.tangent_basis(np.zeros((2, n + 1)))
    with pytest.raises(ValueError, match="num"):
        K.sample(-1)
    assert K.project(np.zeros((0, n))).shape == (0, n)
