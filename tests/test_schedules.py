"""σ schedules (THEORY §1, §3 Corollary 2, §5), checked against diffusers where it applies."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import toymanifold as tm
from toymanifold import schedules

diffusers = pytest.importorskip("diffusers")

EPS32 = torch.finfo(torch.float32).eps  # 2^-23
EPS64 = torch.finfo(torch.float64).eps


def _is_schedule(s, n_steps):
    assert isinstance(s, torch.Tensor) and s.dtype == torch.float64 and s.device.type == "cpu"
    assert s.shape == (n_steps + 1,)
    assert bool((s[1:] < s[:-1]).all()) and bool((s >= 0).all()) and bool(torch.isfinite(s).all())


# ----------------------------------------------------------------------------- continuous


@given(
    hi=st.floats(1e-2, 1e3),
    frac=st.floats(1e-4, 0.9),
    n=st.integers(1, 200),
    final_zero=st.booleans(),
    rho=st.floats(0.5, 10.0),
)
def test_loglinear_and_karras_are_schedules(hi, frac, n, final_zero, rho):
    lo = hi * frac
    if final_zero and n < 2:
        with pytest.raises(ValueError, match="n_steps"):
            schedules.loglinear(hi, lo, n, final_zero=True)
        return
    for s in (
        schedules.loglinear(hi, lo, n, final_zero=final_zero),
        schedules.karras(hi, lo, n, rho, final_zero=final_zero),
    ):
        _is_schedule(s, n)
        assert s[0].item() == hi
        assert (s[-2].item() == lo and s[-1].item() == 0.0) if final_zero else s[-1].item() == lo


@given(hi=st.floats(1e-2, 1e3), frac=st.floats(1e-4, 0.9), n=st.integers(2, 200))
def test_loglinear_has_constant_ratio(hi, frac, n):
    """THEORY §3, Corollary 2: σ_t = σ_0 ρ^t, i.e. DDIM with a projection is gradient
    descent with constant step β = 1 − 1/ρ. exp/log in float64: ratios agree to a few ε."""
    s = schedules.loglinear(hi, hi * frac, n)
    r = (s[:-1] / s[1:]).numpy()
    rho = (1 / frac) ** (1 / n)
    np.testing.assert_allclose(r, rho, rtol=64 * EPS64 * max(1.0, abs(math.log(frac))))


def test_karras_matches_k_diffusion_formula():
    """k-diffusion's get_sigmas_karras (ramp in float32 there), then append_zero."""
    n, hi, lo, rho = 10, 80.0, 0.002, 7.0
    ramp = torch.linspace(0, 1, n)
    ref = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    ref = torch.cat([ref, ref.new_zeros([1])])
    s = schedules.karras(hi, lo, n, final_zero=True)
    # the float32 ramp perturbs σ by ρ·ε32 relative per unit of σ^{1/ρ}
    torch.testing.assert_close(s.float(), ref, rtol=8 * rho * EPS32, atol=0)
    # ρ = 1 is linear spacing
    torch.testing.assert_close(
        schedules.karras(5.0, 1.0, 4, rho=1.0), torch.tensor([5.0, 4, 3, 2, 1], dtype=torch.float64)
    )


def test_loglinear_example():
    torch.testing.assert_close(schedules.loglinear(10.0, 0.1, 2), torch.tensor([10.0, 1.0, 0.1], dtype=torch.float64))
    s = schedules.loglinear(10.0, 0.1, 3, final_zero=True)
    torch.testing.assert_close(s, torch.tensor([10.0, 1.0, 0.1, 0.0], dtype=torch.float64))


