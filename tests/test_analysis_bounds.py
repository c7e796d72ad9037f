"""Theorem 1's bounds, Corollaries 1–3 and suggest_schedule as formulas (THEORY §3).

The trajectory-level property tests (Lemma 1, Theorem 1, tightness) are in
test_analysis_theory.py; here the bounds are checked against the definitions.
"""

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import analysis
import toymanifold as tm
from toymanifold.testing import schedules as _public_schedules

EPS = float(np.finfo(np.float64).eps)


def schedules(max_steps=12, final_zero=None):
    """The public strategy (toymanifold.testing) with this module's σ range [1e-3, 50.0]."""
    return _public_schedules(max_steps=max_steps, min_sigma=1e-3, max_sigma=50.0, final_zero=final_zero)


# ---------------------------------------------------------------------------- theorem1_bounds
@given(sig=schedules(), eta=st.floats(0.0, 0.99), nu=st.floats(1.0, 5.0), r=st.floats(0.2, 5.0))
def test_theorem1_bounds_match_definitions(sig, eta, nu, r):
    b = analysis.theorem1_bounds(sig, eta, nu, r)
    s = sig.tolist()
    N = len(s) - 1
    # Reference values in exact rational arithmetic (floats are rationals), so the only
    # rounding is the implementation's: N products of factors each within a few ulps.
    F = [Fraction(v) for v in s]
    e = Fraction(eta)
    L, U, up, lo = [Fraction(1)], [Fraction(1)], [Fraction(1)], [Fraction(1)]
    for i in range(N):
        if F[i + 1] > 0:
            rho = F[i] / F[i + 1]
            L.append(L[-1] * (1 - e * (rho - 1)))
            U.append(U[-1] * (1 + e * (rho - 1)))
        beta = 1 - F[i + 1] / F[i]
        up.append(up[-1] * (1 - beta * (1 - e)))
        lo.append(lo[-1] * max(Fraction(0), 1 - beta * (1 + e)))
    zero = s[-1] == 0
    k = N if zero else N + 1
    tol = 8 * (N + 1) * EPS
    # L's factors 1 − a (a = η(ρ − 1) ≥ 0, three roundings) cancel when a ≈ 1: their error is
    # ε(2a + |1 − a|), condition number a/|1 − a| (650 happens). To first order a product's
    # error is Σ_i err_i Π_{j≠i} |f_j| plus one rounding per product.
    a = [e * (F[i] / F[i + 1] - 1) for i in range(N) if F[i + 1] > 0]
    for j in range(k):
        f = [1 - ai for ai in a[:j]]
        err = sum(
            EPS * (2 * ai + abs(fi)) * math.prod(abs(fj) for m, fj in enumerate(f) if m != i)
            for i, (ai, fi) in enumerate(zip(a[:j], f))
        )
        assert abs(float(b.L[j]) - float(L[j])) <= float(err) + 2 * j * EPS * abs(float(L[j])), j
    np.testing.assert_allclose(b.U[:k].numpy(), [float(v) for v in U[:k]], rtol=tol, atol=0)
    np.testing.assert_allclose(b.upper.numpy(), [float(v) for v in up], rtol=tol, atol=0)
    if bool(b.step_condition):
        # Each lower factor q − ηβ may itself cancel; its absolute error is a few ulps of
        # q + ηβ ≤ 1, so compare against the product of the upper factors' scale.
        np.testing.assert_allclose(b.lower.numpy(), [float(v) for v in lo], rtol=tol, atol=tol * (N + 1))
    if zero:
        assert math.isnan(float(b.L[-1])) and math.isnan(float(b.U[-1]))
        assert float(b.lower[-1]) == 0.0
        # Corollary 1: the last factor is 1 − 1·(1 − η) = η.
        assert float(b.upper[-1]) == pytest.approx(eta * float(b.upper[-2]), rel=tol, abs=0)
    # THEORY §3: the envelope √n σ_t r_N U_t = dist_N (σ_t/σ_N) U_t equals its product form.
    for i in range(k):
        assert F[i] / F[0] * U[i] == up[i]
        if bool(b.step_condition):
            assert F[i] / F[0] * L[i] == lo[i]
    # Conditions, from the definitions.
    last = -2 if zero else -1
    expect = (
        all(eta * (s[i] / s[i + 1] - 1) < 1 for i in range(N) if s[i + 1] > 0)
        and 1 / nu <= r <= nu
        and r * float(b.L[last]) >= 1 / nu
        and r * float(b.U[last]) <= nu
    )
    assert bool(b.conditions_hold) == expect
    assert float(b.final_bound) == float(b.upper[-1])
    json.dumps(b.to_dict(), allow_nan=False)


