"""Property tests of THEORY §2–4 on the exact toy geometry .

- Lemma 1 for every manifold family × every PerturbedProjectionDenoiser mode;
- Theorem 1: whenever its conditions hold, DDIM with an (η, ν)-approximate projection
  stays inside the envelope, stays ν-admissible and ends within the final bound;
- tightness of the envelope on an affine subspace ("outward" / "inward");
- concentration dist²/σ² ~ χ²_{n−d} on an affine subspace;
- Lemma 2 for the finite-set ideal denoiser;
- η̂(ν) of PerturbedProjectionDenoiser(eta=0.1) is 0.1, of the exact projection 0.

Floating-point allowances are derived from the arithmetic where they are used.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

import analysis
import toymanifold as tm
from toymanifold.denoisers.base import Denoiser
from toymanifold.testing import schedules as _public_schedules

EPS = float(np.finfo(np.float64).eps)
MODES = ("random", "outward", "inward")


def schedules(max_steps=12, final_zero=None):
    """The public strategy (toymanifold.testing) with this module's σ range [1e-2, 10.0]."""
    return _public_schedules(max_steps=max_steps, min_sigma=1e-2, max_sigma=10.0, final_zero=final_zero)


def _finite_set():
    g = torch.Generator().manual_seed(11)
    return tm.FiniteSet(torch.randn(25, 4, generator=g, dtype=torch.float64))


# One representative per family (and an embedded copy, the n ≫ d setting of THEORY §2).
FAMILIES = {
    "circle": lambda: tm.Circle(1.5),
    "sphere": lambda: tm.Sphere(2, radius=0.7),
    "torus": lambda: tm.Torus(2.0, 0.5),
    "affine": lambda: tm.AffineSubspace.random(2, 5, scale=1.3, seed=3),
    "spiral": lambda: tm.Spiral(),
    "swissroll": lambda: tm.SwissRoll(),
    "finite": _finite_set,
    "embedded": lambda: tm.Embedded(tm.Sphere(2), 16, seed=2),
}
_CACHE: dict = {}


def family(name):
    if name not in _CACHE:
        _CACHE[name] = FAMILIES[name]()
    return _CACHE[name]


def start_points(K, sigma_N, scale, seed, batch=4):
    """x_N = x0 + scale · σ_N ξ with x0 ~ p on K: r_N ≈ scale, varied by the draw."""
    g = torch.Generator().manual_seed(seed)
    x0 = K.sample(batch, g)
    return x0 + scale * sigma_N * torch.randn(batch, K.ambient_dim, generator=g, dtype=torch.float64)


# ---------------------------------------------------------------------------- Lemma 1
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(FAMILIES))
@settings(max_examples=6)
@given(
    sig=schedules(),
    eta=st.floats(0.0, 0.95),
    scale=st.floats(0.05, 3.0),
    seed=st.integers(0, 2**16),
)
def test_lemma1_every_family_and_mode(name, mode, sig, eta, scale, seed):
    K = family(name)
    den = tm.PerturbedProjectionDenoiser(K, eta, mode=mode, seed=seed)
    x = start_points(K, float(sig[0]), scale, seed)
    traj = tm.ddim(den, sig, x, return_trajectory=True)
    check = analysis.check_trajectory(traj, K, eta)
    # Lemma 1 with the measured e_t, and its η-form (the denoiser has e_t = η d_t exactly;
    # check_trajectory's slack is derived in its docstring).
    assert check.ok, check.violations[:5]
    # The denoiser meets its contract: e_t = η d_t (same rounding allowance, relative to d_t's scale).
    pos = check.dist[:-1] > 0
    assert torch.allclose(check.err[pos], eta * check.dist[:-1][pos], rtol=0, atol=float(check.slack.max()))


@settings(max_examples=20)
@given(sig=schedules(final_zero=False), eta=st.floats(0.0, 0.9), gamma=st.floats(1.0, 3.0), seed=st.integers(0, 99))
def test_lemma1_gradient_estimation(sig, eta, gamma, seed):
    # Lemma 1 holds for any first-order step with x̂ = x − σ ε̄ (here GE's extrapolated ε̄);
    # its e_t is then not bounded by η d_t, so only the measured-e_t form is checked.
    K = family("torus")
    den = tm.PerturbedProjectionDenoiser(K, eta, mode="random", seed=seed)
    traj = tm.gradient_estimation(
        den, sig, start_points(K, float(sig[0]), 1.0, seed), gamma=gamma, return_trajectory=True
    )
    assert analysis.check_trajectory(traj, K).ok