@pytest.mark.parametrize("fn", [schedules.loglinear, schedules.karras])
def test_continuous_bad_input(fn):
    with pytest.raises(ValueError, match="sigma_min must be < sigma_max"):
        fn(1.0, 1.0, 5)
    with pytest.raises(ValueError, match="sigma_min must be > 0"):
        fn(1.0, 0.0, 5)
    with pytest.raises(ValueError, match="sigma_max must be finite"):
        fn(float("inf"), 0.1, 5)
    with pytest.raises(ValueError, match="n_steps must be >= 1"):
        fn(1.0, 0.1, 0)
    with pytest.raises(TypeError, match="n_steps must be an integer"):
        fn(1.0, 0.1, 5.0)
    with pytest.raises(TypeError, match="final_zero must be a bool"):
        fn(1.0, 0.1, 5, final_zero=1)
    with pytest.raises(ValueError, match="n_steps must be >= 2 with final_zero"):
        fn(1.0, 0.1, 1, final_zero=True)
    if fn is schedules.karras:
        with pytest.raises(ValueError, match="rho must be > 0"):
            fn(1.0, 0.1, 5, rho=0.0)


# ----------------------------------------------------------------------------- discrete time vs diffusers

_BETAS = [
    ("linear", 1e-4, 0.02),
    ("scaled_linear", 0.00085, 0.012),
    ("squaredcos_cap_v2", 1e-4, 0.02),
]


@pytest.mark.parametrize("beta_schedule,b0,b1", _BETAS)
def test_betas_and_alphas_cumprod_match_diffusers(beta_schedule, b0, b1):
    T = 1000
    sch = diffusers.DDIMScheduler(num_train_timesteps=T, beta_schedule=beta_schedule, beta_start=b0, beta_end=b1)
    b = schedules.betas(T, beta_schedule, b0, b1)
    a = schedules.alphas_cumprod(T, beta_schedule, b0, b1)
    assert b.dtype == a.dtype == torch.float64 and b.shape == a.shape == (T,)
    # diffusers rounds each β to float32 (linspace in float32; squared for scaled_linear):
    # a few ulps of float32 per entry
    torch.testing.assert_close(b, sch.betas.double(), rtol=4 * EPS32, atol=0)
    # its float32 cumulative product loses up to ~½ulp per factor: T · 2^-24 relative
    torch.testing.assert_close(a, sch.alphas_cumprod.double(), rtol=T * EPS32 / 2, atol=0)


def test_cosine_alias():
    assert torch.equal(schedules.betas(100, "cosine"), schedules.betas(100, "squaredcos_cap_v2"))
    assert schedules.betas(1000, "cosine").max().item() == 0.999  # the cap


def test_ddpm_sigmas_values():
    """THEORY §1: σ_t = √((1 − ᾱ_t)/ᾱ_t); linear betas give σ(0) ≈ 0.01, σ(999) ≈ 157."""
    s = schedules.ddpm_sigmas()
    a = schedules.alphas_cumprod()
    assert s.shape == (1000,) and s.dtype == torch.float64 and bool((s[1:] > s[:-1]).all())
    torch.testing.assert_close(s, ((1 - a) / a).sqrt(), rtol=0, atol=0)
    # σ(0) = √(β_0/(1 − β_0)) exactly
    assert s[0].item() == pytest.approx(math.sqrt(1e-4 / (1 - 1e-4)), rel=1e-14)
    assert 157.0 < s[-1].item() < 157.8
    torch.testing.assert_close(s, tm.images.sigmas_from_alphas_cumprod(a), rtol=1e-15, atol=0)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("n", [1, 3, 5, 7, 10, 20, 50, 100, 250, 999, 1000])
@pytest.mark.parametrize("offset", [0, 1])
def test_timesteps_match_diffusers(spacing, n, offset):
    sch = diffusers.DDIMScheduler(num_train_timesteps=1000, steps_offset=offset, timestep_spacing=spacing)
    sch.set_timesteps(n)
    ref = sch.timesteps.to(torch.int64)
    off = offset if spacing == "leading" else 0
    try:
        ours = schedules.timesteps(n, spacing=spacing, steps_offset=offset)
    except ValueError:
        # we refuse only where diffusers' own list is degenerate (out of range or repeated)
        assert ref.max().item() > 999 or ref.min().item() < 0 or len(ref) != n or not bool((ref[1:] < ref[:-1]).all())
        return
    assert torch.equal(ours, ref), (ours, ref)
    assert ours.min().item() >= off


