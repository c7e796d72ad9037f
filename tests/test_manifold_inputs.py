"""Every oracle of every family on the inputs users actually pass (THEORY §1, §3).

Gradients (``requires_grad`` points), empty batches, float16/bfloat16, magnitudes whose
squares leave the float64 range, non-floating sample dtypes, and the finite set's
memory and reach. Tolerances come from the arithmetic, stated at each test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import toymanifold.manifolds.finite as finite_module
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
from toymanifold.testing import characteristic_length, manifolds, points_far, points_near

F64 = torch.float64
EPS = torch.finfo(F64).eps

FAMILIES = [
    Circle(1.5, center=[0.5, -1.0]),
    Sphere(2),
    Sphere(4, 2.0, center=[1.0, 0.0, -1.0, 0.5, 2.0]),
    Torus(2.0, 0.5),
    AffineSubspace([[1.0, 2.0, 0.5], [0.0, 1.0, -1.0]], offset=[1.0, 0.0, 2.0]),  # a plane in R^3
    AffineSubspace([[1.0, -1.0, 0.0, 2.0, 0.5]], offset=[0.0, 1.0, 0.0, 0.0, -1.0]),  # a line in R^5
    Spiral(),
    SwissRoll(1.0, 1.0 + 5 * math.pi, 0.5, height=2.0),
    FiniteSet(np.random.default_rng(0).normal(size=(50, 4))),
    Embedded(Torus(2.0, 0.5), 6, seed=1),
    Embedded(Spiral(), 5, seed=2),
    Embedded(FiniteSet(np.random.default_rng(1).normal(size=(20, 3))), 5, seed=3),
]


def _size(K: Manifold, x: torch.Tensor) -> float:
    r = K.diameter_bound if math.isfinite(K.diameter_bound) else 0.0
    return 1.0 + max(r, float(x.abs().max()) if x.numel() else 0.0)


def _off_k(K: Manifold, x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` at distance at least 1e-3 of the length scale from ``K`` (``dist_K`` is smooth there)."""
    return x[K.distance(x) >= 1e-3 * characteristic_length(K)]


# --------------------------------------------------------------------------------------
# Autograd
# --------------------------------------------------------------------------------------


@given(data=st.data(), K=manifolds())
def test_distance_gradient_is_the_unit_residual(data, K):
    """``∇dist_K(x) = (x − proj_K(x))/dist_K(x)`` off ``K`` and off the medial axis (THEORY §1).

    Both sides are unit vectors. The reference carries the rounding of ``x − p``
    (a few ulps of ``|x| + |p|`` per coordinate, with ``p`` exact to a few ulps)
    divided by ``d``; the autograd side only the rounding of the oracle's formula.
    Hence ``64 ε (1 + |x| + |p|)/d``.
    """
    x = _off_k(K, data.draw(st.one_of(points_near(K), points_far(K))))
    if x.shape[0] == 0:
        return
    x = x.clone().requires_grad_(True)
    p, d = K.project_with_distance(x)
    (grad,) = torch.autograd.grad(d.sum(), x)
    p, d = p.detach(), d.detach()
    expected = (x.detach() - p) / d[:, None]
    tol = 64 * EPS * (1.0 + x.detach().abs().amax(1) + p.abs().amax(1)) / d
    assert bool(((grad - expected).abs().amax(1) <= tol).all())
    # distance() alone is the same function.
    (grad_d,) = torch.autograd.grad(K.distance(x).sum(), x)
    torch.testing.assert_close(grad_d, grad, rtol=0, atol=float(tol.max()))


def _gradcheck_points(K: Manifold) -> torch.Tensor:
    """A few points near ``K``, off its medial axis, its boundary and the kinks of its oracles."""
    g = torch.Generator().manual_seed(7)
    if isinstance(K, Embedded):
        return K.embed(_gradcheck_points(K.base)) + 0.1 * torch.randn(3, K.ambient_dim, dtype=F64, generator=g)
    if isinstance(K, (Spiral, SwissRoll)):
        # Interior parameters, offsets well inside the reach, heights inside (0, H).
        t = torch.tensor([0.3, 0.5, 0.7], dtype=F64)
        theta = K.theta_min + t * (K.theta_max - K.theta_min)
        q = K.scale * theta[:, None] * torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
        q = q * (1.0 + torch.tensor([0.1, -0.1, 0.05], dtype=F64) * K.reach / (K.scale * theta))[:, None]
        if isinstance(K, SwissRoll):
            return torch.stack([q[:, 0], t * K.height, q[:, 1]], dim=1)
        return q
    q = K.sample(3, generator=g)
    return q + 0.3 * characteristic_length(K) * torch.randn(q.shape, dtype=F64, generator=g).clamp(-1, 1) / 2