def test_theorem1_bounds_hand_example():
    b = analysis.theorem1_bounds([8.0, 4.0, 2.0, 1.0], eta=0.1, nu=1.4, r_N=1.0, ambient_dim=16)
    # ρ = 2 at every step: U_0 = 1.1³ = 1.331, L_0 = 0.9³ = 0.729 ≥ 1/1.4 = 0.714…
    assert float(b.U[-1]) == pytest.approx(1.331, rel=1e-15)
    assert float(b.L[-1]) == pytest.approx(0.729, rel=1e-15)
    assert bool(b.conditions_hold)
    # dist_N = √16 · 8 · 1 = 32, final bound 32 · 0.55³.
    assert float(b.dist_N) == 32.0
    assert float(b.final_bound) == pytest.approx(32 * 0.55**3, rel=1e-15)
    assert float(b.upper[-1]) == pytest.approx(4 * 1.0 * 1.0 * 1.331, rel=1e-15)  # √n σ_0 r_N U_0
    assert not bool(analysis.theorem1_bounds([8.0, 4.0, 2.0, 1.0], 0.1, 1.3, 1.0).conditions_hold)  # 1.331 > 1.3


def test_theorem1_bounds_batch_of_starts():
    r = torch.tensor([0.5, 1.0, 2.5])
    b = analysis.theorem1_bounds([4.0, 2.0, 1.0], 0.2, 2.0, r, dist_N=torch.tensor([1.0, 2.0, 3.0]))
    assert b.upper.shape == (3, 3) and b.conditions_hold.tolist() == [False, True, False]
    np.testing.assert_allclose(b.upper[:, 1].numpy(), [2.0, 2.0 * 0.6, 2.0 * 0.6 * 0.6])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sigmas": [1.0, 2.0]}, "strictly decreasing"),
        ({"sigmas": [2.0, 0.0, 0.0]}, "sigmas"),
        ({"sigmas": [[2.0, 1.0]]}, "1-D"),
        ({"sigmas": [2.0, float("nan")]}, "finite"),
        ({"eta": 1.0}, "eta"),
        ({"eta": -0.1}, "eta"),
        ({"nu": 0.5}, "nu"),
        ({"r_N": 0.0}, "r_N"),
        ({"r_N": [[1.0]]}, "r_N"),
    ],
)
def test_theorem1_bounds_validation(kwargs, match):
    args = {"sigmas": [2.0, 1.0], "eta": 0.1, "nu": 2.0, "r_N": 1.0} | kwargs
    with pytest.raises(ValueError, match=match):
        analysis.theorem1_bounds(**args)


def test_theorem1_bounds_dist_and_dim_exclusive():
    with pytest.raises(ValueError, match="dist_N and ambient_dim"):
        analysis.theorem1_bounds([2.0, 1.0], 0.1, 2.0, 1.0, dist_N=1.0, ambient_dim=3)
    with pytest.raises(ValueError, match="dist_N"):
        analysis.theorem1_bounds([2.0, 1.0], 0.1, 2.0, [1.0, 1.0], dist_N=[1.0, 2.0, 3.0])


