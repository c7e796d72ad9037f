"""The σ-space sampling loop and its peers (THEORY §3, §5).

Reference implementations in this file are transcriptions of the formulas, written
independently of ``toymanifold/samplers.py`` (no shared helpers), so that a bug in
the loop cannot hide in the check.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import toymanifold as tm
from toymanifold import samplers as S
from toymanifold import schedules

F64_EPS = torch.finfo(torch.float64).eps


# ----------------------------------------------------------------------------- helpers


class Counting:
    """Wraps a denoiser; records every σ it is called at and refuses σ <= 0."""

    def __init__(self, fn):
        self.fn, self.sigmas = fn, []

    def __call__(self, x, sigma):
        assert isinstance(sigma, float), type(sigma)
        assert sigma > 0, "model called at sigma <= 0"
        self.sigmas.append(sigma)
        return self.fn(x, sigma)


def nonlinear_denoiser(dtype=torch.float64, n=3, seed=0):
    """A smooth, x- and σ-dependent ε model (fixed random weights), shape-agnostic in the batch."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n, n, generator=g, dtype=torch.float64)
    b = torch.randn(n, generator=g, dtype=torch.float64)

    def den(x, sigma):
        flat = x.reshape(x.shape[0], -1)
        y = torch.tanh(flat @ W.to(x.dtype) / (1.0 + sigma) + b.to(x.dtype)) + flat / math.sqrt(1.0 + sigma * sigma)
        return y.reshape(x.shape)

    return den


def ref_sample(den, sigmas, x, gamma, mu, noise):
    """THEORY §5 transcribed literally (float64 Python scalars, explicit formula)."""
    s = [float(v) for v in sigmas]
    eps_prev = None
    for i in range(len(s) - 1):
        st_, sp_ = s[i], s[i + 1]
        eps = den(x, st_)
        eps_bar = eps if i == 0 else gamma * eps + (1 - gamma) * eps_prev
        sig_p = (sp_ / st_**mu) ** (1 / (1 - mu))
        zeta = math.sqrt(max(sp_**2 - sig_p**2, 0.0))
        x = x - (st_ - sig_p) * eps_bar
        if zeta > 0:
            x = x + zeta * noise()
        eps_prev = eps
    return x


def kdiff_heun(model_denoised, x, sigmas):
    """k-diffusion's ``sample_heun`` (s_churn = 0) in its own denoised-output form."""
    s = [float(v) for v in sigmas]
    for i in range(len(s) - 1):
        denoised = model_denoised(x, s[i])
        d = (x - denoised) / s[i]
        dt = s[i + 1] - s[i]
        if s[i + 1] == 0:
            x = x + d * dt
        else:
            x_2 = x + d * dt
            denoised_2 = model_denoised(x_2, s[i + 1])
            d_2 = (x_2 - denoised_2) / s[i + 1]
            x = x + (d + d_2) / 2 * dt
    return x


def kdiff_dpmpp_2m(model_denoised, x, sigmas):
    """k-diffusion's ``sample_dpmpp_2m`` in its own form (t = −log σ, sigma_fn, expm1)."""
    s = torch.as_tensor(sigmas, dtype=torch.float64)

    def t_fn(v):
        return v.log().neg()

    def sigma_fn(t):
        return t.neg().exp()

    old = None
    for i in range(len(s) - 1):
        denoised = model_denoised(x, float(s[i]))
        t, t_next = t_fn(s[i]), t_fn(s[i + 1])
        h = t_next - t
        if old is None or s[i + 1] == 0:
            x = (sigma_fn(t_next) / sigma_fn(t)) * x - (-h).expm1() * denoised
        else:
            h_last = t - t_fn(s[i - 1])
            r = h_last / h
            denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old
            x = (sigma_fn(t_next) / sigma_fn(t)) * x - (-h).expm1() * denoised_d
        old = denoised
    return x