@pytest.mark.parametrize("K", FAMILIES, ids=repr)
def test_oracles_pass_gradcheck(K):
    """Finite differences agree with autograd for ``distance`` and ``project`` (gradcheck's own tolerances).

    ``project`` is the formula for the closed forms, ``γ(θ*(x))`` with the implicit
    derivative of ``θ*`` for the spiral and the Swiss roll, and piecewise constant
    (zero Jacobian) for the finite set.
    """
    x = _gradcheck_points(K).requires_grad_(True)
    assert torch.autograd.gradcheck(K.distance, (x,))
    assert torch.autograd.gradcheck(K.project, (x,))
    assert torch.autograd.gradcheck(lambda z: K.project_with_distance(z)[1], (x,))


@pytest.mark.parametrize("K", [Circle(), Sphere(2, 2.0, center=[1.0, -1.0, 0.5]), Torus(2.0, 0.5)], ids=repr)
def test_projection_jacobian_of_round_shapes(K):
    """``proj`` of a sphere has Jacobian ``R (I − ûûᵀ)/‖u‖``; a torus point off the tube maps its normal to 0.

    Rounding: the autograd Jacobian has entries of size ``R/‖u‖`` (sphere) or ~1
    (torus, within the reach) carrying a few ulps; the torus normal ``(x − p)/d``
    carries ``ε (|x| + |p|)/d`` from the subtraction.
    """
    x = _gradcheck_points(K)
    jac = torch.stack([torch.autograd.functional.jacobian(lambda z: K.project(z[None])[0], xi) for xi in x])
    if isinstance(K, Sphere):
        u = x - K.center
        norm = torch.linalg.vector_norm(u, dim=1)
        uhat = u / norm[:, None]
        eye = torch.eye(K.ambient_dim, dtype=F64)
        expected = K.radius * (eye - uhat[:, :, None] * uhat[:, None, :]) / norm[:, None, None]
        tol = 16 * EPS * K.radius / norm
        assert bool(((jac - expected).abs().amax((1, 2)) <= tol).all())
    else:
        p, d = K.project_with_distance(x)
        normal = (x - p) / d[:, None]
        tol = 32 * EPS * (1.0 + x.abs().amax(1) + p.abs().amax(1)) / d
        assert bool((torch.einsum("bij,bj->bi", jac, normal).abs().amax(1) <= tol).all())


def test_spiral_projection_jacobian_is_the_tangent_projector_on_the_curve():
    """On the curve ``dθ*/dx = (e + θe⊥)/h′`` gives ``dproj/dx = t tᵀ`` (THEORY §1, ``_spiral_solver``).

    The implicit derivative is a ratio of terms of size ``1 + θ²``, each with a few ulps.
    """
    s = Spiral()
    q = s.sample(5, generator=3)
    jac = torch.stack([torch.autograd.functional.jacobian(lambda z: s.project(z[None])[0], qi) for qi in q])
    t = s.tangent_basis(q)[:, 0, :]
    tol = 16 * EPS * (1.0 + s.theta_max**2)
    torch.testing.assert_close(jac, t[:, :, None] * t[:, None, :], rtol=0, atol=tol)


def test_finite_set_projection_has_zero_gradient():
    K = FiniteSet([[0.0, 0.0], [3.0, 1.0]])
    x = torch.tensor([[0.5, 0.2], [2.0, 2.0]], dtype=F64, requires_grad=True)
    (grad,) = torch.autograd.grad(K.project(x).sum(), x)
    assert torch.equal(grad, torch.zeros_like(x))