def test_check_trajectory_detects_violations_and_rejects_other_samplers():
    K = tm.Circle()
    sig = tm.schedules.loglinear(4.0, 0.1, 6)
    x = start_points(K, 4.0, 1.0, 0)
    den = tm.PerturbedProjectionDenoiser(K, 0.2, mode="outward")
    traj = tm.ddim(den, sig, x, return_trajectory=True)
    base = analysis.check_trajectory(traj, K, 0.2)
    assert base.ok
    # Hand check of one step: outward error gives d_{t−1} = (1 − β(1 − η)) d_t exactly.
    d = base.dist[:, 0]
    beta = 1 - sig[1] / sig[0]
    assert float(d[1]) == pytest.approx(float((1 - beta * 0.8) * d[0]), rel=1e-13)
    # Claiming a smaller η than the denoiser has violates the η-form (upper side for "outward").
    v = analysis.check_trajectory(traj, K, 0.1).violations
    assert v and {w.kind for w in v} == {"eta_upper"}
    # A tampered trajectory (iterate moved, step record kept consistent) breaks Lemma 1 itself.
    xs = traj.xs.clone()
    xs[3] = xs[3] * 1.5
    bad = tm.Trajectory(xs, traj.eps, traj.eps_bar, traj.x0_hats, traj.sigmas, traj.nfe)
    with pytest.raises(ValueError, match="traj is not a deterministic first-order trajectory"):
        analysis.check_trajectory(bad, K)
    # Lemma 1 holds for every consistent first-order step and every closed K, so only a wrong
    # oracle can break it: a circle whose reported distance is off by a constant is caught.

    class OffsetCircle(tm.Circle):
        def _project_with_distance(self, x):
            p, dist = super()._project_with_distance(x)
            return p, dist + 0.05

    v = analysis.check_trajectory(traj, OffsetCircle()).violations
    assert v and {w.kind for w in v} <= {"lower", "upper"}
    # DDPM adds noise: Lemma 1 does not apply and the check says so.
    ddpm = tm.ddpm(den, sig, x, generator=0, return_trajectory=True)
    with pytest.raises(ValueError, match="traj is not"):
        analysis.check_trajectory(ddpm, K)
    with pytest.raises(ValueError, match="eta"):
        analysis.check_trajectory(traj, K, 1.0)
    with pytest.raises(ValueError, match="ambient_dim"):
        analysis.check_trajectory(traj, tm.Sphere(2))


@pytest.mark.parametrize("name", ["embedded", "torus", "spiral", "finite"])
def test_lemma1_float32_trajectories(name):
    """Learned models run in float32: the float32 allowance (8 float32 ulps of the norms in
    each step) admits every DDIM trajectory and still catches an η understated by 3%."""
    K = family(name)
    sig = tm.schedules.loglinear(20.0, 0.01, 30)
    x = start_points(K, 20.0, 1.0, 5, batch=16).float()
    for mode in ("random", "outward", "inward"):
        traj = tm.ddim(tm.PerturbedProjectionDenoiser(K, 0.3, mode=mode), sig, x, return_trajectory=True)
        assert traj.xs.dtype == torch.float32
        assert analysis.check_trajectory(traj, K, 0.3).ok, mode
        if mode != "random":
            kinds = {v.kind for v in analysis.check_trajectory(traj, K, 0.29).violations}
            assert kinds == {"eta_upper" if mode == "outward" else "eta_lower"}, mode
    heun = tm.heun(tm.PerturbedProjectionDenoiser(K, 0.3), sig, x, return_trajectory=True)
    assert analysis.check_trajectory(heun, K).ok


# ---------------------------------------------------------------------------- Theorem 1
class AdmissibleOnly(Denoiser):
    """An (η, ν)-approximate projection that is *only* that: on ν-admissible pairs it is the
    perturbed projection (error η d_t), elsewhere it pushes away from K with error 6 d_t.

    Theorem 1 promises that DDIM never evaluates it at a non-admissible pair; ``bad`` counts
    the rows where it did (which would also wreck the envelope).
    """

    def __init__(self, inner, manifold, nu):
        self.inner, self.manifold, self.nu = inner, manifold, nu
        self.ambient_dim = manifold.ambient_dim
        self.bad = 0

    def _eps(self, x, sigma):
        p, d = self.manifold.project_with_distance(x)
        r = d / (math.sqrt(x.shape[1]) * sigma[:, 0])
        outside = (r < 1 / self.nu) | (r > self.nu)
        self.bad += int(outside.sum())
        eps = self.inner(x, sigma[:, 0])
        return torch.where(outside[:, None], -5.0 * (x - p) / sigma, eps)


