"""Closed-form ideal denoisers (THEORY §4): finite set, sphere (vMF), Gaussian subspace, embedded.

Every closed form is checked against something computed independently: the finite
set against a naive float64 softmax over direct distances; the Bessel ratio against
40-digit mpmath; the sphere and subspace posterior means against importance-sampled
posterior means built only from the likelihood and the prior (THEORY §1).
"""

import math

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import toymanifold as tm
from toymanifold.denoisers.ideal import (
    EmbeddedDenoiser,
    FiniteSetDenoiser,
    GaussianSubspaceDenoiser,
    SphereDenoiser,
    bessel_ratio,
)

F64 = torch.float64


# --------------------------------------------------------------------------------------
# Bessel ratio A_m(κ)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [2, 3, 4, 6, 11, 65])
def test_bessel_ratio_matches_mpmath(m):
    mpmath.mp.dps = 40
    kappa = np.logspace(-8, 8, 33)
    ref = np.array([float(mpmath.besseli(m / 2, k) / mpmath.besseli(m / 2 - 1, k)) for k in kappa])
    np.testing.assert_allclose(bessel_ratio(m, kappa), ref, rtol=4e-15, atol=0)


def test_bessel_ratio_limits():
    for m in (2, 3, 6, 101):
        # A_m(κ) = κ/m (1 − κ²/(m(m+2)) + …): at κ = 1e−8 the correction is below 1e−16.
        np.testing.assert_allclose(bessel_ratio(m, 1e-8), 1e-8 / m, rtol=1e-15)
        # A_m(κ) = 1 − (m−1)/(2κ) + O(κ⁻²): at κ = 1e8 the remainder is ~1e−16 · m².
        np.testing.assert_allclose(bessel_ratio(m, 1e8), 1 - (m - 1) / 2e8, rtol=0, atol=1e-15 * m * m)
        # Beyond scipy's ive range (NaN from ~1e10): the Hankel expansion, exact to rounding here.
        np.testing.assert_allclose(bessel_ratio(m, 1e12), 1 - (m - 1) / 2e12, rtol=0, atol=2e-16)
        assert bessel_ratio(m, 0.0) == 0.0 and bessel_ratio(m, np.inf) == 1.0
    # Large order, tiny κ: I_ν underflows to 0 but the ratio must not be NaN.
    np.testing.assert_allclose(bessel_ratio(1001, 1e-8), 1e-8 / 1001, rtol=1e-14)
    with pytest.raises(ValueError, match="kappa"):
        bessel_ratio(3, -1.0)
    with pytest.raises(ValueError, match="m"):
        bessel_ratio(1, 1.0)


# --------------------------------------------------------------------------------------
# Finite set
# --------------------------------------------------------------------------------------


def _naive_posterior_mean(x, points, sigma):
    """Full float64 softmax over direct squared distances (no expansion, no streaming)."""
    x, points = x.double(), points.double()
    d2 = (x[:, None, :] - points[None, :, :]).square().sum(-1)
    w = torch.softmax(-d2 / (2 * sigma * sigma), dim=1)
    return w @ points