@pytest.mark.parametrize(
    ("K", "x"),
    [
        (Sphere(2, 1.5, center=[1.0, 0.0, -1.0]), [[1.0, 0.0, -1.0]]),
        (Torus(2.0, 0.5), [[0.0, 0.0, 0.7], [0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, -2.0, 0.0]]),
    ],
    ids=["sphere centre", "torus axis and core"],
)
def test_gradients_on_the_medial_axis_are_finite(K, x):
    """Where ``dist_K`` has no gradient the oracles still return finite numbers, not 0/0."""
    x = torch.tensor(x, dtype=F64, requires_grad=True)
    p, d = K.project_with_distance(x)
    for out in (p.sum(), d.sum()):
        (grad,) = torch.autograd.grad(out, x, retain_graph=True)
        assert bool(torch.isfinite(grad).all())


# --------------------------------------------------------------------------------------
# Empty batches, sample dtypes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [F64, torch.float32, torch.float16])
@pytest.mark.parametrize("K", FAMILIES, ids=repr)
def test_empty_batches(K, dtype):
    n, d = K.ambient_dim, K.intrinsic_dim
    x = torch.zeros(0, n, dtype=dtype)
    p, dist = K.project_with_distance(x)
    assert (p.shape, dist.shape, p.dtype, dist.dtype) == ((0, n), (0,), dtype, dtype)
    assert K.project(x).shape == (0, n) and K.distance(x).shape == (0,)
    assert K.tangent_basis(x).shape == (0, d, n)
    assert K.sample(0, dtype=dtype).shape == (0, n)
    if isinstance(K, FiniteSet):
        assert K.nearest_index(x).shape == (0,)


@pytest.mark.parametrize("K", FAMILIES, ids=repr)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.complex64, "float32", np.float64])
def test_sample_refuses_non_floating_dtypes(K, dtype):
    with pytest.raises(TypeError, match="dtype"):
        K.sample(3, dtype=dtype)


# --------------------------------------------------------------------------------------
# Half precision
# --------------------------------------------------------------------------------------

#: Unit roundoff of float16 and bfloat16.
HALF_EPS = {torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@given(data=st.data(), K=manifolds())
def test_half_precision_inputs(data, K, dtype):
    """float16/bfloat16 points: finite results in the caller's dtype, equal to the float64 oracle rounded.

    The oracle computes in float32 (relative error ~1e-7 times the conditioning, at
    most 10 within 0.9 of the reach) and rounds once to the caller's dtype (half a
    unit of it), so a few units of roundoff times the magnitude bound the difference.
    """
    x = data.draw(points_near(K)).to(dtype)
    p, d = K.project_with_distance(x)
    assert (p.dtype, d.dtype) == (dtype, dtype)
    assert bool(torch.isfinite(p).all() and torch.isfinite(d).all())
    p64, d64 = K.project_with_distance(x.to(F64))
    tol = 4 * HALF_EPS[dtype] * _size(K, x.to(F64))
    assert float((p.to(F64) - p64).abs().max()) <= tol
    assert float((d.to(F64) - d64).abs().max()) <= tol
    assert K.project(x).dtype == dtype and K.distance(x).dtype == dtype
    T = K.tangent_basis(p)
    assert T.dtype == dtype and bool(torch.isfinite(T).all())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("K", FAMILIES, ids=repr)
def test_half_precision_where_squares_overflow(K, dtype):
    """``x = 300`` in float16: squares (9·10⁴) pass float16's 65504; the answers stay right."""
    n = K.ambient_dim
    x = torch.full((2, n), 300.0, dtype=dtype)
    x[1] *= -1
    p, d = K.project_with_distance(x)
    assert (p.dtype, d.dtype) == (dtype, dtype)
    p64, d64 = K.project_with_distance(x.to(F64))
    tol = 4 * HALF_EPS[dtype] * _size(K, x.to(F64))
    assert float((p.to(F64) - p64).abs().max()) <= tol
    assert float((d.to(F64) - d64).abs().max()) <= tol


def test_half_precision_overflowing_distance_is_a_value_error():
    """A distance beyond float16's 65504 cannot be returned in float16: a ValueError naming ``x``."""
    x = torch.tensor([[60000.0, 60000.0]], dtype=torch.float16)
    with pytest.raises(ValueError, match=r"x is too large for torch\.float16"):
        Circle().distance(x)
    assert Circle().project(x).dtype == torch.float16  # the nearest point itself is fine
    assert bool(torch.isfinite(Circle().distance(x.to(torch.bfloat16))).all())  # bfloat16's range is float32's


# --------------------------------------------------------------------------------------
# Extreme magnitudes
# --------------------------------------------------------------------------------------


def test_finite_set_nearest_point_of_huge_queries():
    """The nearest, not the farthest point, where ``‖x‖²`` overflows or swamps ``⟨x, k⟩``.

    ``‖x − k‖² = ‖x‖² − 2⟨x, k⟩ + ‖k‖²`` overflows at 1e160, and at 1e17 against unit
    points ``‖x‖²`` leaves no digit for ``2⟨x, k⟩``; the search ranks ``‖k‖² − 2⟨x, k⟩``.
    Where even that overflows (``|x|·|k| > 1e308``) the row is searched with ``x``
    scaled down.
    """
    K = FiniteSet([[1.0, 0.0], [-1.0, 0.0]])
    for v in (1e17, 1e160, 1e300, 1.7e308):
        x = torch.tensor([[-v, 0.0], [v, 0.0], [0.0, -v]], dtype=F64)
        p, d = K.project_with_distance(x)
        torch.testing.assert_close(p[:2], torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=F64), rtol=0, atol=0)
        torch.testing.assert_close(d, torch.tensor([v - 1.0, v - 1.0, math.hypot(v, 1.0)], dtype=F64))
    big = FiniteSet([[10.0, 0.0], [-10.0, 0.0]])  # 2⟨x, k⟩ overflows for |x| = 1e308
    x = torch.tensor([[-1e308, 0.0], [1e308, 1.0]], dtype=F64)
    torch.testing.assert_close(big.project(x), torch.tensor([[-10.0, 0.0], [10.0, 0.0]], dtype=F64))
    x32 = torch.tensor([[-1e30, 0.0]], dtype=torch.float32)  # float32 scores overflow against |k| = 1e10
    far = FiniteSet([[1e10, 0.0], [-1e10, 0.0]])
    assert far.nearest_index(x32).tolist() == [1]