@st.composite
def schedule_st(draw, max_steps=12):
    n = draw(st.integers(1, max_steps))
    hi = draw(st.floats(0.5, 80.0))
    lo = hi * draw(st.floats(1e-3, 0.5))
    final_zero = draw(st.booleans()) and n >= 2
    if draw(st.booleans()):
        return schedules.loglinear(hi, lo, n, final_zero=final_zero)
    return schedules.karras(hi, lo, n, rho=draw(st.floats(1.0, 9.0)), final_zero=final_zero)


def start(sigmas, B=5, n=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return float(sigmas[0]) * torch.randn(B, n, generator=g, dtype=dtype)


# ----------------------------------------------------------------------------- THEORY §5 update


@given(sig=schedule_st(), seed=st.integers(0, 2**16))
def test_ge_gamma_one_is_ddim_bit_for_bit(sig, seed):
    den = nonlinear_denoiser()
    x = start(sig, seed=seed)
    a = tm.ddim(den, sig, x)
    b = tm.gradient_estimation(den, sig, x, gamma=1.0)
    c = tm.sample(den, sig, x, gamma=1, mu=0)
    assert torch.equal(a, b) and torch.equal(a, c)
    ta = tm.ddim(den, sig, x, return_trajectory=True)
    tb = tm.gradient_estimation(den, sig, x, gamma=1.0, return_trajectory=True)
    for f in ("xs", "eps", "eps_bar", "x0_hats"):
        assert torch.equal(getattr(ta, f), getattr(tb, f))


@given(
    sig=schedule_st(),
    gamma=st.floats(0.25, 3.0),
    mu=st.sampled_from([0.0, 0.25, 0.5, 0.8]),
    seed=st.integers(0, 2**16),
)
def test_sample_matches_theory_section5_transcription(sig, gamma, mu, seed):
    den = nonlinear_denoiser()
    x = start(sig, seed=seed)
    out = tm.sample(den, sig, x, gamma=gamma, mu=mu, generator=seed)
    g = torch.Generator().manual_seed(seed)
    ref = ref_sample(den, sig, x, gamma, mu, lambda: torch.randn(x.shape, generator=g, dtype=x.dtype))
    # lerp vs the explicit γε + (1−γ)ε_prev, and a fused add: a few roundings per step,
    # each at most ε·(|x| + |(σ−σ')ε̄|) ≲ ε·C·σ_max; over ≤ 12 steps, 1e3 ε·scale is ample
    # and still 12 orders below any formula error.
    scale = float(sig[0]) * (1 + gamma) * 4
    torch.testing.assert_close(out, ref, rtol=0, atol=1e3 * F64_EPS * scale)


def test_first_step_has_no_extrapolation_and_eps_bar_definition():
    sig = schedules.loglinear(20.0, 0.1, 6)
    den = nonlinear_denoiser()
    tr = tm.gradient_estimation(den, sig, start(sig), gamma=2.0, return_trajectory=True)
    assert torch.equal(tr.eps_bar[0], tr.eps[0])
    for i in range(1, 6):
        torch.testing.assert_close(tr.eps_bar[i], 2 * tr.eps[i] - tr.eps[i - 1], rtol=0, atol=1e-13)


def test_final_step_to_zero_returns_x_minus_sigma1_epsbar1():
    sig = schedules.loglinear(20.0, 0.1, 6, final_zero=True)
    den = Counting(nonlinear_denoiser())
    tr = tm.gradient_estimation(den, sig, start(sig), gamma=2.0, return_trajectory=True)
    s1 = float(sig[-2])
    expected = tr.xs[-2] - s1 * tr.eps_bar[-1]
    torch.testing.assert_close(tr.xs[-1], expected, rtol=0, atol=4 * F64_EPS * tr.xs[-2].abs().max().item())
    assert min(den.sigmas) == s1 and len(den.sigmas) == 6


@pytest.mark.parametrize("final_zero", [False, True])
@pytest.mark.parametrize(
    "sampler,expected",
    [
        (tm.ddim, lambda n, z: n),
        (tm.ddpm, lambda n, z: n),
        (tm.gradient_estimation, lambda n, z: n),
        (tm.dpmpp_2m, lambda n, z: n),
        (tm.heun, lambda n, z: 2 * n - 1 if z else 2 * n),
    ],
)
def test_model_evaluation_count(sampler, expected, final_zero):
    n = 7
    sig = schedules.loglinear(10.0, 0.05, n, final_zero=final_zero)
    den = Counting(nonlinear_denoiser())
    tr = sampler(den, sig, start(sig), generator=0, return_trajectory=True)
    assert len(den.sigmas) == tr.nfe == expected(n, final_zero)
    assert S.nfe(sampler, sig) == expected(n, final_zero)
    assert S.nfe(sampler.__name__, n, final_zero=final_zero) == expected(n, final_zero)
    # the model is only ever called at schedule values (Heun's corrector at σ_{t−1})
    assert set(den.sigmas) <= set(sig.tolist()) - {0.0}


def test_nfe_helper():
    assert S.nfe("heun", 10, final_zero=True) == 19
    assert S.nfe("heun", 10, final_zero=False) == 20
    assert S.nfe("ge", 10) == S.nfe("ddim", 10) == S.nfe("dpmpp_2m", 10) == 10
    with pytest.raises(ValueError, match="final_zero"):
        S.nfe("heun", 10)
    with pytest.raises(ValueError, match="sampler"):
        S.nfe("euler_ancestral", 10)


# ----------------------------------------------------------------------------- THEORY §3


def _manifolds():
    return [
        tm.Sphere(4, radius=1.5),
        tm.Embedded(tm.Circle(radius=2.0), 30, seed=3),
        tm.AffineSubspace.random(3, 20, seed=1),
        tm.Embedded(tm.Sphere(2), 64, seed=0),
    ]


@given(
    k=st.integers(0, 3),
    n_steps=st.integers(2, 60),
    hi=st.floats(1.0, 80.0),
    ratio=st.floats(1e-2, 0.3),
    karras=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_ddim_with_projection_keeps_ratio_and_nearest_point(k, n_steps, hi, ratio, karras, seed):
    """THEORY §3, Lemma 1 with η = 0: d_{t−1} = (1 − β_t) d_t, so r_t is constant and
    proj_K(x_t) does not move.

    Start x_N = σ_N ξ (the sampler's start; r_N ≈ 1 by Corollary 3, but a start can fall
    next to K: r_N ≈ 0.003 happens). Arithmetic: each step x_{t−1} = x_t − (σ_t − σ_{t−1}) ε_t
    rounds to within ~2ε‖x‖, and computing d = dist_K(x) cancels to within a few ε(‖x‖ + ‖p‖);
    these absolute errors do not shrink with d_t. So |r_t − r_N| ≤ 4ε(N + 2)(‖x‖ + ‖p‖)/(√n σ_t)
    plus the relative rounding 4(N + 1)ε of the ratio itself: tight where r_N ≈ 1 (≈ 1e-14),
    looser for a start next to K, as it must be."""
    m = _manifolds()[k]
    n = m.ambient_dim
    sig = (schedules.karras if karras else schedules.loglinear)(hi, hi * ratio, n_steps)
    g = torch.Generator().manual_seed(seed)
    x = hi * torch.randn(4, n, generator=g, dtype=torch.float64)
    tr = tm.ddim(tm.ProjectionDenoiser(m), sig, x, return_trajectory=True)
    flat = tr.xs.reshape(-1, n)
    p, d = m.project_with_distance(flat)
    r = (d.reshape(n_steps + 1, -1) / (math.sqrt(n) * sig[:, None])).numpy()
    eps = np.finfo(np.float64).eps
    size = (torch.linalg.vector_norm(flat, dim=1) + torch.linalg.vector_norm(p, dim=1)).reshape(n_steps + 1, -1)
    scale = size.max(0).values.numpy()[None, :] / (math.sqrt(n) * sig[:, None].numpy())
    tol = 4 * eps * (n_steps + 2) * scale + 4 * (n_steps + 1) * eps * np.abs(r[0])
    assert np.all(np.abs(r - r[0]) <= tol), (np.abs(r - r[0]) / tol).max()
    p = p.reshape(n_steps + 1, 4, n)
    torch.testing.assert_close(p, p[:1].expand_as(p), rtol=0, atol=1e-12 * max(1.0, p.abs().max().item()))
    # x0_hats of the exact projection are the nearest points (THEORY §2, η = 0)
    torch.testing.assert_close(tr.x0_hats, p[:-1], rtol=0, atol=1e-12 * hi)


def test_ddim_projection_final_zero_lands_on_manifold():
    """THEORY §3, Corollary 1 with η = 0: dist_K(x_0) = 0."""
    m = tm.Sphere(3)
    sig = schedules.loglinear(10.0, 0.05, 8, final_zero=True)
    x = start(sig, n=4, seed=2)
    out = tm.ddim(tm.ProjectionDenoiser(m), sig, x)
    assert m.distance(out).max().item() < 1e-13


@given(
    eta=st.floats(0.0, 0.9),
    mode=st.sampled_from(["random", "outward"]),
    n_steps=st.integers(2, 25),
    seed=st.integers(0, 2**16),
)
def test_lemma1_along_ddim_with_perturbed_projection(eta, mode, n_steps, seed):
    """THEORY §3, Lemma 1 on every DDIM step: |d_{t−1} − (1 − β_t) d_t| ≤ β_t e_t,
    with e_t read off the trajectory's x0_hats."""
    m = tm.Embedded(tm.Sphere(2), 16, seed=seed % 7)
    den = tm.PerturbedProjectionDenoiser(m, eta, mode=mode, seed=seed)
    sig = schedules.loglinear(8.0, 0.02, n_steps)
    g = torch.Generator().manual_seed(seed)
    x = 8.0 * torch.randn(6, 16, generator=g, dtype=torch.float64)
    tr = tm.ddim(den, sig, x, return_trajectory=True)
    for t in range(n_steps):
        p, d = m.project_with_distance(tr.xs[t])
        d_next = m.distance(tr.xs[t + 1])
        beta = 1 - float(sig[t + 1]) / float(sig[t])
        e = torch.linalg.vector_norm(tr.x0_hats[t] - p, dim=1)
        slack = 1e-12 * (1 + d.max().item())
        assert bool(((d_next - (1 - beta) * d).abs() <= beta * e + slack).all())
        # the denoiser's relative error is exactly eta (its contract), so Lemma 1's corollary holds too
        np.testing.assert_allclose(e.numpy(), eta * d.numpy(), rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- DDPM, μ = ½


def test_ddpm_posterior_mean_and_variance_with_shared_noise():
    """THEORY §5 with μ = ½: σ' = σ_{t−1}²/σ_t, ζ² = σ_{t−1}²(σ_t² − σ_{t−1}²)/σ_t², the mean and
    variance of q(x_{t−1} | x_t, x0). With the oracle ε = (x − x0)/σ and x_N = x0 + σ_N ξ_N,
    x_t − x0 = σ_t g_t with g_t ~ N(0, I) at every t; checked step by step against the same
    noise drawn from an identically seeded generator."""
    sig = schedules.loglinear(30.0, 0.05, 12, final_zero=True)
    B, n = 4000, 8
    g0 = torch.Generator().manual_seed(11)
    x0 = torch.randn(B, n, generator=g0, dtype=torch.float64)
    g_start = torch.randn(B, n, generator=g0, dtype=torch.float64)
    x = x0 + float(sig[0]) * g_start

    def oracle(x, s):
        return (x - x0) / s

    steps = []
    tr = tm.ddpm(oracle, sig, x, generator=123, return_trajectory=True, callback=steps.append)
    g = torch.Generator().manual_seed(123)
    s = sig.tolist()
    g_t = g_start
    for t in range(len(s) - 1):
        hi, lo = s[t], s[t + 1]
        post_var = lo**2 * (hi**2 - lo**2) / hi**2
        post_mean = x0 + (lo**2 / hi**2) * (tr.xs[t] - x0)
        if lo > 0:
            xi = torch.randn(B, n, generator=g, dtype=torch.float64)
            expected = post_mean + math.sqrt(post_var) * xi
            g_t = ((lo**2 / hi) * g_t + math.sqrt(post_var) * xi) / lo
        else:
            expected = post_mean
        torch.testing.assert_close(tr.xs[t + 1], expected, rtol=0, atol=1e-12 * s[0])
        if lo > 0:
            # x_t − x0 = σ_t g_t exactly, and g_t is standard normal: (σ'/σ_t)² + ζ²/σ_{t−1}² = 1
            torch.testing.assert_close((tr.xs[t + 1] - x0) / lo, g_t, rtol=0, atol=1e-10)
            # sample variance of B·n standard normals: standard error √(2/(Bn)) ≈ 0.0079
            v = g_t.var().item()
            assert abs(v - 1) < 5 * math.sqrt(2 / (B * n)), v
    # the final step (σ_0 = 0) has no noise and returns x̂0 = x0 for the oracle
    torch.testing.assert_close(tr.xs[-1], x0, rtol=0, atol=1e-12 * s[0])
    assert [i.i for i in steps] == list(range(12))


def test_noise_reproducible_and_only_when_mu_positive():
    sig = schedules.loglinear(5.0, 0.1, 5)
    den = nonlinear_denoiser()
    x = start(sig)
    a = tm.ddpm(den, sig, x, generator=7)
    b = tm.ddpm(den, sig, x, generator=torch.Generator().manual_seed(7))
    c = tm.ddpm(den, sig, x, generator=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    tm.ddim(den, sig, x, generator=g)
    tm.gradient_estimation(den, sig, x, generator=g)
    assert torch.equal(g.get_state(), state), "deterministic samplers must not consume noise"
    tm.ddpm(den, sig, x, generator=g)
    assert not torch.equal(g.get_state(), state)


# ----------------------------------------------------------------------------- peers


@pytest.mark.parametrize("final_zero", [False, True])
def test_heun_and_dpmpp_2m_match_k_diffusion_transcriptions(final_zero):
    sig = schedules.karras(40.0, 0.02, 9, final_zero=final_zero)
    den = nonlinear_denoiser(n=4)
    x = start(sig, n=4, B=6)

    def denoised(x, s):
        return x - s * den(x, s)

    for ours, ref in ((tm.heun, kdiff_heun), (tm.dpmpp_2m, kdiff_dpmpp_2m)):
        tr = ours(den, sig, x, return_trajectory=True)
        torch.testing.assert_close(tr.xs[-1], ref(denoised, x, sig), rtol=1e-12, atol=1e-12)
        # eps_bar is the effective direction of every step
        h = (sig[:-1] - sig[1:]).reshape(-1, 1, 1)
        torch.testing.assert_close(tr.xs[1:], tr.xs[:-1] - h * tr.eps_bar, rtol=1e-12, atol=1e-12)


def test_euler_on_denoised_form_is_ddim():
    """k-diffusion's sample_euler, x + (σ_{i+1} − σ_i)(x − D)/σ_i, is DDIM in σ-space (THEORY §5)."""
    sig = schedules.karras(80.0, 0.002, 10, final_zero=True)
    den = nonlinear_denoiser()
    x = start(sig)
    xe = x
    for i in range(10):
        s = float(sig[i])
        d = (xe - (xe - s * den(xe, s))) / s
        xe = xe + d * (float(sig[i + 1]) - s)
    torch.testing.assert_close(tm.ddim(den, sig, x), xe, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- trajectory, callback, shapes


def test_trajectory_fields_and_callback():
    sig = schedules.loglinear(10.0, 0.1, 5, final_zero=True)
    den = nonlinear_denoiser(n=12)
    x = start(sig, n=12, B=3).reshape(3, 2, 2, 3).to(torch.float32)
    infos = []
    tr = tm.gradient_estimation(den, sig, x, callback=infos.append, return_trajectory=True)
    assert isinstance(tr, tm.Trajectory)
    assert tr.xs.shape == (6, 3, 2, 2, 3) and tr.eps.shape == tr.eps_bar.shape == tr.x0_hats.shape == (5, 3, 2, 2, 3)
    assert tr.xs.dtype == torch.float32 and tr.sigmas.dtype == torch.float64 and tr.sigmas.device.type == "cpu"
    assert torch.equal(tr.sigmas, sig) and tr.nfe == 5 and torch.equal(tr.xs[0], x)
    assert torch.equal(tr.final, tm.gradient_estimation(den, sig, x))
    for i, info in enumerate(infos):
        assert info.i == i and info["i"] == i and set(info.keys()) >= {"sigma", "x0_hat", "eps_bar"}
        assert info.sigma == float(sig[i]) and info.sigma_next == float(sig[i + 1])
        assert torch.equal(info.x, tr.xs[i]) and torch.equal(info.eps, tr.eps[i])
        assert torch.equal(info.eps_bar, tr.eps_bar[i]) and torch.equal(info.x0_hat, tr.x0_hats[i])
        torch.testing.assert_close(info.x0_hat, info.x - info.sigma * info.eps)
    with pytest.raises(KeyError):
        infos[0]["nope"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("sampler", [tm.ddim, tm.ddpm, tm.gradient_estimation, tm.heun, tm.dpmpp_2m])
def test_dtype_shape_preserved_and_input_untouched(sampler, dtype):
    sig = schedules.loglinear(10.0, 0.1, 4, final_zero=True)
    den = nonlinear_denoiser(n=6)
    x = start(sig, n=6, B=2).reshape(2, 1, 2, 3).to(dtype)
    x_copy = x.clone()
    out = sampler(den, sig, x, generator=0)
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert torch.equal(x, x_copy)


def test_accepts_sigma_lists_numpy_and_float32_schedules():
    den = nonlinear_denoiser()
    sig = schedules.loglinear(10.0, 0.1, 4)
    x = start(sig)
    ref = tm.ddim(den, sig, x)
    for s in (sig.tolist(), sig.numpy()):
        assert torch.equal(tm.ddim(den, s, x), ref)
    # a float32 schedule is read exactly (float32 ⊂ float64)
    assert torch.equal(tm.ddim(den, sig.float(), x), tm.ddim(den, sig.float().double(), x))
    out = tm.ddim(den, sig, x.numpy())
    assert isinstance(out, torch.Tensor) and torch.equal(out, ref)


def test_model_dtype_output_is_cast_back():
    sig = schedules.loglinear(10.0, 0.1, 3)
    x = start(sig, dtype=torch.float32)
    out = tm.ddim(lambda x, s: (x / (1 + s)).to(torch.float64), sig, x)
    assert out.dtype == torch.float32


def test_runs_without_autograd_graph():
    net = torch.nn.Linear(3, 3).double()
    sig = schedules.loglinear(10.0, 0.1, 3)
    out = tm.ddim(lambda x, s: net(x), sig, start(sig))
    assert not out.requires_grad


# ----------------------------------------------------------------------------- bad input


def _den(x, s):
    return x / (1 + s)


@pytest.mark.parametrize(
    "sigmas,match",
    [
        ([1.0, 2.0, 0.5], "strictly decreasing"),
        ([1.0, 1.0, 0.5], "strictly decreasing"),
        ([1.0, 0.5, -0.1], ">= 0"),
        ([1.0], "at least 2"),
        ([], "at least 2"),
        ([1.0, float("nan")], "finite"),
        ([float("inf"), 1.0], "finite"),
        ([[1.0, 0.5]], "1-D"),
    ],
)
@pytest.mark.parametrize("sampler", [tm.sample, tm.heun, tm.dpmpp_2m])
def test_bad_sigmas(sampler, sigmas, match):
    with pytest.raises(ValueError, match=f"sigmas.*{match}|{match}.*sigmas|sigmas must"):
        sampler(_den, sigmas, torch.ones(2, 3))


@pytest.mark.parametrize(
    "kw,err,match",
    [
        ({"mu": -0.1}, ValueError, "mu"),
        ({"mu": 1.0}, ValueError, "mu"),
        ({"gamma": 0.0}, ValueError, "gamma"),
        ({"gamma": -1.0}, ValueError, "gamma"),
        ({"gamma": float("nan")}, ValueError, "gamma"),
        ({"gamma": True}, TypeError, "gamma"),
        ({"mu": 0.5, "generator": "seed"}, TypeError, "generator"),
        ({"generator": 1.5}, TypeError, "generator"),
    ],
)
def test_bad_gamma_mu_generator(kw, err, match):
    with pytest.raises(err, match=match):
        tm.sample(_den, [2.0, 1.0], torch.ones(2, 3), **kw)


def test_bad_x():
    sig = [2.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="x must have shape"):
        tm.ddim(_den, sig, torch.ones(3))
    with pytest.raises(TypeError, match="x must be a floating"):
        tm.ddim(_den, sig, torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="x must be finite"):
        tm.ddim(_den, sig, torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="x must hold at least one"):
        tm.ddim(_den, sig, torch.ones(0, 3))
    # a denoiser that expects another batch: its output does not match x
    with pytest.raises(ValueError, match="x must have the batch"):
        tm.ddim(lambda x, s: torch.zeros(7, 3), sig, torch.ones(2, 3))
    # a Denoiser of fixed ambient dimension
    with pytest.raises(ValueError, match=r"x must flatten to \(B, 3\)"):
        tm.ddim(tm.ProjectionDenoiser(tm.Sphere(2)), sig, torch.ones(2, 4, dtype=torch.float64))
    # a module on another device ("meta" stands in for a GPU here)
    net = torch.nn.Linear(3, 3, device="meta")
    for sampler in (tm.ddim, tm.heun, tm.dpmpp_2m):
        with pytest.raises(ValueError, match="x is on device cpu"):
            sampler(_Module(net), sig, torch.ones(2, 3))
    with pytest.raises(TypeError, match=r"denoiser must return a torch\.Tensor"):
        tm.ddim(lambda x, s: 0.0, sig, torch.ones(2, 3))


class _Module(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, sigma):
        return self.net(x)


# ----------------------------------------------------------------------------- CUDA


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("sampler", [tm.ddim, tm.ddpm, tm.gradient_estimation, tm.heun, tm.dpmpp_2m])
def test_cpu_and_cuda_agree(sampler):
    sig = schedules.loglinear(40.0, 0.01, 20, final_zero=True)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.SiLU(), torch.nn.Linear(64, 8))
    x = start(sig, B=256, n=8, dtype=torch.float32)

    def den_on(module):
        return lambda x, s: module(x) / (1.0 + s) + x / math.sqrt(1.0 + s * s)

    cpu = sampler(den_on(net), sig, x, generator=5)
    net_cuda = net.to("cuda")
    gpu = sampler(den_on(net_cuda), sig, x.to("cuda"), generator=5)
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float32
    # float32 kernels differ between devices by a few ulps per op; ≤ 40 model calls
    scale = x.abs().max().item()
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5 * scale)