@pytest.mark.parametrize("name", sorted(FAMILIES))
@settings(max_examples=12)
@given(
    sig=schedules(max_steps=15),
    frac=st.floats(0.0, 0.99),
    mode=st.sampled_from(MODES),
    scale=st.floats(0.3, 3.0),
    margin=st.floats(1e-6, 1.0),
    seed=st.integers(0, 2**16),
)
def test_theorem1_envelope(name, sig, frac, mode, scale, margin, seed):
    K = family(name)
    n = K.ambient_dim
    # η below the step condition η(ρ_s − 1) < 1 on every step with σ_{s−1} > 0.
    # (A single step straight to σ = 0 has no such step: only η < 1 is required.)
    pos = sig[1:] > 0
    eta = frac * 0.95
    if bool(pos.any()):
        rho_max = float((sig[:-1][pos] / sig[1:][pos]).max())
        eta = frac * min(0.95, 1.0 / (rho_max - 1.0))
    x = start_points(K, float(sig[0]), scale, seed)
    d_N = K.distance(x)
    assume(bool((d_N > 0).all()))
    r_N = d_N / (math.sqrt(n) * float(sig[0]))
    probe = analysis.theorem1_bounds(sig, eta, 1.0, r_N)
    last = -2 if probe.final_step_to_zero else -1
    # The smallest ν meeting the conditions for the whole batch, times (1 + margin): margin
    # ≥ 1e-6 keeps every r_t away from the admissibility boundary by far more than rounding.
    nu_min = float(torch.maximum(r_N * probe.U[last], 1 / (r_N * probe.L[last])).max())
    nu = max(1.0, nu_min) * (1 + margin)
    b = analysis.theorem1_bounds(sig, eta, nu, r_N, dist_N=d_N)
    assert bool(b.conditions_hold.all())

    den = AdmissibleOnly(tm.PerturbedProjectionDenoiser(K, eta, mode=mode, seed=seed), K, nu)
    traj = tm.ddim(den, sig, x, return_trajectory=True)
    assert den.bad == 0  # every evaluated (x_t, σ_t) was ν-admissible
    d = K.distance(traj.xs.reshape(-1, n)).reshape(len(sig), -1)

    # Slack. Each computed step is an exact DDIM step with x̂0 moved by the rounding of the
    # update and of the denoiser, δ_s ≤ c·u·(‖x_s‖ + ‖x_{s−1}‖ + σ_s‖ε_s‖ + ‖p_s‖ + ‖p_{s−1}‖)
    # (componentwise bounds carry to norms; the oracle's length-n dot products cost up to n
    # more ulps: c = 8 + n as in check_trajectory). Lemma 1 turns δ_s into an additive error
    # in d_{s−1}, and later steps multiply it by factors ≤ 1, so d_t is off by at most Σ δ_s
    # over the steps before t. The envelope itself is an N-fold product: 4(N+1) ulps relative.
    p = K.project(traj.xs.reshape(-1, n)).reshape(len(sig), -1, n)
    xn, pn = traj.xs.norm(dim=-1), p.norm(dim=-1)
    en = traj.eps.norm(dim=-1)
    delta = (8 + n) * EPS * (xn[:-1] + xn[1:] + sig[:-1, None] * en + pn[:-1] + pn[1:])
    slack = torch.cat([torch.zeros(1, d.shape[1], dtype=torch.float64), delta.cumsum(0)])
    slack = slack + 4 * len(sig) * EPS * b.upper
    assert bool((d <= b.upper + slack).all()), (d - b.upper - slack).max()
    assert bool((d >= b.lower - slack).all()), (b.lower - slack - d).max()
    assert bool((d[-1] <= b.final_bound + slack[-1]).all())
    # Ratio tracking r_N L_t ≤ r_t ≤ r_N U_t, i.e. ν-admissible at every σ_t > 0.
    spos = sig > 0
    r = d[spos] / (math.sqrt(n) * sig[spos, None])
    rs = slack[spos] / (math.sqrt(n) * sig[spos, None])
    assert bool((r >= 1 / nu - rs).all()) and bool((r <= nu + rs).all())