def test_finite_set_refuses_points_whose_squares_overflow():
    with pytest.raises(ValueError, match="points"):
        FiniteSet([[1e200, 0.0]])


def _far_reference(s: Spiral, x: torch.Tensor) -> torch.Tensor:
    """The nearest parameter of far planar points by ``(g − ρ²)/ρ = bθ(bθ/ρ − 2⟨x/ρ, e(θ)⟩)``.

    A grid of spacing 1e-4 refined by a golden-section search on the bracketing cells
    (independent of the solver's windows).
    """
    b, t0, t1 = s.scale, s.theta_min, s.theta_max
    out = []
    for xi in x.tolist():
        m = max(abs(xi[0]), abs(xi[1]))
        rho = m * math.hypot(xi[0] / m, xi[1] / m)  # inf beyond 1.3e308: then bθ/ρ = 0
        ux, uy = xi[0] / m / math.hypot(xi[0] / m, xi[1] / m), xi[1] / m / math.hypot(xi[0] / m, xi[1] / m)

        def score(t, rho=rho, ux=ux, uy=uy):
            return b * t * (b * t / rho - 2.0 * (ux * np.cos(t) + uy * np.sin(t)))

        grid = np.linspace(t0, t1, math.ceil((t1 - t0) / 1e-4) + 1)
        i = int(np.argmin(score(grid)))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        phi = (math.sqrt(5) - 1) / 2
        for _ in range(200):
            a, c = hi - phi * (hi - lo), lo + phi * (hi - lo)
            if score(a) <= score(c):
                hi = c
            else:
                lo = a
        out.append(min((lo, hi, grid[i]), key=score))
    return torch.tensor(out, dtype=F64)


