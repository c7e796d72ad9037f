"""ProjectionDenoiser and PerturbedProjectionDenoiser (THEORY §2, §3, Lemma 1)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import toymanifold as tm

F64 = torch.float64


def _manifolds():
    g = torch.Generator().manual_seed(3)
    return {
        "circle": tm.Circle(radius=2.0),
        "sphere2": tm.Sphere(2, radius=0.7, center=[0.5, -1.0, 2.0]),
        "affine": tm.AffineSubspace(torch.randn(2, 5, generator=g, dtype=F64), offset=torch.randn(5, generator=g)),
        "embedded": tm.Embedded(tm.Sphere(2), 16, seed=1),
        "finite": tm.FiniteSet(torch.randn(30, 4, generator=g, dtype=F64)),
    }


MANIFOLDS = _manifolds()


def _noisy(manifold, num, sigma, seed):
    g = torch.Generator().manual_seed(seed)
    x0 = manifold.sample(num, g)
    return x0 + sigma * torch.randn(x0.shape, generator=g, dtype=F64)


@pytest.mark.parametrize("name", sorted(MANIFOLDS))
def test_projection_denoiser_is_exact_projection(name):
    K = MANIFOLDS[name]
    x = _noisy(K, 50, 0.3, 0)
    den = tm.ProjectionDenoiser(K)
    for sigma in (1e-4, 0.3, 1e4):
        eps = den(x, sigma)
        # ε = (x − proj(x))/σ exactly, hence x̂0 = proj(x).
        torch.testing.assert_close(eps * sigma, x - K.project(x), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(den.denoise(x, sigma), K.project(x), rtol=0, atol=1e-11)


@pytest.mark.parametrize("mode", ["random", "outward", "inward"])
@pytest.mark.parametrize("name", sorted(MANIFOLDS))
def test_perturbed_error_norm_is_eta_dist(name, mode):
    K = MANIFOLDS[name]
    x = _noisy(K, 64, 0.5, 1)
    p, d = K.project_with_distance(x)
    for eta in (0.0, 0.1, 0.5, 0.99):
        den = tm.PerturbedProjectionDenoiser(K, eta, mode=mode, seed=7)
        for sigma in (0.01, 0.5, 20.0):
            x0 = den.denoise(x, sigma)
            err = torch.linalg.vector_norm(x0 - p, dim=1)
            np.testing.assert_allclose(err.numpy(), (eta * d).numpy(), rtol=1e-12, atol=1e-12)


@given(
    eta=st.floats(0.0, 0.999),
    seed=st.integers(0, 2**31),
    scale=st.floats(1e-3, 1e3),
    mode=st.sampled_from(["random", "outward", "inward"]),
    name=st.sampled_from(sorted(MANIFOLDS)),
)
def test_perturbed_error_norm_hypothesis(eta, seed, scale, mode, name):
    K = MANIFOLDS[name]
    x = _noisy(K, 8, scale, seed % 1000)
    p, d = K.project_with_distance(x)
    e = tm.PerturbedProjectionDenoiser(K, eta, mode=mode, seed=seed).denoise(x, 0.25) - p
    # Error of the round trip x − σ·((x − x̂0)/σ): a few ulps of ‖x‖.
    atol = 1e-14 * float(x.abs().max() + 1)
    np.testing.assert_allclose(torch.linalg.vector_norm(e, dim=1).numpy(), (eta * d).numpy(), rtol=1e-12, atol=atol)


def test_outward_inward_directions():
    K = tm.Sphere(2)
    x = _noisy(K, 40, 0.4, 2)
    p, d = K.project_with_distance(x)
    normal = (x - p) / d[:, None]
    out = tm.PerturbedProjectionDenoiser(K, 0.3, mode="outward").denoise(x, 1.0) - p
    inw = tm.PerturbedProjectionDenoiser(K, 0.3, mode="inward").denoise(x, 1.0) - p
    torch.testing.assert_close(out, 0.3 * d[:, None] * normal, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(inw, -0.3 * d[:, None] * normal, rtol=1e-12, atol=1e-14)


@given(beta=st.floats(0.01, 1.0), eta=st.floats(0.0, 0.95), seed=st.integers(0, 10_000))
def test_lemma1_is_tight_for_outward_and_inward(beta, eta, seed):
    """THEORY Lemma 1: outward attains the upper bound, inward the lower bound (sphere, convex side)."""
    K = tm.Sphere(3, radius=1.5)
    x = _noisy(K, 16, 0.2, seed)
    _, d = K.project_with_distance(x)
    sigma = 0.7
    sigma_next = (1 - beta) * sigma  # β = 1 − σ_{t−1}/σ_t
    for mode, factor in (("outward", 1 - beta * (1 - eta)), ("inward", 1 - beta * (1 + eta))):
        den = tm.PerturbedProjectionDenoiser(K, eta, mode=mode)
        x_next = x + (sigma_next - sigma) * den(x, sigma)  # one DDIM step (THEORY §3)
        d_next = K.distance(x_next)
        if mode == "inward" and factor < 0:
            # Past the nearest point the new iterate sits on the other side: only the bound holds.
            assert bool((d_next >= factor * d - 1e-12).all())
            continue
        np.testing.assert_allclose(d_next.numpy(), (factor * d).numpy(), rtol=1e-10, atol=1e-12)


@given(beta=st.floats(0.01, 1.0), eta=st.floats(0.0, 0.95), seed=st.integers(0, 10_000))
def test_lemma1_bounds_hold_for_random_errors(beta, eta, seed):
    K = MANIFOLDS["embedded"]
    x = _noisy(K, 16, 0.1, seed)
    _, d = K.project_with_distance(x)
    den = tm.PerturbedProjectionDenoiser(K, eta, mode="random", seed=seed)
    x_next = x - beta * 0.1 * den(x, 0.1)
    d_next = K.distance(x_next)
    assert bool((d_next <= (1 - beta) * d + beta * eta * d + 1e-12).all())
    assert bool((d_next >= (1 - beta) * d - beta * eta * d - 1e-12).all())


def test_random_mode_reproducible_and_seed_dependent():
    K = MANIFOLDS["embedded"]
    x = _noisy(K, 10, 0.5, 4)
    a = tm.PerturbedProjectionDenoiser(K, 0.5, seed=1)
    b = tm.PerturbedProjectionDenoiser(K, 0.5, seed=1)
    c = tm.PerturbedProjectionDenoiser(K, 0.5, seed=2)
    torch.testing.assert_close(a(x, 0.3), b(x, 0.3), rtol=0, atol=0)
    torch.testing.assert_close(a(x, 0.3), a(x, 0.3), rtol=0, atol=0)  # a function of (seed, x)
    assert not torch.allclose(a(x, 0.3), c(x, 0.3))
    # A different batch gets fresh directions.
    assert not torch.allclose(a(x[:5], 0.3), a(x[:5] + 1e-3, 0.3), atol=1e-3)


def test_random_mode_directions_are_isotropic():
    """Uniform directions: mean 0 and second moment I/n (each within ~4 standard errors)."""
    n, B = 3, 20_000
    K = tm.AffineSubspace(torch.eye(n, dtype=F64)[:1])  # a line in R^3
    x = torch.randn(B, n, generator=torch.Generator().manual_seed(5), dtype=F64)
    x[:, 0] = 0.0  # distance ‖x‖, nearest point 0: e = x̂0 exactly
    e = tm.PerturbedProjectionDenoiser(K, 0.5, seed=0).denoise(x, 1.0)
    u = e / torch.linalg.vector_norm(e, dim=1, keepdim=True)
    se_mean = math.sqrt(1 / n / B)
    assert float(u.mean(0).abs().max()) < 4 * se_mean
    second = u.T @ u / B
    # Var(u_i²) = 2(n−1)/(n²(n+2)) for uniform u on S^{n−1}.
    se_second = math.sqrt(2 * (n - 1) / (n * n * (n + 2)) / B)
    assert float((second - torch.eye(n, dtype=F64) / n).abs().max()) < 4 * se_second


def test_points_on_the_manifold_and_float32():
    K = tm.Sphere(2)
    x = K.sample(5, 0)
    for mode in ("random", "outward", "inward"):
        den = tm.PerturbedProjectionDenoiser(K, 0.5, mode=mode)
        eps = den(x, 0.1)
        assert torch.isfinite(eps).all()
        torch.testing.assert_close(den.denoise(x, 0.1), x, rtol=0, atol=1e-12)
        x32 = _noisy(K, 5, 0.3, 0).float()
        out = den(x32, 0.1)
        assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_eta_zero_equals_projection_and_image_shapes():
    K = tm.Embedded(tm.Sphere(2), 12)
    x = _noisy(K, 4, 0.3, 6)
    torch.testing.assert_close(
        tm.PerturbedProjectionDenoiser(K, 0.0)(x, 0.2), tm.ProjectionDenoiser(K)(x, 0.2), rtol=0, atol=1e-12
    )
    # (B, *shape) input with n = prod(shape).
    img = x.reshape(4, 3, 4)
    assert tm.ProjectionDenoiser(K)(img, 0.2).shape == (4, 3, 4)


@pytest.mark.parametrize("eta", [-0.1, 1.0, 1.5, float("nan"), float("inf")])
def test_bad_eta(eta):
    with pytest.raises(ValueError, match="eta"):
        tm.PerturbedProjectionDenoiser(tm.Circle(), eta)


@pytest.mark.parametrize("mode", ["Random", "worst", "", "adversarial"])
def test_bad_mode(mode):
    with pytest.raises(ValueError, match="mode"):
        tm.PerturbedProjectionDenoiser(tm.Circle(), 0.1, mode=mode)


@pytest.mark.parametrize("cls", ["proj", "perturbed"])
def test_bad_sigma_and_shapes(cls):
    K = tm.Circle()
    den = tm.ProjectionDenoiser(K) if cls == "proj" else tm.PerturbedProjectionDenoiser(K, 0.2)
    x = torch.ones(3, 2, dtype=F64)
    for sigma in (0.0, -1.0, float("nan"), torch.tensor([0.1, 0.0, 0.2])):
        with pytest.raises(ValueError, match="sigma"):
            den(x, sigma)
    with pytest.raises(ValueError, match="sigma"):
        den(x, torch.ones(4))
    with pytest.raises(ValueError, match="x"):
        den(torch.ones(3, 3), 0.1)
    with pytest.raises(ValueError, match="x"):
        den(torch.ones(2), 0.1)
    with pytest.raises(TypeError, match="manifold"):
        type(den)(torch.ones(3, 2)) if cls == "proj" else tm.PerturbedProjectionDenoiser("circle", 0.1)