def test_trailing_degenerate_n_is_refused():
    """np.arange with a float step gives N + 1 trailing timesteps (one of them −1) for some N."""
    sch = diffusers.DDIMScheduler(num_train_timesteps=1000, timestep_spacing="trailing")
    sch.set_timesteps(61)
    assert len(sch.timesteps) == 62 and sch.timesteps.min().item() == -1
    with pytest.raises(ValueError, match="degenerate"):
        schedules.timesteps(61, spacing="trailing")


@pytest.mark.parametrize(
    "spacing,n,offset,one",
    [("leading", 10, 0, True), ("leading", 20, 1, False), ("trailing", 10, 0, True), ("trailing", 25, 0, False)],
)
def test_discrete_sigmas_follow_diffusers_ddim_steps(spacing, n, offset, one):
    """σ at each timestep, then the σ of diffusers' final ᾱ (1 with set_alpha_to_one, else ᾱ_0);
    each step's previous σ equals σ(t − ⌊T/N⌋) as diffusers' DDIM step computes it."""
    sch = diffusers.DDIMScheduler(
        num_train_timesteps=1000, steps_offset=offset, timestep_spacing=spacing, set_alpha_to_one=one
    )
    sch.set_timesteps(n)
    s = schedules.discrete(n, spacing=spacing, steps_offset=offset, set_alpha_to_one=one)
    _is_schedule(s, n)
    abar = sch.alphas_cumprod.double()
    final = sch.final_alpha_cumprod.double()
    ours = 1 / (1 + s**2)  # ᾱ = 1/(1 + σ²) (THEORY §1)
    for k, t in enumerate(sch.timesteps.tolist()):
        prev = t - 1000 // n
        a_prev = abar[prev] if prev >= 0 else final
        # compared in ᾱ, where diffusers' float32 cumulative product is good to T·2^-24
        # relative (in σ the error is amplified by 1/(1 − ᾱ), up to 1e4 at t = 0)
        torch.testing.assert_close(ours[k], abar[t], rtol=1000 * EPS32 / 2, atol=0)
        torch.testing.assert_close(ours[k + 1], a_prev, rtol=1000 * EPS32 / 2, atol=0)
    if one:
        assert s[-1].item() == 0.0


def test_discrete_bad_input():
    with pytest.raises(ValueError, match="spacing must be one of"):
        schedules.discrete(10, spacing="uniform")
    with pytest.raises(ValueError, match="set_alpha_to_one=False"):
        schedules.discrete(10, spacing="linspace", set_alpha_to_one=False)
    with pytest.raises(ValueError, match="beta_schedule must be one of"):
        schedules.ddpm_sigmas(beta_schedule="sigmoid")
    with pytest.raises(ValueError, match="n_steps must be <="):
        schedules.timesteps(1001)
    with pytest.raises(ValueError, match="beta_start <= beta_end < 1"):
        schedules.betas(10, "linear", 0.5, 0.1)
    with pytest.raises(ValueError, match="num_train_timesteps must be >= 2"):
        schedules.betas(1)


# ----------------------------------------------------------------------------- the paper


# Reference timesteps of the paper's code for linear betas and σ_max = 40 (THEORY §5).
PAPER_TIMESTEPS = {
    5: [853, 652, 380, 116, 22, 0],
    10: [853, 765, 665, 549, 415, 271, 149, 73, 33, 14, 0],
}


def section5_sigma_end(n):
    """THEORY §5 step 1 written out independently: the DDIM grid ⌊linspace(T, 0, N + 1)⌋,
    the float32 table σ(t) = √(1/ᾱ_t − 1) of diffusers' float32 ᾱ, and the geometric
    mean of the grid's last two σ as exp of the mean of the logs, all in NumPy float32."""
    abar = diffusers.DDPMScheduler(num_train_timesteps=1000).alphas_cumprod.numpy()
    assert abar.dtype == np.float32
    sigma = np.sqrt(np.float32(1) / abar - np.float32(1))
    grid = np.floor(np.linspace(1000, 0, n + 1)).astype(np.int64)
    assert grid[n - 1] == 1000 // n and grid[n] == 0  # the statement σ(⌊T/N⌋) of THEORY §5
    return float(np.exp((np.log(sigma[grid[n - 1]]) + np.log(sigma[grid[n]])) / np.float32(2))), grid[n - 1]