def _cloud(m, n, seed, offset=2.0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(m, n, generator=g, dtype=F64) + offset
    x = pts[torch.randint(m, (48,), generator=g)] + 0.5 * torch.randn(48, n, generator=g, dtype=F64)
    return pts, x


@pytest.mark.parametrize("sigma", [1e-3, 0.05, 0.3, 1.0, 3.0, 1e3])
@pytest.mark.parametrize("chunk", [37, 1000, None])
def test_finite_streaming_matches_naive_float64(sigma, chunk):
    pts, x = _cloud(1000, 16, 0)
    den = FiniteSetDenoiser(pts, chunk_size=chunk)
    torch.testing.assert_close(den.posterior_mean(x, sigma), _naive_posterior_mean(x, pts, sigma), rtol=0, atol=1e-12)
    eps = den(x, sigma)
    torch.testing.assert_close(eps, (x - _naive_posterior_mean(x, pts, sigma)) / sigma, rtol=1e-9, atol=1e-12 / sigma)


@pytest.mark.parametrize("sigma", [1e-4, 0.05, 0.3, 1.0, 3.0, 1e4])
def test_finite_streaming_float32_relative_1e5(sigma):
    pts, x = _cloud(1000, 16, 1)
    x32 = x.float()
    den = FiniteSetDenoiser(pts, chunk_size=100)
    out = den.posterior_mean(x32, sigma)
    assert out.dtype == torch.float32
    # Reference: the same float32 inputs, evaluated in float64.
    ref = _naive_posterior_mean(x32, pts.float(), sigma)
    rel = torch.linalg.vector_norm(out.double() - ref, dim=1) / torch.linalg.vector_norm(ref, dim=1)
    assert float(rel.max()) < 1e-5


def test_finite_small_sigma_returns_nearest_point():
    pts, x = _cloud(500, 8, 2)
    K = tm.FiniteSet(pts)
    for dtype in (F64, torch.float32):
        xd = x.to(dtype)
        out = tm.ideal_denoiser(K).posterior_mean(xd, 1e-4)
        # All weight on the nearest point; (k − c) + c rounds to within an ulp or two of k.
        ulps = 4 * torch.finfo(dtype).eps * float(pts.abs().max())
        torch.testing.assert_close(out, K.project(xd), rtol=0, atol=ulps)


@given(
    m=st.integers(2, 12),
    n=st.integers(1, 5),
    seed=st.integers(0, 2**20),
    sigma=st.floats(0.01, 3.0),
    spread=st.floats(0.1, 3.0),
)
def test_lemma2_certificate(m, n, seed, sigma, spread):
    """THEORY §4, Lemma 2: ‖x̂0 − k1‖ ≤ Σ_{i≠1} exp(−(‖x − k_i‖² − d1²)/(2σ²)) ‖k_i − k1‖."""
    g = torch.Generator().manual_seed(seed)
    pts = spread * torch.randn(m, n, generator=g, dtype=F64)
    x = spread * torch.randn(6, n, generator=g, dtype=F64)
    x0 = tm.ideal_denoiser(tm.FiniteSet(pts)).posterior_mean(x, sigma)
    d2 = (x[:, None, :] - pts[None]).square().sum(-1)
    i1 = d2.argmin(1)
    k1 = pts[i1]
    gap = d2 - d2.min(1, keepdim=True).values
    bound = (torch.exp(-gap / (2 * sigma**2)) * torch.cdist(k1, pts)).sum(1)  # the i = 1 term is 0
    lhs = torch.linalg.vector_norm(x0 - k1, dim=1)
    assert bool((lhs <= bound + 1e-12 * (1 + spread)).all()), (lhs, bound)


def test_finite_set_weights_and_embedded_finite():
    pts, x = _cloud(50, 3, 3)
    den = tm.ideal_denoiser(tm.FiniteSet(pts))
    w = den.posterior_weights(x, 0.7)
    torch.testing.assert_close(w.sum(1), torch.ones(48, dtype=F64), rtol=0, atol=1e-14)
    torch.testing.assert_close(w @ pts, den.posterior_mean(x, 0.7), rtol=0, atol=1e-12)
    # Embedded finite set: the lifted denoiser equals the finite-set formula on the embedded points.
    E = tm.Embedded(tm.FiniteSet(pts), 20, seed=2)
    xe = E.embed(x) + 0.3 * torch.randn(48, 20, generator=torch.Generator().manual_seed(0), dtype=F64)
    lifted = tm.ideal_denoiser(E)
    assert isinstance(lifted, EmbeddedDenoiser)
    direct = FiniteSetDenoiser(E.embed(pts))
    torch.testing.assert_close(lifted.posterior_mean(xe, 0.5), direct.posterior_mean(xe, 0.5), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------
# Monte Carlo posterior means (THEORY §6: "ideal denoisers agree with a Monte Carlo posterior mean")
# --------------------------------------------------------------------------------------

SIGMAS = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
NUM_MC = 20_000


def _sphere_frame(K):
    """(centre, radius, intrinsic dim) of a Sphere or an Embedded Sphere, in ambient coordinates."""
    if isinstance(K, tm.Embedded):
        return K.frame @ K.base.center, K.base.radius, K.intrinsic_dim
    return K.center, K.radius, K.intrinsic_dim


def _mc_sphere(K, x, sigma, g):
    """Self-normalised importance sampling of E[x0 | x] for uniform data on a sphere.

    Samples are y = exp_p(t) for tangent vectors t at the nearest point p = proj(x)
    (angle θ = ‖t‖ ≤ π; t outside that ball gets weight 0). Defensive mixture proposal
    on t: half N(0, τ² I_d) with τ = 1.3/√κ (a little wider than the posterior's
    tangent spread 1/√κ), half uniform on the ball of radius π (covers the whole
    sphere, which bounds every weight). The surface measure is (sin θ/θ)^{d−1} times
    Lebesgue measure in t, so the weight is likelihood · (sin θ/θ)^{d−1} / q(t). Only
    the likelihood, the uniform prior and the sphere's geometry enter — not the vMF
    formula. (A prior proposal needs ~σ^{−d} samples at small σ: 10^10 for d = 5, σ = 0.01.)
    Returns the estimate, its standard error sqrt(Σ w̃² ‖y − μ̂‖²) and the ESS 1/Σ w̃².
    """
    c, R, d = _sphere_frame(K)
    p = K.project(x[None])[0]
    nhat = (p - c) / R
    kappa = R * float(torch.dot(x - c, nhat)) / sigma**2  # R ‖P_V(x − c)‖ / σ²
    T = K.tangent_basis(p[None])[0]  # (d, n) orthonormal rows
    tau = 1.3 / math.sqrt(max(kappa, 1e-12))
    half = NUM_MC // 2
    t_gauss = tau * torch.randn(half, d, generator=g, dtype=F64)
    u = torch.randn(NUM_MC - half, d, generator=g, dtype=F64)
    r = math.pi * torch.rand(NUM_MC - half, generator=g, dtype=F64) ** (1 / d)
    t = torch.cat([t_gauss, u / torch.linalg.vector_norm(u, dim=1, keepdim=True) * r[:, None]])
    theta = torch.linalg.vector_norm(t, dim=1)
    log_ball = -(d / 2 * math.log(math.pi) - math.lgamma(d / 2 + 1) + d * math.log(math.pi))
    log_gauss = -theta.square() / (2 * tau**2) - d / 2 * math.log(2 * math.pi * tau**2)
    log_q = torch.logaddexp(log_gauss, torch.full_like(theta, log_ball)) + math.log(0.5)
    v = t / theta[:, None]
    y = c + R * (torch.cos(theta)[:, None] * nhat + torch.sin(theta)[:, None] * (v @ T))
    logw = -(x - y).square().sum(1) / (2 * sigma**2) - log_q
    logw = logw + (d - 1) * torch.log(torch.sin(theta).clamp_min(1e-300) / theta)
    logw = torch.where(theta <= math.pi, logw, torch.full_like(logw, -math.inf))
    w = torch.softmax(logw, 0)
    mu = w @ y
    se = math.sqrt(float((w * w) @ (y - mu).square().sum(1)))
    return mu, se, 1 / float((w * w).sum())


def _sphere_cases():
    return [
        tm.Circle(radius=1.3),
        tm.Sphere(2),
        tm.Sphere(5, radius=0.8, center=[0.1, 0.2, -0.3, 0.0, 0.5, 1.0]),
        tm.Embedded(tm.Circle(), 64, seed=1),
        tm.Embedded(tm.Sphere(2), 64, seed=2),
        tm.Embedded(tm.Sphere(5), 64, seed=3),
    ]


@pytest.mark.parametrize("case", range(6))
def test_sphere_posterior_mean_matches_monte_carlo(case):
    K = _sphere_cases()[case]
    den = tm.ideal_denoiser(K)
    assert isinstance(den, SphereDenoiser | EmbeddedDenoiser)
    g = torch.Generator().manual_seed(100 + case)
    for sigma in SIGMAS:
        x0 = K.sample(2, g)
        x = x0 + sigma * torch.randn(x0.shape, generator=g, dtype=F64)
        closed = den.posterior_mean(x, sigma)
        for i in range(2):
            mu, se, ess = _mc_sphere(K, x[i], sigma, g)
            assert ess > 100, (sigma, ess)
            err = float(torch.linalg.vector_norm(closed[i] - mu))
            assert err <= 4 * se, f"sigma={sigma}: |closed − MC| = {err:.3g} > 4 SE = {4 * se:.3g}"


def test_monte_carlo_check_has_power():
    """Negative control: the same check rejects the wrong Bessel order A_d instead of A_{d+1}."""
    K = tm.Sphere(2)
    g = torch.Generator().manual_seed(7)
    rejected = 0
    for sigma in (0.3, 1.0):
        x0 = K.sample(2, g)
        x = x0 + sigma * torch.randn(x0.shape, generator=g, dtype=F64)
        for i in range(2):
            u = x[i]
            kappa = float(u.norm()) / sigma**2
            wrong = float(bessel_ratio(2, kappa)) * u / u.norm()  # A_2 used on S^2: wrong
            mu, se, _ = _mc_sphere(K, x[i], sigma, g)
            rejected += float(torch.linalg.vector_norm(wrong - mu)) > 4 * se
    assert rejected >= 3


def _mc_gaussian(S, x, sigma, g):
    """IS for N(c, s²P): prior proposal if σ ≥ s (weights = likelihood), else N(Bx̃, (2σ)²) in coordinates."""
    B, c, s = S.basis, S.offset, S.scale
    d = B.shape[0]
    z_hat = B @ (x - c)
    if sigma >= s:
        z = s * torch.randn(NUM_MC, d, generator=g, dtype=F64)
        log_q_minus_prior = torch.zeros(NUM_MC, dtype=F64)
    else:
        tau = 2 * sigma
        z = z_hat + tau * torch.randn(NUM_MC, d, generator=g, dtype=F64)
        log_q = -(z - z_hat).square().sum(1) / (2 * tau**2) - d * math.log(tau)
        log_prior = -z.square().sum(1) / (2 * s**2) - d * math.log(s)
        log_q_minus_prior = log_q - log_prior
    y = c + z @ B
    logw = -(x - y).square().sum(1) / (2 * sigma**2) - log_q_minus_prior
    w = torch.softmax(logw, 0)
    mu = w @ y
    se = math.sqrt(float((w * w) @ (y - mu).square().sum(1)))
    return mu, se, 1 / float((w * w).sum())


@pytest.mark.parametrize("embedded", [False, True])
def test_gaussian_subspace_posterior_mean_matches_monte_carlo(embedded):
    g = torch.Generator().manual_seed(11)
    S = tm.AffineSubspace(torch.randn(2, 6, generator=g, dtype=F64), offset=torch.randn(6, generator=g), scale=1.5)
    K = tm.Embedded(S, 64, seed=4) if embedded else S
    den = tm.ideal_denoiser(K)
    assert isinstance(den, EmbeddedDenoiser if embedded else GaussianSubspaceDenoiser)
    for sigma in SIGMAS:
        x0 = K.sample(2, g)
        x = x0 + sigma * torch.randn(x0.shape, generator=g, dtype=F64)
        closed = den.posterior_mean(x, sigma)
        for i in range(2):
            if embedded:
                # MC in the base space on Qᵀx, then mapped back: the likelihood factorises exactly.
                mu_b, se, ess = _mc_gaussian(S, K.to_base(x[i : i + 1])[0], sigma, g)
                mu = K.embed(mu_b[None])[0]
            else:
                mu, se, ess = _mc_gaussian(S, x[i], sigma, g)
            assert ess > 100
            err = float(torch.linalg.vector_norm(closed[i] - mu))
            assert err <= 4 * se, f"sigma={sigma}: |closed − MC| = {err:.3g} > 4 SE = {4 * se:.3g}"


def test_sphere_matches_finite_set_on_many_samples():
    """THEORY §6: the sphere formula agrees with the finite-set formula on many samples (within MC error)."""
    K = tm.Sphere(2)
    pts = K.sample(200_000, 0)
    fin = tm.ideal_denoiser(tm.FiniteSet(pts))
    x = K.sample(8, 1) * 1.2
    for sigma in (0.3, 1.0):
        a = tm.ideal_denoiser(K).posterior_mean(x, sigma)
        w = fin.posterior_weights(x, sigma)
        b = w @ pts
        # Standard error of the self-normalised finite-set average, per row.
        se = torch.sqrt(((w * w) * ((pts[None] - b[:, None]) ** 2).sum(-1)).sum(1))
        assert bool((torch.linalg.vector_norm(a - b, dim=1) <= 4 * se).all())


# --------------------------------------------------------------------------------------
# Robustness and dispatch
# --------------------------------------------------------------------------------------


def _all_families():
    g = torch.Generator().manual_seed(9)
    return [
        tm.FiniteSet(torch.randn(300, 5, generator=g, dtype=F64)),
        tm.Circle(),
        tm.Sphere(2, radius=3.0),
        tm.Sphere(5),
        tm.AffineSubspace(torch.randn(2, 4, generator=g, dtype=F64), scale=0.5),
        tm.Embedded(tm.Sphere(2), 64),
        tm.Embedded(tm.FiniteSet(torch.randn(100, 3, generator=g, dtype=F64)), 10),
    ]


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("case", range(7))
def test_no_nan_or_inf_over_sigma_range(case, dtype):
    K = _all_families()[case]
    den = tm.ideal_denoiser(K)
    g = torch.Generator().manual_seed(case)
    x0 = K.sample(16, g)
    far = 1e3 * torch.randn(4, K.ambient_dim, generator=g, dtype=F64)
    centre = torch.zeros(1, K.ambient_dim, dtype=F64)  # the sphere's medial axis (origin-centred cases)
    for sigma in np.logspace(-4, 4, 17):
        x = torch.cat([x0 + sigma * torch.randn(x0.shape, generator=g, dtype=F64), x0, far, centre]).to(dtype)
        eps = den(x, float(sigma))
        x0_hat = den.posterior_mean(x, float(sigma))
        assert eps.dtype == dtype and bool(torch.isfinite(eps).all()), sigma
        assert bool(torch.isfinite(x0_hat).all()), sigma
    # Per-sample sigma tensors work too.
    x = x0.to(dtype)
    sig = torch.logspace(-4, 4, 16, dtype=dtype)
    assert bool(torch.isfinite(den(x, sig)).all())


def test_sphere_small_sigma_is_projection_and_large_sigma_is_centre():
    K = tm.Sphere(2, radius=2.0, center=[1.0, 0.0, -1.0])
    x = K.sample(10, 0) + 0.3 * torch.randn(10, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    den = tm.ideal_denoiser(K)
    # A ≈ 1 − (m−1)σ²/(2R‖u‖): at σ = 1e−4 the gap to the nearest point is ~1e−8.
    torch.testing.assert_close(den.posterior_mean(x, 1e-4), K.project(x), rtol=0, atol=1e-7)
    # A ≈ κ/m → 0: at σ = 1e4 the mean is the centre to ~R²‖u‖/(3σ²).
    torch.testing.assert_close(den.posterior_mean(x, 1e4), K.center.expand(10, 3), rtol=0, atol=1e-7)


def test_subspace_closed_form_independent_check():
    """Gaussian conjugacy computed from the covariance matrices directly (no projector identity)."""
    g = torch.Generator().manual_seed(12)
    S = tm.AffineSubspace(torch.randn(3, 5, generator=g, dtype=F64), offset=torch.randn(5, generator=g), scale=0.7)
    x = torch.randn(4, 5, generator=g, dtype=F64)
    sigma = 0.4
    P = S.basis.T @ S.basis
    cov0 = S.scale**2 * P
    # E[x0 | x] = c + Σ0 (Σ0 + σ² I)^{-1} (x − c)
    gain = cov0 @ torch.linalg.inv(cov0 + sigma**2 * torch.eye(5, dtype=F64))
    ref = S.offset + (x - S.offset) @ gain.T
    torch.testing.assert_close(tm.ideal_denoiser(S).posterior_mean(x, sigma), ref, rtol=0, atol=1e-12)


def test_gpu_matches_cpu_if_available():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    pts, x = _cloud(2000, 32, 4)
    den = FiniteSetDenoiser(pts)
    for dtype in (torch.float32, F64):
        cpu = den.posterior_mean(x.to(dtype), 0.5).double()
        gpu = den.posterior_mean(x.to(dtype).cuda(), 0.5).double().cpu()
        torch.testing.assert_close(gpu, cpu, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=1e-6)


def test_no_closed_form_error_names_alternatives():
    with pytest.raises(TypeError) as info:
        tm.ideal_denoiser(tm.Torus(2.0, 0.5))
    msg = str(info.value)
    for word in ("FiniteSet", "Sphere", "AffineSubspace", "Embedded", "ideal_denoiser(FiniteSet(manifold.sample(M)))"):
        assert word in msg
    with pytest.raises(TypeError):
        tm.ideal_denoiser(tm.Embedded(tm.Torus(2.0, 0.5), 5))
    with pytest.raises(TypeError, match="manifold"):
        tm.ideal_denoiser(np.zeros((3, 2)))


def test_bad_input():
    den = tm.ideal_denoiser(tm.Sphere(2))
    x = torch.ones(2, 3, dtype=F64)
    for sigma in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="sigma"):
            den(x, sigma)
    with pytest.raises(ValueError, match="sigma"):
        den.posterior_mean(x, torch.ones(3))
    with pytest.raises(ValueError, match="x"):
        den(torch.ones(2, 4), 0.1)
    with pytest.raises(ValueError, match="x"):
        den.posterior_mean(torch.ones(2, 3, 1), 0.1)
    with pytest.raises(ValueError, match="chunk_size"):
        FiniteSetDenoiser(torch.ones(3, 2), chunk_size=0)
    with pytest.raises(ValueError, match="points"):
        FiniteSetDenoiser(torch.ones(0, 2))
