"""Every manifold family: the shared contract, and what each family must do beyond it (THEORY §1, §6).

The shared property suite is ``toymanifold.testing.check_manifold`` — the same call a
user runs on their own class — applied to every family here, so the contract has one
definition (its docstring derives the tolerances). The tests below it check more:
medial axes, extreme magnitudes, the spiral's reach, the data distributions, embedded
copies, constructor arguments. Their tolerances come from float64 arithmetic:
coordinates of size ``R`` carry rounding errors of a few ``R·1e-16``; the projections
are exact to rounding, so ``1e-10·(1 + R)`` leaves a margin of several orders of
magnitude and still catches any real error.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
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
    check_manifold,
    manifolds,
    points_far,
    points_near,
    points_on,
    schedules,
)

F64 = torch.float64


def _size(K: Manifold, x: torch.Tensor) -> float:
    """Magnitude of the coordinates involved (for rounding-derived tolerances)."""
    r = K.diameter_bound if math.isfinite(K.diameter_bound) else 0.0
    return 1.0 + max(r, float(x.abs().max()) if x.numel() else 0.0)


def _any_points(K: Manifold) -> st.SearchStrategy[torch.Tensor]:
    return st.one_of(points_near(K), points_far(K), points_on(K))


# --------------------------------------------------------------------------------------
# The contract of every family: one definition, toymanifold.testing.check_manifold
# --------------------------------------------------------------------------------------

_RNG = np.random.default_rng(7)

#: Every family, at ordinary and at awkward parameters, and an Embedded copy of each.
CONTRACT_INSTANCES = [
    Circle(),
    Circle(0.1, center=[3.0, -3.0]),
    Sphere(2),
    Sphere(4, 2.5, center=[1.0, -1.0, 0.5, 0.0, 2.0]),
    Torus(2.0, 0.5),
    Torus(1.0, 0.9),  # fat: the reach is R − r = 0.1, set by the hole
    AffineSubspace(np.eye(4)[:2]),
    AffineSubspace(_RNG.normal(size=(1, 3)), offset=_RNG.normal(size=3), scale=0.1),
    Spiral(),
    Spiral(theta_min=0.5, theta_max=0.5 + 2 * math.pi * 4, scale=0.05),
    SwissRoll(),
    SwissRoll(theta_min=2.0, theta_max=4.0, scale=2.0, height=0.5),
    FiniteSet(np.eye(3)),
    FiniteSet(_RNG.normal(size=(40, 6))),
    FiniteSet([[1.0, 2.0]]),  # one point: reach inf
    Embedded(Circle(0.5), 5, seed=1),
    Embedded(Sphere(2), 4, seed=2),
    Embedded(Torus(2.0, 0.5), 6, seed=3),
    Embedded(AffineSubspace(np.eye(3)[:1], offset=[0.0, 1.0, 0.0]), 5, seed=4),
    Embedded(Spiral(), 4, seed=5),
    Embedded(SwissRoll(), 5, seed=6),
    Embedded(FiniteSet(_RNG.normal(size=(10, 2))), 7, seed=7),
]

#: Examples per property and instance (each property runs on every instance above).
CONTRACT_EXAMPLES = 10


def _contract_id(K: Manifold) -> str:
    return re.sub(r"[^\w.,=()-]+", "", repr(K))[:80]


@pytest.mark.parametrize("K", CONTRACT_INSTANCES, ids=_contract_id)
def test_every_family_meets_the_contract(K):
    """THEORY §1, §6: every property of ``check_manifold`` (see its docstring)."""
    check_manifold(K, max_examples=CONTRACT_EXAMPLES)


@settings(max_examples=6, suppress_health_check=[HealthCheck.nested_given])
@given(K=manifolds())
def test_drawn_family_parameters_meet_the_contract(K):
    """The same contract at parameters Hypothesis draws."""
    check_manifold(K, max_examples=3)


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