# NumPy and torch may round float32 log/exp differently by an ulp: σ_end agrees to a few
# float32 ulps of log σ (|log σ| < 5), far below the ≥ 0.4 % between neighbouring σ(t).
SIGMA_END_RTOL = 8 * 5 * EPS32


def test_paper_reference_timesteps():
    for n, ref in PAPER_TIMESTEPS.items():
        assert schedules.paper_timesteps(n).tolist() == ref
        assert schedules.paper_timesteps(n, 40.0, diffusers.DDPMScheduler().alphas_cumprod).tolist() == ref


def test_paper_cifar10_n10_numbers():
    """THEORY §5: σ(100) ≈ 0.3423, σ(0) ≈ 0.0100, σ_end ≈ 0.058505 (float32, as the paper's code)."""
    s, gamma = schedules.paper(10, "cifar10")
    _is_schedule(s, 10)
    assert gamma == 2.0 and s[0].item() == 40.0
    assert s[9].item() == pytest.approx(0.058505, rel=1e-5)
    # the previous rule, σ(99) from ⌊linspace(999, 0, N + 1)⌋, is 0.5 % off
    table = schedules.ddpm_sigmas()
    assert math.sqrt(table[99].item() * table[0].item()) != pytest.approx(0.058505, rel=1e-3)
    assert s[10].item() == pytest.approx(0.0100005, rel=2e-4)  # σ(0), float64 of diffusers' float32 ᾱ_0
    # N log-linear sigmas from σ_max to σ_end: constant ratio over the first N entries
    r = (s[:9] / s[1:10]).numpy()
    np.testing.assert_allclose(r, (40.0 / s[9].item()) ** (1 / 9), rtol=1e-13)


def test_paper_sigma_end_uses_floor_T_over_N():
    """For every N in 2…100, σ_end = √(σ(⌊1000/N⌋) σ(0)), against the transcription above."""
    table = schedules.ddpm_sigmas()
    for n in range(2, 101):
        s, _ = schedules.paper(n, "cifar10")
        expected, k = section5_sigma_end(n)
        assert s[n - 1].item() == pytest.approx(expected, rel=SIGMA_END_RTOL), n
        # and not a neighbouring grid point (the old σ(⌊999/N⌋) where it differs)
        for other in {k - 1, k + 1}:
            assert s[n - 1].item() != pytest.approx(math.sqrt(table[other].item() * table[0].item()), rel=1e-3)


@pytest.mark.parametrize("n", [2, 3, 5, 10, 20, 50, 100, 500, 999])
def test_paper_grid_rule(n):
    s, _ = schedules.paper(n, "cifar10")
    _is_schedule(s, n)
    assert s[n - 1].item() == pytest.approx(section5_sigma_end(n)[0], rel=SIGMA_END_RTOL)


def test_paper_discrete_is_the_table_at_searchsorted_timesteps():
    """discrete=True: σ(t_k) at t_k = the smallest t with σ(t) ≥ σ_k of the continuous
    schedule (σ(t−1) < σ_k ≤ σ(t)), then σ(0); the table is float64 of diffusers' float32 ᾱ."""
    abar = diffusers.DDPMScheduler().alphas_cumprod.double()
    table = ((1 - abar) / abar).sqrt()
    for n in range(2, 72):  # from N = 72 on two σ share a timestep (tested below)
        cont, g = schedules.paper(n, "cifar10")
        disc, g2 = schedules.paper(n, "cifar10", discrete=True)
        _is_schedule(disc, n)
        t = schedules.paper_timesteps(n)
        assert g == g2 and t[-1].item() == 0 and disc[-1].item() == cont[-1].item() == table[0].item()
        assert torch.equal(disc, table[t])
        assert bool((table[t[:-1] - 1] < cont[:-1]).all()) and bool((cont[:-1] <= table[t[:-1]]).all())
    ref = schedules.paper(10, "cifar10", discrete=True)[0]
    assert torch.equal(ref, table[torch.tensor(PAPER_TIMESTEPS[10])])