# ---------------------------------------------------------------------------- corollaries
def test_corollary1():
    assert analysis.corollary1_bound(0.25, [4.0, 2.0]).tolist() == [1.0, 0.5]
    with pytest.raises(ValueError, match="dist_1"):
        analysis.corollary1_bound(0.1, [-1.0])
    with pytest.raises(ValueError, match="eta"):
        analysis.corollary1_bound(1.5, 1.0)


@given(
    eta=st.floats(0.0, 0.9),
    N=st.integers(1, 200),
    log_range=st.floats(0.01, 8.0),
    r=st.floats(0.5, 2.0),
    nu=st.floats(1.0, 10.0),
)
def test_corollary2_bernoulli_and_agreement_with_theorem1(eta, N, log_range, r, nu):
    smin = 0.01
    smax = smin * math.exp(log_range)
    g = analysis.corollary2_loglinear(eta, nu, N, smax, smin, r_N=r)
    # Bernoulli: (1 + η(ρ−1))^N ≥ (σ_N/σ_0)^η, i.e. r_N U0 ≥ nu_floor (up to rounding of the powers).
    assert r * g.U0 >= g.nu_floor * (1 - 4 * N * EPS)
    # The same numbers from Theorem 1 on the explicit schedule σ_0 ρ^t.
    sig = smin * torch.tensor(g.rho, dtype=torch.float64) ** torch.arange(N, -1, -1, dtype=torch.float64)
    assume(bool((sig[1:] < sig[:-1]).all()))
    b = analysis.theorem1_bounds(sig, eta, nu, r)
    tol = 16 * (N + 1) * EPS
    assert g.U0 == pytest.approx(float(b.U[-1]), rel=tol)
    if g.L0 > 0 and b.step_condition:
        assert g.L0 == pytest.approx(float(b.L[-1]), rel=tol * max(1.0, 1 / g.L0))
    assert g.final_ratio == pytest.approx(float(b.final_bound), rel=tol)
    # Final bound = √n σ_0 r_N U0 / (√n σ_N r_N), the rate form of Corollary 2.
    assert g.final_ratio == pytest.approx(g.U0 * smin / float(sig[0]), rel=tol)
    # nu_required is the threshold of tracking (away from rounding at the boundary).
    if math.isfinite(g.nu_required):
        assert analysis.corollary2_loglinear(eta, g.nu_required * (1 + 1e-9), N, smax, smin, r).tracking
        if g.nu_required > 1 + 1e-9:
            assert not analysis.corollary2_loglinear(eta, g.nu_required * (1 - 1e-9), N, smax, smin, r).tracking


def test_corollary2_validation():
    with pytest.raises(ValueError, match="sigma_max"):
        analysis.corollary2_loglinear(0.1, 2.0, 5, 1.0, 2.0)
    with pytest.raises(ValueError, match="n_steps"):
        analysis.corollary2_loglinear(0.1, 2.0, 0, 2.0, 1.0)


def test_corollary3_on_embedded_sphere():
    K = tm.Embedded(tm.Sphere(2, radius=1.5), 32, seed=4)
    g = torch.Generator().manual_seed(0)
    xi = torch.randn(500, 32, generator=g, dtype=torch.float64)
    for sN in (0.05, 0.5, 5.0):
        d = K.distance(sN * xi)
        b = analysis.corollary3_initial_distance(sN, xi.norm(dim=1), K.diameter_bound, ambient_dim=32)
        # dist_K is computed to a few ulps of ‖x‖: allow 8 ulps of σ‖ξ‖ + R.
        slack = 8 * EPS * (sN * xi.norm(dim=1) + 1.5)
        assert bool((d >= b.dist_lower - slack).all()) and bool((d <= b.dist_upper + slack).all())
        np.testing.assert_allclose(b.r_upper.numpy(), (b.dist_upper / (math.sqrt(32) * sN)).numpy())
    # r_N → 1 once σ_N ≫ R/√n (the bounds squeeze around ‖ξ‖/√n).
    b = analysis.corollary3_initial_distance(1e3, math.sqrt(32), 1.5, ambient_dim=32)
    assert float(b.r_lower) == pytest.approx(1.0, abs=1e-3) and float(b.r_upper) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match="radius"):
        analysis.corollary3_initial_distance(1.0, 1.0, math.inf)