# ---------------------------------------------------------------------------- tightness
@settings(max_examples=30)
@given(
    sig=schedules(max_steps=20, final_zero=False),
    frac=st.floats(0.0, 1.0),
    d=st.integers(1, 4),
    extra=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_envelope_is_tight_on_affine_subspace(sig, frac, d, extra, seed):
    """On an affine subspace proj_K is affine, so "outward" lands exactly on the upper envelope
    and "inward" (when β(1 + η) ≤ 1, i.e. η(ρ − 1) ≤ 1) exactly on the lower one."""
    n = d + extra
    # A generator distinct from start_points' (same seed would put the noise in the span).
    g = torch.Generator().manual_seed(seed + 2**20)
    K = tm.AffineSubspace(
        torch.randn(d, n, generator=g, dtype=torch.float64), offset=torch.randn(n, generator=g, dtype=torch.float64)
    )
    rho_max = float((sig[:-1] / sig[1:]).max())
    eta = frac * min(0.99, 1.0 / (rho_max - 1.0))
    x = start_points(K, float(sig[0]), 1.0, seed)
    d_N = K.distance(x)
    r_N = d_N / (math.sqrt(n) * float(sig[0]))
    b = analysis.theorem1_bounds(sig, eta, 1e9, r_N, dist_N=d_N)
    for mode, bound in (("outward", b.upper), ("inward", b.lower)):
        traj = tm.ddim(tm.PerturbedProjectionDenoiser(K, eta, mode=mode), sig, x, return_trajectory=True)
        dist = K.distance(traj.xs.reshape(-1, n)).reshape(len(sig), -1)
        # When β(1 + η) = 1 "inward" lands exactly on K: a distance of 0 is computed from
        # coordinates of size ‖x‖, so it carries an absolute rounding error of a few ulps
        # of ‖x‖ per coordinate (√n of them) that no relative tolerance can absorb.
        scale = float(traj.xs.abs().max()) + float(K.offset.abs().max())
        atol = 32 * math.sqrt(n) * np.finfo(np.float64).eps * scale
        np.testing.assert_allclose(dist.numpy(), bound.numpy(), rtol=1e-10, atol=atol, err_msg=mode)


# ---------------------------------------------------------------------------- concentration
@pytest.mark.parametrize("d, n", [(1, 5), (3, 20), (2, 64)])
def test_concentration_affine_chi2(d, n):
    """THEORY §2: on an affine subspace dist_K(x0 + σε)² / σ² ~ χ²_{n−d} exactly (any σ, any data)."""
    K = tm.AffineSubspace.random(d, n, scale=2.0, seed=d)
    m = analysis.projection_error(tm.ProjectionDenoiser(K), K, [0.3, 3.0], 1500, generator=1234)
    z = (m.dist / m.sigma) ** 2
    assert stats.kstest(z.numpy(), "chi2", args=(n - d,)).pvalue > 1e-3
    # Power: the same data reject the neighbouring law χ²_{n−d+1} (its mean is larger by 1).
    assert stats.kstest(z.numpy(), "chi2", args=(n - d + 1,)).pvalue < 1e-3
    # And r = dist/(√n σ) = √(χ²_k / n), k = n − d, has mean √2 Γ((k+1)/2)/Γ(k/2)/√n and
    # variance (k − (√2 Γ((k+1)/2)/Γ(k/2))²)/n; the sample mean is within 5 standard errors.
    k = n - d
    mean_chi = math.sqrt(2) * math.exp(math.lgamma((k + 1) / 2) - math.lgamma(k / 2))
    se = math.sqrt((k - mean_chi**2) / n / m.r.numel())
    assert abs(float(m.r.mean()) - mean_chi / math.sqrt(n)) <= 5 * se


# ---------------------------------------------------------------------------- Lemma 2
@settings(max_examples=40)
@given(
    M=st.integers(2, 40),
    n=st.integers(1, 6),
    log_sigma=st.floats(-2.0, 0.5),
    spread=st.floats(0.1, 2.0),
    seed=st.integers(0, 2**16),
)
def test_lemma2_finite_set_certificate(M, n, log_sigma, spread, seed):
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(M, n, generator=g, dtype=torch.float64)
    K = tm.FiniteSet(pts)
    den = tm.ideal_denoiser(K)
    sigma = 10.0**log_sigma
    x = pts[torch.randint(M, (8,), generator=g)] + spread * torch.randn(8, n, generator=g, dtype=torch.float64)
    xhat = den.posterior_mean(x, sigma)
    D = ((x[:, None, :] - pts[None]) ** 2).sum(-1)  # (B, M) exact-form squared distances
    i1 = D.argmin(1)
    k1 = pts[i1]
    d1 = D.gather(1, i1[:, None])
    w = torch.exp(-(D - d1) / (2 * sigma**2))
    w.scatter_(1, i1[:, None], 0.0)
    bound = (w * (pts[None] - k1[:, None]).norm(dim=-1)).sum(1)
    # Rounding: the implementation's logits (⟨x̃,k̃⟩ − ½‖k̃‖²)/σ² are (n+2)-term dot products with
    # absolute error Δ ≤ (n+2)·u·(‖x̃‖ + ‖k̃‖)²/σ² (k̃, x̃ centred at the points' mean); each weight
    # ratio is then off by a factor ≤ exp(2Δ), and the weighted sum adds ≤ (M+2)·u·max‖k̃‖.
    c = pts.mean(0)
    kmax = float((pts - c).norm(dim=1).max())
    delta = (n + 2) * EPS * ((x - c).norm(dim=1) + kmax) ** 2 / sigma**2
    slack = bound * torch.expm1(2 * delta) + (M + 2) * EPS * (kmax + (x - c).norm(dim=1))
    err = (xhat - k1).norm(dim=1)
    assert bool((err <= bound + slack).all()), (err - bound - slack).max()


# ---------------------------------------------------------------------------- η̂(ν)
@pytest.mark.parametrize("name", ["circle", "sphere", "torus", "embedded", "affine", "finite"])
@pytest.mark.parametrize("mode", MODES)
def test_eta_hat_of_perturbed_projection_is_eta(name, mode):
    K = family(name)
    R = K.diameter_bound if math.isfinite(K.diameter_bound) else 10.0
    n = K.ambient_dim
    sigmas = [0.05, 0.2, 1.0]
    m = analysis.projection_error(
        tm.PerturbedProjectionDenoiser(K, 0.1, mode=mode, seed=3), K, sigmas, 400, generator=7
    )
    curve = analysis.eta_nu_curve(m, [1.5, 2.0, 4.0, 100.0])
    assert bool((curve.count > 0).all())
    # Per pair, |η − 0.1| is rounding only: the denoiser builds x̂0 = p + e with ‖e‖ = η d (its
    # random direction normalised to n ulps), ε = (x − x̂0)/σ, and x̂0 is recovered as
    # x − σε; each step costs a few ulps of ‖x‖ + ‖p‖ ≤ 2R + d (R is a bound on ‖K‖, and the
    # affine data live within a few R of c). So |η − 0.1| ≤ (8 + n)·u·(2 + 2·max(R, ‖x‖)/d).
    xnorm_bound = R + m.dist  # ‖x‖ ≤ ‖p‖ + d
    tol = (8 + n) * EPS * (2 + 2 * torch.maximum(xnorm_bound, torch.tensor(R)) / m.dist)
    assert bool(((m.eta - 0.1).abs() <= tol).all()), float(((m.eta - 0.1).abs() - tol).max())
    # The statement: η̂(ν) = 0.1 to 1e-12 at every ν.
    assert float((curve.eta_hat - 0.1).abs().max()) <= 1e-12


@pytest.mark.parametrize("name", ["circle", "torus", "embedded", "spiral", "finite"])
def test_eta_hat_of_exact_projection_is_zero(name):
    K = family(name)
    m = analysis.projection_error(tm.ProjectionDenoiser(K), K, [0.05, 0.5], 400, generator=1)
    curve = analysis.eta_nu_curve(m, [1.5, 3.0, 100.0])
    # x̂0 − p = σ·fl(fl(x − p)/σ) − (x − p), formed componentwise: each component is off by a
    # few ulps of |x_i − p_i| (the oracle's p is reused bit for bit when the denoiser and the
    # analysis call the same oracle), so η ≤ 8u — exactly 0 up to the ε round trip.
    assert float(m.eta.max()) <= 8 * EPS
    assert float(curve.eta_hat.max()) <= 8 * EPS