def test_paper_timestep_rule_matches_the_alpha_bar_search():
    """The paper's code searches ᾱ: t = #{s : ᾱ_s ≥ 1/(1 + σ²)}, i.e. σ(t−1) ≤ σ < σ(t).
    The two rules differ only for σ equal to a table entry; no σ of the schedule is one."""
    abar32 = diffusers.DDPMScheduler().alphas_cumprod
    for sigma_max in (40.0, 80.0, 100.0, 120.0):
        for n in range(2, 72):
            sig = schedules.loglinear(sigma_max, schedules.paper(n, "cifar10")[0][n - 1].item(), n - 1)
            count = (abar32.double()[None, :] >= (1 / (1 + sig**2))[:, None]).sum(1)
            assert schedules.paper_timesteps(n, sigma_max)[:-1].tolist() == count.tolist(), (sigma_max, n)


def test_paper_repeated_timesteps_are_merged_with_a_warning():
    with pytest.warns(UserWarning, match="merged"):
        t = schedules.paper_timesteps(100)
    assert len(t) < 101 and bool((t[1:] < t[:-1]).all()) and t[-1].item() == 0
    with pytest.warns(UserWarning, match="merged"):
        s, _ = schedules.paper(100, "cifar10", discrete=True)
    assert len(s) == len(t)


def test_paper_timesteps_other_models():
    # σ_max above the table's largest σ is clipped to σ(T − 1)
    abar = schedules.alphas_cumprod(1000, "scaled_linear", 0.00085, 0.012)
    t = schedules.paper_timesteps(20, 40.0, abar)
    assert t[0].item() == 999 and len(t) == 21
    # one step: σ_max, then t = 0 (no σ_end needed)
    assert schedules.paper_timesteps(1).tolist() == [853, 0]


@pytest.mark.parametrize("n,gamma,sigma_max", [(5, 2.0, 40.0), (10, 2.0, 80.0), (20, 2.4, 100.0), (50, 2.8, 120.0)])
def test_paper_celeba_table(n, gamma, sigma_max):
    s, g = schedules.paper(n, "CelebA")
    _is_schedule(s, n)
    assert g == gamma and s[0].item() == sigma_max
    assert s[n - 1].item() == pytest.approx(section5_sigma_end(n)[0], rel=SIGMA_END_RTOL)
    d, g2 = schedules.paper(n, "CelebA", discrete=True)
    _is_schedule(d, n)
    t = schedules.paper_timesteps(n, sigma_max)
    assert g2 == gamma and torch.equal(d, schedules.paper(n, "cifar10", discrete=True)[0]) == (sigma_max == 40.0)
    assert d[0].item() >= sigma_max and len(t) == n + 1


def test_paper_bad_input():
    with pytest.raises(ValueError, match=r"n_steps must be one of \[5, 10, 20, 50\]"):
        schedules.paper(7, "celeba")
    with pytest.raises(ValueError, match="dataset must be"):
        schedules.paper(10, "imagenet")
    with pytest.raises(ValueError, match="n_steps must be >= 2"):
        schedules.paper(1, "cifar10")
    with pytest.raises(ValueError, match="n_steps must be < 1000"):
        schedules.paper(1000, "cifar10")
    with pytest.raises(TypeError, match="discrete must be a bool"):
        schedules.paper(10, "cifar10", discrete=1)
    with pytest.raises(ValueError, match="n_steps must be < num_train_timesteps"):
        schedules.paper_timesteps(1000)
    with pytest.raises(ValueError, match="sigma_max must be > 0"):
        schedules.paper_timesteps(10, -1.0)
    with pytest.raises(ValueError, match="sigma_max must exceed"):
        schedules.paper_timesteps(10, 0.05)
    with pytest.raises(ValueError, match="alphas_cumprod must be strictly decreasing"):
        schedules.paper_timesteps(10, 40.0, [0.9, 0.95, 0.5])
    with pytest.raises(ValueError, match="ᾱ_0 = 1"):
        schedules.paper_timesteps(1, 40.0, [1.0, 0.5, 0.1])
