"""Sampler-quality metrics against closed forms."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import analysis
import toymanifold as tm

EPS = float(np.finfo(np.float64).eps)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _spd(n, seed, cond=10.0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.geomspace(1.0, 1.0 / cond, n)) @ q.T


# ---------------------------------------------------------------------------- Fréchet
@given(
    a=st.lists(st.floats(0.05, 5.0), min_size=3, max_size=3),
    b=st.lists(st.floats(0.05, 5.0), min_size=3, max_size=3),
    angle=st.floats(0.0, math.pi),
    shift=st.floats(-3.0, 3.0),
)
def test_frechet_2x2_closed_form(a, b, angle, shift):
    """For 2×2 PSD A, B: tr((A^{1/2} B A^{1/2})^{1/2}) = √(tr(AB) + 2√(det A det B)), since a 2×2
    PSD matrix M has tr √M = √(tr M + 2√det M) and A^{1/2} B A^{1/2} is similar to AB."""
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    A = np.array([[a[0], a[1] * 0.3], [a[1] * 0.3, a[2]]])
    A = A @ A.T  # PSD, generally not commuting with B
    B = rot @ np.diag(b[:2]) @ rot.T
    mu1, mu2 = np.array([0.0, 1.0]), np.array([shift, -1.0])
    tr_sqrt = math.sqrt(np.trace(A @ B) + 2 * math.sqrt(max(np.linalg.det(A), 0) * np.linalg.det(B)))
    expected = float((mu1 - mu2) @ (mu1 - mu2) + np.trace(A) + np.trace(B) - 2 * tr_sqrt)
    got = analysis.frechet_distance_from_stats(mu1, A, mu2, B)
    # Each trace is a sum of O(1) terms of size ≤ tr A + tr B: a few hundred ulps of that scale
    # covers the eigendecompositions (whose eigenvalue errors are ulps of the norm).
    scale = np.trace(A) + np.trace(B) + (mu1 - mu2) @ (mu1 - mu2)
    assert got == pytest.approx(expected, abs=256 * EPS * scale)
    assert got == pytest.approx(analysis.frechet_distance_from_stats(mu2, B, mu1, A), abs=256 * EPS * scale)


def test_frechet_commuting_scaled_singular_and_sqrtm():
    # Commuting (diagonal) covariances: Σ (√a_i − √b_i)², including a singular one.
    a, b = np.array([4.0, 1.0, 0.0, 2.0]), np.array([1.0, 9.0, 3.0, 0.0])
    mu = np.array([1.0, 2.0, 3.0, 4.0])
    got = analysis.frechet_distance_from_stats(mu, np.diag(a), mu + 1, np.diag(b))
    assert got == pytest.approx(4.0 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum(), rel=1e-13)
    # Σ2 = c² Σ1: (1 − c)² tr Σ1.
    S = _spd(6, 0)
    assert analysis.frechet_distance_from_stats(np.zeros(6), S, np.zeros(6), 9 * S) == pytest.approx(
        4 * np.trace(S), rel=1e-12
    )
    assert abs(analysis.frechet_distance_from_stats(np.ones(6), S, np.ones(6), S)) <= 64 * EPS * np.trace(S)
    # General case against the usual sqrtm(Σ1 Σ2) formula (well conditioned here).
    S1, S2 = _spd(6, 1, cond=5), _spd(6, 2, cond=5)
    ref = np.trace(S1) + np.trace(S2) - 2 * np.trace(scipy.linalg.sqrtm(S1 @ S2)).real
    assert analysis.frechet_distance_from_stats(np.zeros(6), S1, np.zeros(6), S2) == pytest.approx(ref, rel=1e-10)
    with pytest.raises(ValueError, match="sigma1"):
        analysis.frechet_distance_from_stats(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="mu2"):
        analysis.frechet_distance_from_stats(np.zeros(2), np.eye(2), np.zeros(3), np.eye(2))


def test_frechet_from_feature_sets():
    g = _gen(0)
    x = torch.randn(400, 3, generator=g, dtype=torch.float64)
    y = 2 * torch.randn(300, 3, generator=g, dtype=torch.float64) + 1
    xn, yn = x.numpy(), y.numpy()
    expected = analysis.frechet_distance_from_stats(xn.mean(0), np.cov(xn.T), yn.mean(0), np.cov(yn.T))
    assert analysis.frechet_distance(x, y) == expected
    # Sample statistics of N(0, I) and N(1, 4I): FD → 3·1 + 3·(2 − 1)² = 6 (estimate, 10%).
    assert analysis.frechet_distance(x, y) == pytest.approx(6.0, rel=0.1)
    with pytest.raises(ValueError, match="at least 2"):
        analysis.frechet_distance(x[:1], y)
    with pytest.raises(ValueError, match="same dimension"):
        analysis.frechet_distance(x, y[:, :2])


# ---------------------------------------------------------------------------- MMD
def test_mmd_identical_sets_exact_values():
    x = torch.randn(50, 4, generator=_gen(1), dtype=torch.float64)
    h = 1.3
    K = torch.exp(-(torch.cdist(x, x) ** 2) / (2 * h * h))
    off = (K.sum() - K.diagonal().sum()) / (50 * 49)
    # Unbiased U-statistic with y = x: −(2/m)(1 − mean_{i≠j} k), not 0; V-statistic: 0.
    u = analysis.mmd_rbf(x, x, h)
    assert float(u) == pytest.approx(float(-(2 / 50) * (1 - off)), rel=1e-10)
    assert abs(float(analysis.mmd_rbf(x, x, h, unbiased=False))) <= 16 * EPS


def test_mmd_unbiased_expectation_matches_gaussian_closed_form():
    """For X ~ N(μ1, s²I), Y ~ N(μ2, s²I) in R^n and the RBF kernel of width h:
    E k(X, X') = (h²/(h² + 2s²))^{n/2}, E k(X, Y) = (h²/(h² + 2s²))^{n/2} exp(−‖Δ‖²/(2(h² + 2s²))),
    so MMD² = 2 (h²/(h² + 2s²))^{n/2} (1 − exp(−‖Δ‖²/(2(h² + 2s²)))). The U-statistic is unbiased:
    the mean of R independent estimates lies within 4 standard errors (estimated from the R)."""
    n, s, h, R, m = 3, 1.0, 1.5, 30, 50
    g = _gen(2)
    for delta in (0.0, 0.8):
        mu2 = torch.zeros(n, dtype=torch.float64)
        mu2[0] = delta
        est = torch.stack(
            [
                analysis.mmd_rbf(
                    s * torch.randn(m, n, generator=g, dtype=torch.float64),
                    mu2 + s * torch.randn(m, n, generator=g, dtype=torch.float64),
                    h,
                )
                for _ in range(R)
            ]
        )
        c = (h * h / (h * h + 2 * s * s)) ** (n / 2)
        truth = 2 * c * (1 - math.exp(-(delta**2) / (2 * (h * h + 2 * s * s))))
        se = float(est.std()) / math.sqrt(R)
        assert abs(float(est.mean()) - truth) <= 4 * se, (float(est.mean()), truth, se)
    assert truth > 8 * se  # the test distinguishes the shifted case from 0


def test_mmd_median_bandwidth():
    x = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    # Pairwise distances 1, 3, 2: median 2.
    assert analysis.median_bandwidth(x) == 2.0
    y = torch.tensor([[7.0]], dtype=torch.float64)
    # Pooled distances 1, 3, 7, 2, 6, 4: the median of an even count is the mean of the middle two.
    assert analysis.median_bandwidth(x, y) == pytest.approx(3.5, rel=1e-15)
    assert float(analysis.mmd_rbf(x, x + 0.5, "median")) == float(
        analysis.mmd_rbf(x, x + 0.5, analysis.median_bandwidth(x, x + 0.5))
    )
    with pytest.raises(ValueError, match="bandwidth"):
        analysis.mmd_rbf(x, x, "silverman")
    with pytest.raises(ValueError, match="bandwidth"):
        analysis.mmd_rbf(x, x, -1.0)


# ---------------------------------------------------------------------------- sliced Wasserstein
def test_sliced_wasserstein_of_shifted_sets():
    n = 5
    x = torch.randn(200, n, generator=_gen(3), dtype=torch.float64)
    v = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0], dtype=torch.float64)
    theta = torch.randn(64, n, generator=_gen(4), dtype=torch.float64)
    u = theta / theta.norm(dim=1, keepdim=True)
    for p in (1.0, 2.0, 3.0):
        # A shift moves every sorted projection by ⟨θ, v⟩: W_p = |⟨θ, v⟩| exactly.
        got = analysis.sliced_wasserstein(x, x + v, p=p, projections=theta)
        expected = float((u @ v).abs().pow(p).mean() ** (1 / p))
        assert float(got) == pytest.approx(expected, rel=1e-12)
    # Uniform θ: E⟨θ, v⟩² = ‖v‖²/n, Var⟨θ, v⟩² = ‖v‖⁴ (3/(n(n+2)) − 1/n²); K projections, 5 SE.
    K = 4096
    sw2 = float(analysis.sliced_wasserstein(x, x + v, num_projections=K, generator=5)) ** 2
    v2 = float(v @ v)
    se = v2 * math.sqrt((3 / (n * (n + 2)) - 1 / n**2) / K)
    assert abs(sw2 - v2 / n) <= 5 * se


def test_sliced_wasserstein_unequal_sizes_exact():
    x = torch.randn(37, 1, generator=_gen(6), dtype=torch.float64)
    y = torch.randn(23, 1, generator=_gen(7), dtype=torch.float64) + 0.3
    e = torch.ones(1, 1, dtype=torch.float64)
    # In 1-D with θ = e_1, SW_1 is the 1-D W_1 (scipy's exact implementation).
    got = float(analysis.sliced_wasserstein(x, y, p=1, projections=e))
    assert got == pytest.approx(stats.wasserstein_distance(x[:, 0].numpy(), y[:, 0].numpy()), rel=1e-12)
    # The same empirical measure at two sizes is at distance 0.
    z = torch.randn(10, 3, generator=_gen(8), dtype=torch.float64)
    assert float(analysis.sliced_wasserstein(z, torch.cat([z, z.flip(0)]), generator=0)) <= 1e-14
    with pytest.raises(ValueError, match="p must be"):
        analysis.sliced_wasserstein(z, z, p=0.5)


# ---------------------------------------------------------------------------- ODE error, distance
def test_refine_schedule_keeps_every_sigma():
    s = torch.tensor([10.0, 1.0, 0.1, 0.0], dtype=torch.float64)
    f = analysis.refine_schedule(s, 4)
    assert f.shape == (13,) and torch.equal(f[::4], s)
    assert bool((f[1:] < f[:-1]).all())
    np.testing.assert_allclose(f[:5].numpy(), np.geomspace(10, 1, 5), rtol=1e-14)


def test_ode_reference_and_error_on_closed_forms():
    # Exact projection onto a linear subspace: dx/dσ = (I − P)x/σ, so
    # x(σ) = P x_N + (σ/σ_N)(I − P) x_N, and DDIM (Euler) is exact on it.
    K = tm.AffineSubspace.random(2, 6, seed=1)
    den = tm.ProjectionDenoiser(K)
    sig = tm.schedules.loglinear(5.0, 0.05, 4)
    x = 5.0 * torch.randn(8, 6, generator=_gen(9), dtype=torch.float64)
    P = K.basis.T @ K.basis
    exact = x @ P + 0.01 * (x - x @ P)
    ref = analysis.ode_reference(den, sig, x, refine=8)
    assert float(analysis.ode_error(ref, exact).max()) <= 1e-12 * float(x.norm(dim=1).max())
    assert float(analysis.ode_error(tm.ddim(den, sig, x), ref).max()) <= 1e-12 * float(x.norm(dim=1).max())
    # On a circle DDIM is first order: doubling N roughly halves the error against the reference.
    C = tm.Circle()
    den = tm.ideal_denoiser(C)
    x = 2.0 * torch.randn(32, 2, generator=_gen(10), dtype=torch.float64)
    errs = []
    for N in (8, 16):
        sig = tm.schedules.loglinear(2.0, 0.05, N)
        ref = analysis.ode_reference(den, sig, x, refine=16)
        errs.append(float(analysis.ode_error(tm.ddim(den, sig, x), ref).mean()))
    assert 1.5 < errs[0] / errs[1] < 2.7, errs
    rel = analysis.ode_error(x, 2 * x, relative=True)
    np.testing.assert_allclose(rel.numpy(), 0.5)
    with pytest.raises(ValueError, match="same shape"):
        analysis.ode_error(x, x[:3])


def test_mean_distance():
    K = tm.Sphere(2, radius=2.0)
    x = torch.tensor([[0.0, 0.0, 3.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]], dtype=torch.float64)
    assert float(analysis.mean_distance(x, K)) == pytest.approx((1 + 1 + 0) / 3, rel=1e-15)
    with pytest.raises(ValueError, match="ambient_dim"):
        analysis.mean_distance(torch.zeros(3, 2), K)
