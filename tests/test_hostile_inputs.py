"""Hostile inputs at every public entry point: a right answer or a clear error, never a silent wrong one.

One Hypothesis strategy (:func:`hostile_points`) draws what a demanding user passes: odd
shapes (empty, 1-D, wrong width, 3-D), float16/bfloat16/int dtypes, NumPy arrays,
NaN/inf, non-contiguous and stride-0 layouts, ``requires_grad`` and magnitudes from
1e-300 to 1e300 (beyond a dtype's range the input is inf, so not finite). Every call
must either

- return a finite result of the right shape and dtype (finite for finite input), or
- raise ``ValueError``/``TypeError`` whose message names the hostile argument;

any other exception, and any non-finite result from finite input, fails the test.

"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import analysis
import toymanifold as tm
from toymanifold.images import DiscreteTimeEpsModel
from toymanifold.samplers import SAMPLERS

FLOATS = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
DTYPES = (*FLOATS, torch.int64, torch.int32)
SCALES = (1.0, 1e-300, 1e-30, 1e-6, 1e3, 1e15, 1e30, 1e300)
N = 3  # ambient dimension of the toy cases below


@dataclass
class Hostile:
    """A drawn input and what it is: ``finite`` is decided after the conversion to its dtype."""

    value: Any
    finite: bool
    dtype: torch.dtype  # the tensor dtype the library sees (float64 for NumPy and ints)
    shape: tuple[int, ...]
    well_formed: bool  # a 2-D (B, n) batch

    def __repr__(self) -> str:
        kind = type(self.value).__name__
        grad = getattr(self.value, "requires_grad", False)
        return f"Hostile({kind} {self.dtype} {self.shape}, finite={self.finite}, grad={grad})"


@st.composite
def hostile_points(draw, n: int = N) -> Hostile:
    dtype = draw(st.sampled_from(DTYPES))
    rows = draw(st.sampled_from((0, 1, 4)))
    kind = draw(st.sampled_from(("ok", "ok", "ok", "1d", "wide", "3d")))
    shape = {"ok": (rows, n), "1d": (n,), "wide": (rows, n + 1), "3d": (rows, n, 2)}[kind]
    scale = draw(st.sampled_from(SCALES))
    special = draw(st.sampled_from((None, None, None, math.nan, math.inf, -math.inf)))
    layout = draw(st.sampled_from(("contiguous", "transposed", "expanded", "numpy")))
    grad = draw(st.booleans())
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))

    base = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    if special is not None and base.numel():
        base.view(-1)[draw(st.integers(0, base.numel() - 1))] = special
    if dtype.is_floating_point:
        t = base.to(dtype)
    else:
        info = torch.iinfo(dtype)
        t = torch.nan_to_num(base, nan=0.0).round().clamp(info.min, info.max).to(dtype)
    if layout == "transposed" and t.ndim == 2:
        t = t.T.contiguous().T  # same values, column-major strides
    elif layout == "expanded" and t.ndim == 2 and t.shape[0] > 0:
        t = t[:1].expand(t.shape[0], -1)  # stride 0 along the batch
    finite = not t.is_floating_point() or bool(torch.isfinite(t.double()).all())
    seen = t.dtype if t.is_floating_point() else torch.float64
    if layout == "numpy" and t.dtype in (torch.float64, torch.float32, torch.int64, torch.int32):
        value, seen = t.numpy(), torch.float64
    elif grad and t.is_floating_point():
        value = t.detach().clone().requires_grad_(True)
    else:
        value = t
    return Hostile(value, finite, seen, tuple(t.shape), kind == "ok")


HOSTILE_SIGMAS = (
    0.5,
    1e-30,
    1e-6,
    1e6,
    1e30,
    1e300,
    0.0,
    -1.0,
    math.nan,
    math.inf,
    True,
    3,
    np.float32(0.25),
    np.float64(2.0),
    "0.5",
    None,
    [0.5],
)


def _valid_sigma(sigma: Any, batch: int) -> bool:
    """A real number > 0 (not a bool), or a list of ``batch`` of them."""
    values = sigma if isinstance(sigma, list) and len(sigma) == batch else [sigma]
    real = (float, np.floating, int)
    return all(isinstance(v, real) and not isinstance(v, bool) and 0 < v < math.inf for v in values)


def _names(message: str, names: tuple[str, ...]) -> bool:
    return any(re.search(rf"(?<![A-Za-z_]){re.escape(n)}(?![A-Za-z_])", message) for n in names)


def outcome(fn, names: tuple[str, ...], finite_input: bool):
    """Run ``fn``: its result (checked finite for finite input), or None after a ValueError/TypeError
    that names one of ``names``. Any other exception propagates and fails the test."""
    try:
        out = fn()
    except (ValueError, TypeError) as exc:
        assert _names(str(exc), names), f"{type(exc).__name__} does not name {names}: {exc}"
        return None
    if finite_input:
        for t in out if isinstance(out, tuple) else (out,):
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                assert bool(torch.isfinite(t.detach().double()).all()), f"non-finite result from finite input: {t}"
    return out


def _expect_like(out: torch.Tensor, h: Hostile, shape: tuple[int, ...]) -> None:
    assert tuple(out.shape) == shape, (out.shape, shape)
    assert out.dtype == h.dtype, (out.dtype, h.dtype)


# --------------------------------------------------------------------------- denoisers


def _denoisers():
    K = tm.Sphere(2)
    return {
        "projection": tm.ProjectionDenoiser(K),
        "perturbed_random": tm.PerturbedProjectionDenoiser(K, 0.3, mode="random"),
        "perturbed_inward": tm.PerturbedProjectionDenoiser(K, 0.3, mode="inward"),
        "ideal_sphere": tm.ideal_denoiser(K),
        "ideal_finite": tm.ideal_denoiser(tm.FiniteSet(K.sample(20, 0))),
        "ideal_subspace": tm.ideal_denoiser(tm.AffineSubspace.random(2, N, seed=0)),
        "ideal_embedded": tm.ideal_denoiser(tm.Embedded(tm.Circle(), N, seed=1)),
    }


DENOISERS = _denoisers()


@pytest.mark.parametrize("name", list(DENOISERS))
@given(h=hostile_points(), sigma=st.sampled_from(HOSTILE_SIGMAS))
def test_denoisers(name, h, sigma):
    den = DENOISERS[name]
    sigma_ok = _valid_sigma(sigma, h.shape[0] if h.shape else 0)
    for method in ("__call__", "denoise") + (("posterior_mean",) if name.startswith("ideal") else ()):
        out = outcome(lambda m=method: getattr(den, m)(h.value, sigma), ("x", "sigma"), h.finite)
        if out is not None:
            assert h.finite and h.well_formed and sigma_ok, f"accepted {h} with sigma={sigma!r}"
            _expect_like(out, h, h.shape)


@given(h=hostile_points(), sigma=st.sampled_from(HOSTILE_SIGMAS))
def test_mlp_denoiser(h, sigma):
    torch.manual_seed(0)
    model = tm.MLPDenoiser(N, hidden=8, depth=1)  # float32 parameters: a float32 x (or NumPy) only
    out = outcome(lambda: model(h.value, sigma), ("x", "sigma"), h.finite)
    if out is not None:
        assert out.shape == h.shape and out.dtype == torch.float32


def _discrete_model():
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)

    def model(z, t):
        return torch.tanh(z) * (1.0 + t.reshape(-1, *([1] * (z.ndim - 1))) / 1000.0)

    return DiscreteTimeEpsModel(model, abar)


# A list σ reaches float(sigma) in DiscreteTimeEpsModel.__call__ (see the xfail below).
@given(h=hostile_points(n=16), sigma=st.sampled_from([s for s in HOSTILE_SIGMAS if not isinstance(s, list)]))
def test_discrete_time_model(h, sigma):
    den = _discrete_model()
    x = h.value.reshape(h.shape[0], 1, 4, 4) if h.well_formed and isinstance(h.value, torch.Tensor) else h.value
    out = outcome(lambda: den(x, sigma), ("x", "sigma", "model"), h.finite)
    if out is not None:
        assert out.shape == tuple(x.shape)


# Found by the hostile tests in code another change owns; remove the marks once fixed there.
DISCRETE_PENDING = pytest.mark.xfail(strict=True, reason="fix pending in toymanifold/images/discrete.py")


@DISCRETE_PENDING
def test_discrete_time_model_takes_a_sigma_list():
    """check_sigma accepts a list of B values; __call__ then calls float(sigma) on it (a TypeError
    that does not name sigma)."""
    den = _discrete_model()
    assert den(torch.zeros(2, 1, 4, 4), [0.5, 1.0]).shape == (2, 1, 4, 4)


# --------------------------------------------------------------------------- samplers


HOSTILE_SCHEDULES = (
    [10.0, 1.0, 0.1],
    [10.0, 1.0, 0.0],
    [1e30, 1.0],
    [1e-20, 1e-30],
    [1.0],
    [],
    [1.0, 2.0],
    [1.0, 1.0],
    [1.0, -0.5],
    [math.nan, 1.0],
    [math.inf, 1.0],
    np.array([5.0, 0.5]),
    torch.tensor([5.0, 0.5], dtype=torch.float16),
    torch.tensor([[5.0, 0.5]]),
    "10, 1",
)


@pytest.mark.parametrize("name", list(SAMPLERS))
@given(h=hostile_points(), sigmas=st.sampled_from(HOSTILE_SCHEDULES))
def test_samplers(name, h, sigmas):
    info = SAMPLERS[name]
    kw = {"generator": 0} if info.stochastic else {}
    den = DENOISERS["ideal_sphere"]
    out = outcome(lambda: info.run(den, sigmas, h.value, **kw), ("x", "sigmas", "sigma"), h.finite)
    if out is not None:
        assert h.finite and h.well_formed and h.shape[0] > 0
        _expect_like(out, h, h.shape)


@given(h=hostile_points())
def test_sampler_with_a_broken_model(h):
    """A model that returns NaN from the second step on: never a silent NaN result."""
    calls = []

    def model(x, sigma):
        calls.append(sigma)
        return torch.full_like(torch.as_tensor(x), math.nan if len(calls) > 1 else 0.1)

    out = outcome(lambda: tm.ddim(model, [4.0, 2.0, 1.0], h.value), ("x", "eps", "denoiser"), h.finite)
    assert out is None


# --------------------------------------------------------------------------- schedules


HOSTILE_NUMBERS = (1.0, 0.5, 1e-300, 1e300, 0.0, -1.0, math.nan, math.inf, True, 7, "1", None, np.float64(2.0))
# rho ≠ 7 with extreme ranges overflows σ^(1/ρ) or collapses the points: the xfails below.
HOSTILE_RHOS = (7.0, 3, 0.0, -1.0, math.nan, math.inf, True, "7", None)
HOSTILE_COUNTS = (1, 3, 0, -2, 2.5, True, "3", None, 10**6)


@given(
    hi=st.sampled_from(HOSTILE_NUMBERS),
    lo=st.sampled_from(HOSTILE_NUMBERS),
    n=st.sampled_from(HOSTILE_COUNTS),
    rho=st.sampled_from(HOSTILE_RHOS),
    final_zero=st.sampled_from((False, True, 1, "yes")),
)
def test_schedules(hi, lo, n, rho, final_zero):
    names = ("sigma_max", "sigma_min", "n_steps", "rho", "final_zero")
    for fn in (
        lambda: tm.schedules.loglinear(hi, lo, n, final_zero=final_zero),
        lambda: tm.schedules.karras(hi, lo, n, rho, final_zero=final_zero),
    ):
        out = outcome(fn, names, True)
        if out is not None:
            assert out.dtype == torch.float64 and out.ndim == 1 and bool((out[1:] < out[:-1]).all())


def test_karras_with_a_huge_sigma_max_and_small_rho():
    """karras(1e300, 1, 1, rho=0.5): sigma_max^(1/rho) alone overflows; the schedule is still exact."""
    assert tm.schedules.karras(1e300, 1.0, 1, rho=0.5).tolist() == [1e300, 1.0]
    s = tm.schedules.karras(1e300, 1.0, 4, rho=0.5)
    assert bool(torch.isfinite(s).all()) and bool((s[1:] < s[:-1]).all())


def test_karras_with_collapsing_points_names_the_arguments():
    """karras(1, 0.5, 3, rho=1e-300): the points collapse; the ValueError names no argument."""
    with pytest.raises(ValueError, match="rho"):
        tm.schedules.karras(1.0, 0.5, 3, rho=1e-300)


@given(
    t=st.sampled_from(HOSTILE_COUNTS),
    start=st.sampled_from(HOSTILE_NUMBERS),
    end=st.sampled_from(HOSTILE_NUMBERS),
    kind=st.sampled_from(("linear", "scaled_linear", "cosine", "nope", 3)),
)
def test_ddpm_sigmas(t, start, end, kind):
    if t == 10**6:
        t = 2000
    out = outcome(
        lambda: tm.schedules.ddpm_sigmas(t, kind, start, end),
        ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end", "betas"),
        True,
    )
    if out is not None:  # σ(0) = 0 when ᾱ_0 rounds to 1 (beta_start = 1e-300): a valid table
        assert out.shape == (t,) and bool((out >= 0).all()) and bool((out[1:] >= out[:-1]).all())


# --------------------------------------------------------------------------- analysis


@given(h=hostile_points(), other=hostile_points())
def test_sample_metrics(h, other):
    names = ("x", "y", "samples", "reference", "bandwidth")  # a bandwidth the data cannot use is named
    both = h.finite and other.finite
    for fn, finite in (
        (lambda: analysis.mmd_rbf(h.value, other.value), both),
        (lambda: analysis.mmd_rbf(h.value, other.value, bandwidth=1.0, unbiased=False), both),
        (lambda: analysis.sliced_wasserstein(h.value, other.value, 8, generator=0), both),
        (lambda: analysis.frechet_distance(h.value, other.value), both),
        (lambda: analysis.ode_error(h.value, other.value), both),
        (lambda: analysis.mean_distance(h.value, tm.Sphere(2)), h.finite),
    ):
        out = outcome(fn, names, finite)
        if out is not None:
            assert finite


@given(
    sigmas=st.sampled_from(HOSTILE_SCHEDULES),
    eta=st.sampled_from((0.0, 0.1, 0.99, 1.0, -0.1, math.nan, math.inf, True, "0.1")),
    nu=st.sampled_from((1.0, 2.0, 0.5, math.inf, math.nan, True)),
    r=st.sampled_from((1.0, 0.5, 0.0, -1.0, math.inf, math.nan, [1.0, 2.0], np.ones((2, 2)))),
)
def test_bounds(sigmas, eta, nu, r):
    names = ("sigmas", "eta", "nu", "r_N", "sigma_min", "n_steps")
    b = outcome(lambda: analysis.theorem1_bounds(sigmas, eta, nu, r), names, True)
    if b is not None:
        assert b.upper.shape[0] == len(b.sigmas) and bool(torch.isfinite(b.upper).all())
    n_steps = len(sigmas) if isinstance(sigmas, list) else 3
    for fn in (
        lambda: analysis.suggest_schedule(eta, nu, n_steps, 0.01, r_N=r),
        lambda: analysis.corollary2_loglinear(eta, nu, n_steps, 10.0, 0.01, r_N=r),
    ):
        outcome(fn, names, True)


@given(
    sigmas=st.sampled_from(([0.1, 1.0], [1e-30], [1e30], 0.5, [], [0.0], [-1.0], [math.nan], np.ones((2, 2)), "1")),
    num=st.sampled_from((4, 0, -1, 2.5, True)),
    nus=st.sampled_from(([1.5, 2.0], 0.5, [], math.inf, [math.nan])),
    quantile=st.sampled_from((None, 0.5, 1.5, -0.1, math.nan)),
)
def test_projection_error(sigmas, num, nus, quantile):
    K = tm.Embedded(tm.Sphere(2), 5, seed=0)
    names = ("sigmas", "num_samples", "nus", "quantile")
    errs = outcome(
        lambda: analysis.projection_error(tm.ProjectionDenoiser(K), K, sigmas, num, generator=0), names, True
    )
    if errs is not None:
        outcome(lambda: analysis.eta_nu_curve(errs, nus, quantile=quantile), names, False)


# --------------------------------------------------------------------------- manifolds


def _manifolds():
    pts = tm.Sphere(2).sample(12, 3)
    return {
        "circle": tm.Circle(),
        "sphere": tm.Sphere(2),
        "torus": tm.Torus(1.0, 0.4),
        "subspace": tm.AffineSubspace.random(2, N, seed=0),
        "spiral": tm.Spiral(),
        "swissroll": tm.SwissRoll(),
        "finite": tm.FiniteSet(pts),
        "embedded": tm.Embedded(tm.Circle(), N, seed=1),
    }


MANIFOLDS = _manifolds()


def _manifold_outcome(K, h):
    n = K.ambient_dim
    results = {}
    for method in ("project", "distance", "project_with_distance"):
        out = outcome(lambda m=method: getattr(K, m)(h.value), ("x",), h.finite)
        if out is not None:
            assert h.finite and h.well_formed and h.shape[1] == n, f"accepted {h}"
            p = out[0] if isinstance(out, tuple) else out
            if method != "distance":
                _expect_like(p, h, (h.shape[0], n))
            results[method] = out
    return results


@pytest.mark.parametrize("name", list(MANIFOLDS))
@given(h=hostile_points(n=N))
def test_manifold_oracles(name, h):
    K = MANIFOLDS[name]
    if K.ambient_dim != N:
        h = Hostile(h.value, h.finite, h.dtype, h.shape, False)  # never the right width
    _manifold_outcome(K, h)


@pytest.mark.parametrize("name", list(MANIFOLDS))
@given(
    num=st.sampled_from((0, 1, 5, -1, 2.5, True, "3", None)),
    seed=st.sampled_from((0, 7, -1, 2.5, None)),
    dtype=st.sampled_from((torch.float64, torch.float32, torch.float16)),
)
def test_manifold_sample(name, num, seed, dtype):
    K = MANIFOLDS[name]
    out = outcome(lambda: K.sample(num, seed, dtype=dtype), ("num", "generator", "dtype"), True)
    if out is not None:
        assert out.shape == (num, K.ambient_dim) and out.dtype == dtype


@pytest.mark.parametrize("name", list(MANIFOLDS))
def test_manifold_oracles_accept_requires_grad(name):
    K = MANIFOLDS[name]
    x = (2.0 * K.sample(4, 0)).requires_grad_(True)
    d = K.distance(x)
    d.sum().backward()
    assert bool(torch.isfinite(x.grad).all())


@pytest.mark.parametrize("name", list(MANIFOLDS))
def test_manifold_oracles_take_empty_batches(name):
    K = MANIFOLDS[name]
    x = torch.empty(0, K.ambient_dim, dtype=torch.float64)
    assert K.project(x).shape == (0, K.ambient_dim) and K.distance(x).shape == (0,)


@pytest.mark.parametrize("name", list(MANIFOLDS))
@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16))
def test_manifold_oracles_take_half_precision(name, dtype):
    K = MANIFOLDS[name]
    x = (1.5 * K.sample(4, 0)).to(dtype)
    p, d = K.project_with_distance(x)
    assert p.dtype == dtype and bool(torch.isfinite(p).all()) and bool(torch.isfinite(d).all())


def test_embedded_half_precision_at_moderate_norms():
    """|x| = 300 in float16: |x|² = 9e4 > 65504 overflows the distance of Embedded."""
    K = MANIFOLDS["embedded"]
    x = (300 * torch.tensor([[0.6, -0.8, 0.3]])).half()
    p, d = K.project_with_distance(x)
    assert bool(torch.isfinite(p).all()) and bool(torch.isfinite(d).all())


def test_torus_sample_zero():
    assert tm.Torus(1.0, 0.4).sample(0).shape == (0, 3)


def test_sample_with_an_integer_dtype_is_a_type_error():
    with pytest.raises(TypeError, match="dtype"):
        tm.Sphere(2).sample(3, 0, dtype=torch.int64)


@pytest.mark.parametrize(
    "name",
    list(MANIFOLDS),
)
@pytest.mark.parametrize("scale", (1e160, 1e300))
def test_manifold_oracles_at_huge_norms(name, scale):
    """|x|² overflows float64: finite answers (scaled norms) or a ValueError naming x, never inf/NaN."""
    K = MANIFOLDS[name]
    x = scale * torch.tensor([[0.6, -0.8, 0.3][: K.ambient_dim]], dtype=torch.float64)
    out = outcome(lambda: K.project_with_distance(x), ("x",), True)
    if out is not None:
        torch.testing.assert_close(out[1], torch.linalg.vector_norm(x / scale - out[0] / scale, dim=1) * scale)


def test_finite_set_at_huge_norms_returns_the_nearest_point():
    K = tm.FiniteSet([[1.0, 0.0], [-1.0, 0.0]])
    assert K.project(torch.tensor([[-1e160, 0.0]], dtype=torch.float64)).tolist() == [[-1.0, 0.0]]