@pytest.mark.parametrize("magnitude", [1e3, 1e8, 1e17, 1e20, 1e160, 1e300, 1.7e308])
def test_spiral_far_points_get_the_nearest_winding(magnitude):
    """Far outside the roll the squared distances agree in almost every digit; the nearest point is still right.

    The reference minimises ``(g − ρ²)/ρ`` directly; its minimiser is located to
    ~1e-8 (a flat minimum of a float64 objective), far below the 2πb between windings.
    """
    s = Spiral()
    angles = torch.linspace(-math.pi, math.pi, 13, dtype=F64)[:-1] + 0.1
    x = magnitude * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    p, d = s.project_with_distance(x)
    theta = torch.linalg.vector_norm(p, dim=1) / s.scale
    torch.testing.assert_close(theta, _far_reference(s, x), rtol=0, atol=1e-6)
    # The distance is ‖x − p‖ to rounding (NumPy, rescaled by the largest entry: no overflow).
    v = (x - p).numpy()
    m = np.abs(v).max(axis=1)
    torch.testing.assert_close(d, torch.as_tensor(m * np.linalg.norm(v / m[:, None], axis=1)), rtol=8 * EPS, atol=0)


# --------------------------------------------------------------------------------------
# FiniteSet: memory of big queries, lazy reach
# --------------------------------------------------------------------------------------


def test_finite_set_search_memory_is_one_block(monkeypatch):
    """Queries and points are both blocked: no score block beyond 2^20 elements, however many queries."""
    sizes = []
    original = finite_module._score_blocks

    def recording(*args, **kwargs):
        for rows, start, s in original(*args, **kwargs):
            sizes.append(s.numel())
            yield rows, start, s

    monkeypatch.setattr(finite_module, "_score_blocks", recording)
    g = torch.Generator().manual_seed(0)
    K = FiniteSet(torch.randn(3000, 8, dtype=F64, generator=g))
    x = torch.randn(20_000, 8, dtype=F64, generator=g)
    idx = K.nearest_index(x)
    assert max(sizes) <= 1 << 20 and len(sizes) > 5
    # Against the exhaustive search on a subset.
    sub = x[::97]
    exact = torch.cdist(sub, K.points, compute_mode="donot_use_mm_for_euclid_dist").argmin(1)
    assert torch.equal(idx[::97], exact)


def test_finite_set_reach_is_lazy_cached_and_shows_progress(monkeypatch, capsys):
    calls = []
    original = finite_module._nearest

    def counting(*args, **kwargs):
        calls.append(kwargs.get("self_offset"))
        return original(*args, **kwargs)

    monkeypatch.setattr(finite_module, "_nearest", counting)
    monkeypatch.setattr(finite_module, "_QUERY_ROWS", 64)  # several row blocks, several progress updates
    pts = np.random.default_rng(2).normal(size=(300, 5))
    K = FiniteSet(pts)
    assert calls == []  # nothing computed on construction
    reach = K.reach
    blocks = len(calls)
    assert blocks == 5 and K.reach == reach and len(calls) == blocks  # computed once
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.diag(np.full(len(pts), np.inf))
    assert reach == pytest.approx(0.5 * d.min(), rel=1e-14)
    assert "FiniteSet.reach" not in capsys.readouterr().err  # small sets: no bar by default
    K2 = FiniteSet(pts)
    K2.progress = True
    assert K2.reach == reach
    assert "FiniteSet.reach" in capsys.readouterr().err
    K3 = FiniteSet(pts)
    K3.progress = False
    monkeypatch.setattr(finite_module, "_PROGRESS_POINTS", 10)
    assert K3.reach == reach and "FiniteSet.reach" not in capsys.readouterr().err


def test_finite_set_reach_of_clustered_points_far_from_the_origin():
    """Points 1e8 from the origin about 0.01 apart: the centred search keeps the digits the expansion would lose.

    (Differences of such points are exact in float64, so the reference is exact to rounding.)
    """
    offsets = np.random.default_rng(3).uniform(0.0, 1.0, size=(200, 3))
    pts = 1e8 + offsets
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.diag(np.full(len(pts), np.inf))
    assert FiniteSet(pts).reach == pytest.approx(0.5 * d.min(), rel=1e-12)


@settings(max_examples=20)
@given(m=st.integers(2, 60), n=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_finite_set_reach_is_half_the_smallest_pairwise_distance(m, n, seed):
    pts = np.random.default_rng(seed).normal(size=(m, n))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.diag(np.full(m, np.inf))
    assert FiniteSet(pts).reach == pytest.approx(0.5 * d.min(), rel=1e-12)