# ---------------------------------------------------------------------------- suggest_schedule
@given(eta=st.floats(1e-3, 0.9), nu=st.floats(1.01, 10.0), N=st.integers(1, 60), r=st.floats(0.0, 1.0))
def test_suggest_schedule_is_widest_and_guaranteed(eta, nu, N, r):
    r_N = nu**r * (1 / nu) ** (1 - r)  # anywhere in [1/ν, ν]
    r_N = min(max(r_N, 1 / nu), nu)
    a_up = (nu / r_N) ** (1 / N) - 1
    a_lo = 1 - (nu * r_N) ** (-1 / N)
    assume(min(a_up, a_lo) > 1e-6)  # room for a step above rounding
    s = analysis.suggest_schedule(eta, nu, N, 0.01, r_N=r_N)
    assume(s.sigma_max < 1e300)
    assert s.sigmas.shape == (N + 1,) and float(s.sigmas[-1]) == pytest.approx(0.01, rel=1e-15)
    b = analysis.theorem1_bounds(s.sigmas, eta, nu, r_N)
    assert bool(b.conditions_hold)
    # Widest: a schedule with a ratio larger by a relative 1e-7 violates a condition.
    wider = 0.01 * torch.tensor(1 + (s.rho - 1) * (1 + 1e-7), dtype=torch.float64) ** torch.arange(
        N, -1, -1, dtype=torch.float64
    )
    assert not bool(analysis.theorem1_bounds(wider, eta, nu, r_N).conditions_hold)
    # The binding condition is active (to the rounding of N-fold products).
    tol = 1e-9
    if s.binding == "upper":
        assert r_N * s.U0 == pytest.approx(nu, rel=tol)
    else:
        assert r_N * s.L0 == pytest.approx(1 / nu, rel=tol)
    # Guaranteed final distance: dist_N ∏(1 − β(1 − η)) = √n σ_min r_N U0 ≤ √n σ_min ν.
    n = 7
    assert s.final_distance(n) == pytest.approx(math.sqrt(n) * 0.01 * r_N * float(b.U[-1]), rel=1e-12)
    assert s.final_distance(n) == pytest.approx(math.sqrt(n) * float(s.sigmas[0]) * r_N * s.final_ratio, rel=1e-9)
    assert s.final_distance(n) <= math.sqrt(n) * 0.01 * nu * (1 + 1e-12)
    json.dumps(s.to_dict(), allow_nan=False)


def test_suggest_schedule_example_and_validation():
    s = analysis.suggest_schedule(0.1, 2.0, 10, 0.01)
    # a* = min(2^{1/10} − 1, 1 − 2^{−1/10}) = 1 − 2^{−0.1}; ρ = 1 + a*/η.
    a = 1 - 2**-0.1
    assert s.binding == "lower" and s.rho == pytest.approx(1 + a / 0.1, rel=1e-12)
    assert s.sigma_max == pytest.approx(0.01 * (1 + a / 0.1) ** 10, rel=1e-11)
    with pytest.raises(ValueError, match="eta must be > 0"):
        analysis.suggest_schedule(0.0, 2.0, 10, 0.01)
    with pytest.raises(ValueError, match="r_N"):
        analysis.suggest_schedule(0.1, 2.0, 10, 0.01, r_N=3.0)
    with pytest.raises(ValueError, match="sigma_min"):
        analysis.suggest_schedule(0.1, 2.0, 10, 0.0)
    with pytest.raises(ValueError, match="nu"):
        analysis.suggest_schedule(0.1, 0.9, 10, 0.01)
    with pytest.raises(TypeError, match="n_steps"):
        analysis.suggest_schedule(0.1, 2.0, 2.5, 0.01)
