"""Nothing silent: NaN counts against a denoiser, half precision works, empty batches, large orders.

Regression tests, one per item: each failed before without a word (a wrong number,
NaN samples, an internal error) and must now give the right answer or a clear error.
"""

from __future__ import annotations

import math
import pickle

import mpmath
import numpy as np
import pytest
import torch

import analysis
import toymanifold as tm
from toymanifold.denoisers.ideal import bessel_ratio
from toymanifold.samplers import SAMPLERS

HALF = (torch.float16, torch.bfloat16)


def _nan_above(den, threshold):
    """``den``, but NaN for σ ≥ threshold (a model that breaks at high noise)."""

    def broken(x, sigma):
        eps = den(x, sigma)
        return eps * math.nan if float(sigma) >= threshold else eps

    return broken


# --------------------------------------------------------------------------- NaN never improves a measurement


def test_nonfinite_outputs_count_against_the_denoiser():
    """NaN for σ ≥ 0.5 and an η = 0.05 projection below: η̂ must not read 0.05 (it is inf)."""
    K = tm.Embedded(tm.Sphere(2), 16, seed=0)
    good = tm.PerturbedProjectionDenoiser(K, 0.05, mode="outward")
    sigmas = torch.logspace(-2, 1, 8).tolist()
    clean = analysis.projection_error(good, K, sigmas, 40, generator=0)
    broken = analysis.projection_error(_nan_above(good, 0.5), K, sigmas, 40, generator=0)
    nus = [1.5, 2.0, 4.0]
    np.testing.assert_allclose(analysis.eta_nu_curve(clean, nus).eta_hat, 0.05, rtol=1e-12)
    assert not bool(clean.nonfinite.any())
    high = broken.sigma >= 0.5
    assert torch.equal(broken.nonfinite, high) and bool(torch.isinf(broken.eta[high]).all())
    curve = analysis.eta_nu_curve(broken, nus)
    assert bool(torch.isinf(curve.eta_hat).all())  # admissible NaN pairs dominate the sup
    assert torch.equal(curve.count, analysis.eta_nu_curve(clean, nus).count)  # none dropped
    # A quantile reaching into the bad pairs is inf too; one below them is the true 0.05.
    frac_bad = float(high.double().mean())
    assert bool(torch.isinf(analysis.eta_nu_curve(broken, [4.0], quantile=1.0 - frac_bad / 2).eta_hat).all())
    np.testing.assert_allclose(analysis.eta_nu_curve(broken, [4.0], quantile=0.1).eta_hat, 0.05, rtol=1e-12)
    # So no schedule is certified from it (with the clean η it is).
    assert analysis.suggest_schedule(0.05, 2.0, 10, 0.002).sigma_max > 1
    with pytest.raises(ValueError, match="eta = inf"):
        analysis.suggest_schedule(curve.eta_hat[1], 2.0, 10, 0.002)
    with pytest.raises(ValueError, match="eta = NaN"):
        analysis.suggest_schedule(math.nan, 2.0, 10, 0.002)


def test_trajectory_error_counts_nonfinite_outputs_and_names_diverged_steps():
    K = tm.Circle()
    sig = tm.schedules.loglinear(4.0, 0.1, 4)
    x = 4.0 * torch.randn(3, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    traj = tm.ddim(tm.ProjectionDenoiser(K), sig, x, return_trajectory=True)
    x0 = traj.x0_hats.clone()
    x0[2, 1, 0] = math.nan  # the model output at a finite iterate
    te = analysis.trajectory_error(tm.Trajectory(traj.xs, traj.eps, traj.eps_bar, x0, traj.sigmas, 4), K)
    assert math.isinf(float(te.eta[2, 1])) and bool(torch.isfinite(te.eta[[0, 1, 3]]).all())
    xs = traj.xs.clone()
    xs[3, 0, 1] = math.inf  # a diverged iterate has no distance to K
    with pytest.raises(ValueError, match=r"traj\.xs\[3\].*sigma = 0\.2"):
        analysis.trajectory_error(tm.Trajectory(xs, traj.eps, traj.eps_bar, traj.x0_hats, traj.sigmas, 4), K)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_samplers_name_the_step_of_a_nonfinite_model_output(name):
    """A plain callable that turns NaN below σ = 1: the run raises naming the step and σ."""
    info = SAMPLERS[name]
    sig = tm.schedules.loglinear(10.0, 0.01, 10)  # 10, 5.01, 2.51, 1.26, 0.63, ...
    x = 10.0 * torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    proj = tm.ProjectionDenoiser(tm.Circle())

    def broken(x, sigma):
        eps = proj(x, sigma)
        return eps * math.nan if sigma < 1.0 else eps

    kw = {"generator": 0} if info.stochastic else {}
    # Heun's corrector evaluates σ_{t−1} = 0.63 already in step 3.
    step = 3 if name == "heun" else 4
    with pytest.raises(ValueError, match=rf"non-finite eps .* step {step} \(sigma = 0\.630957\)"):
        info.run(broken, sig, x, **kw)
    # A Denoiser refuses its own NaN output (naming σ); the sampler adds the step as a note.
    with pytest.raises(ValueError, match=r"_BrokenDenoiser gave a non-finite ε .* sigma = 0\.630957") as info_:
        info.run(_BrokenDenoiser(proj), sig, x, **kw)
    assert f"sampler step {step}, sigma = 0.630957" in " ".join(info_.value.__notes__)


class _BrokenDenoiser(tm.Denoiser):
    """A Denoiser whose ``_eps`` returns NaN below σ = 1 (the base class refuses that output)."""

    def __init__(self, inner):
        self.inner = inner
        self.ambient_dim = inner.ambient_dim

    def _eps(self, x, sigma):
        eps = self.inner._eps(x, sigma)
        return torch.where(sigma < 1.0, math.nan, eps)


def test_sampler_names_an_overflowing_update():
    """float16: an iterate that overflows in the step itself (not in the model) is named as such,
    on the last step and before a later evaluation, also when a Denoiser refuses the inf input."""
    x = torch.full((2, 3), 100.0, dtype=torch.float16)
    with pytest.raises(ValueError, match=r"last update \(step 0, sigma = 10\) overflowed torch.float16"):
        tm.ddim(lambda x, s: torch.full_like(x, -60000.0), [10.0, 1.0], x)
    with pytest.raises(ValueError, match=r"before the model evaluation of step 1 \(sigma = 1\)"):
        tm.ddim(lambda x, s: torch.full_like(x, -60000.0), [10.0, 1.0, 0.5], x)
    with pytest.raises(ValueError, match=r"before the model evaluation of step 1 \(sigma = 1\)"):
        tm.ddim(_Constant(-60000.0), [10.0, 1.0, 0.5], x)  # the Denoiser itself refuses the inf input


class _Constant(tm.Denoiser):
    def __init__(self, value):
        self.value = value

    def _eps(self, x, sigma):
        return torch.full_like(x, self.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_nonfinite_check_makes_no_synchronisation_per_step():
    """The number of device synchronisations does not grow with the number of steps."""
    import warnings

    x = torch.randn(64, 8, device="cuda")

    def model(x, sigma):
        return x * (sigma / (1.0 + sigma * sigma))

    counts = []
    for n in (2, 20):
        sig = tm.schedules.loglinear(10.0, 0.1, n)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                tm.ddim(model, sig, x)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        counts.append(sum("synchroniz" in str(w.message) for w in caught))
    assert counts[0] == counts[1], counts


# --------------------------------------------------------------------------- half precision


def _ideal_cases():
    return [
        ("finite", tm.FiniteSet(tm.Sphere(2).sample(40, 0))),
        ("sphere", tm.Sphere(2)),
        ("circle", tm.Circle(radius=2.0)),
        ("subspace", tm.AffineSubspace.random(2, 5, seed=0)),
        ("embedded", tm.Embedded(tm.Sphere(2), 8, seed=1)),
    ]


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name, K", _ideal_cases())
def test_half_precision_denoisers_compute_in_float32(name, K, dtype):
    """float16/bfloat16 x: ε is the float32 computation on the same x, rounded once to x's dtype,
    for σ from 1e-3 to float32's range (1e30: far beyond float16's 65504)."""
    g = torch.Generator().manual_seed(0)
    dens = [tm.ideal_denoiser(K), tm.ProjectionDenoiser(K), tm.PerturbedProjectionDenoiser(K, 0.2, mode="outward")]
    for sigma in (1e-3, 1.0, 1e3, 1e6, 1e30):
        x0 = K.sample(6, g)
        x = (x0 + min(sigma, 1.0) * torch.randn(x0.shape, generator=g, dtype=x0.dtype)).to(dtype)
        for den in dens:
            eps = den(x, sigma)
            assert eps.dtype == dtype and bool(torch.isfinite(eps).all()), (den, sigma)
            torch.testing.assert_close(eps, den(x.float(), sigma).to(dtype), rtol=0, atol=0)
            x0_hat = den.denoise(x, sigma)
            assert x0_hat.dtype == dtype and bool(torch.isfinite(x0_hat).all())


@pytest.mark.parametrize("dtype", HALF)
def test_half_precision_digits_ddim(dtype):
    """The reported case: DDIM on the digits' ideal denoiser from float16 noise was all NaN."""
    K = tm.datasets.digits()
    den = tm.ideal_denoiser(K)
    sig = tm.schedules.loglinear(80, 0.002, 20)
    x = 80 * torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    ref = tm.ddim(den, sig, x)
    got = tm.ddim(den, sig, x.to(dtype))
    assert got.dtype == dtype and bool(torch.isfinite(got).all())
    # The run memorises a training digit (|x| ≤ 1): agreement to a few units of the
    # half dtype's roundoff there (float16 2^-11, bfloat16 2^-8).
    u = torch.finfo(dtype).eps / 2
    torch.testing.assert_close(got.float(), ref, rtol=0, atol=4 * u)
    assert torch.equal(K.project(got.double()), K.project(ref.double()))


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_half_precision_samplers(name, dtype):
    K = tm.Sphere(2)
    info = SAMPLERS[name]
    sig = tm.schedules.loglinear(20.0, 0.01, 12)
    x = (20.0 * torch.randn(16, 3, generator=torch.Generator().manual_seed(2))).to(dtype)
    kw = {"generator": 0} if info.stochastic else {}
    out = info.run(tm.ideal_denoiser(K), sig, x, **kw)
    assert out.dtype == dtype and bool(torch.isfinite(out).all())
    assert float(K.distance(out.double()).max()) < 0.1


def test_projection_denoiser_half_at_huge_sigma():
    """ProjectionDenoiser(K)(x.half(), 1e6) raised an internal overflow error."""
    K = tm.Sphere(2)
    x = torch.tensor([[2.0, 0.0, 0.0], [0.0, -3.0, 0.5]], dtype=torch.float16)
    eps = tm.ProjectionDenoiser(K)(x, 1e6)
    assert eps.dtype == torch.float16
    torch.testing.assert_close(eps, ((x.double() - K.project(x.double())) / 1e6).half(), rtol=0, atol=0)


def test_sigma_outside_the_working_dtype_is_a_value_error():
    """A σ that float32 cannot hold (or a half-precision MLP that cannot take it) is refused by name."""
    x = torch.ones(2, 3)
    with pytest.raises(ValueError, match="sigma"):
        tm.ProjectionDenoiser(tm.Sphere(2))(x, 1e39)
    with pytest.raises(ValueError, match="sigma"):
        tm.ProjectionDenoiser(tm.Sphere(2))(x, 1e-40)
    model = tm.MLPDenoiser(3, hidden=8, depth=1).half()  # a network runs in its own dtype
    with pytest.raises(ValueError, match="sigma"):
        model(x.half(), 1e5)


def test_unrepresentable_eps_is_a_value_error():
    """ε = dist/σ beyond float16's range: a ValueError naming σ, never inf."""
    x = torch.tensor([[300.0, 0.0, 0.0]], dtype=torch.float16)
    with pytest.raises(ValueError, match=r"sigma = 0\.001.*float16"):
        tm.ProjectionDenoiser(tm.Sphere(2))(x, 1e-3)


# --------------------------------------------------------------------------- empty batches


def _all_denoisers():
    K = tm.Embedded(tm.Sphere(2), 6, seed=0)
    dens = [tm.ProjectionDenoiser(K), tm.MLPDenoiser(6, hidden=8, depth=1).double()]
    dens += [tm.PerturbedProjectionDenoiser(K, 0.1, mode=m) for m in ("random", "outward", "inward")]
    dens += [tm.ideal_denoiser(M) for _, M in _ideal_cases() if M.ambient_dim == 6]
    dens += [tm.ideal_denoiser(tm.FiniteSet(K.sample(10, 0))), tm.ideal_denoiser(K)]
    return dens


@pytest.mark.parametrize("den", _all_denoisers(), ids=lambda d: type(d).__name__)
def test_empty_batch_gives_an_empty_result(den):
    for dtype in (torch.float64, torch.float32, torch.float16):
        if isinstance(den, tm.MLPDenoiser) and dtype != torch.float64:
            continue
        x = torch.empty(0, 6, dtype=dtype)
        for sigma in (0.5, torch.empty(0, dtype=dtype)):
            eps = den(x, sigma)
            assert eps.shape == (0, 6) and eps.dtype == dtype
            assert den.denoise(x, sigma).shape == (0, 6)
        if isinstance(den, tm.denoisers.IdealDenoiser):
            assert den.posterior_mean(x, 0.5).shape == (0, 6)
    with pytest.raises(ValueError, match="sigma"):
        den(torch.empty(0, 6, dtype=torch.float64), -1.0)  # σ is still checked


def test_samplers_refuse_an_empty_batch():
    for info in SAMPLERS.values():
        with pytest.raises(ValueError, match="at least one sample"):
            info.run(tm.ProjectionDenoiser(tm.Circle()), [1.0, 0.5], torch.empty(0, 2))


# --------------------------------------------------------------------------- Bessel ratio of large order


@pytest.mark.parametrize("m", [633, 701, 2001])
def test_bessel_ratio_large_order_matches_mpmath(m):
    """Debye's uniform expansion (m > 632 at κ > 1e8, and wherever ive underflows): 40-digit mpmath.

    The logarithm of the ratio is a sum of six terms of order one, each with a few
    roundings: relative error a few 1e-16 (measured ≤ 3e-15); checked to 1e-14.
    """
    mpmath.mp.dps = 40
    kappa = np.geomspace(1e-3, 1e14, 12)
    ref = [float(mpmath.besseli(m / 2, mpmath.mpf(k)) / mpmath.besseli(m / 2 - 1, mpmath.mpf(k))) for k in kappa]
    np.testing.assert_allclose(bessel_ratio(m, kappa), ref, rtol=1e-14, atol=0)
    assert bessel_ratio(m, np.inf) == 1.0 and bessel_ratio(m, 0.0) == 0.0
    big = bessel_ratio(m, np.array([1e200, 1e300]))  # 1 − (m − 1)/(2κ) rounds to 1
    assert np.all(big == 1.0)


def test_sphere_700_at_small_sigma():
    """tm.ideal_denoiser(tm.Sphere(700)) raised 'supports m <= 632' at small σ."""
    K = tm.Sphere(700)
    den = tm.ideal_denoiser(K)
    g = torch.Generator().manual_seed(0)
    x = K.sample(4, g) + 1e-3 * torch.randn(4, 701, generator=g, dtype=torch.float64)
    for sigma in (1e-4, 1e-5, 1e-8):
        mean = den.posterior_mean(x, sigma)
        # E[x0|x] = R A_m(κ) u/‖u‖ with 1 − A_m(κ) = (m − 1)/(2κ) + O(m²/κ²), κ = R‖u‖/σ².
        kappa = x.norm(dim=1) / sigma**2
        np.testing.assert_allclose(1 - mean.norm(dim=1), 700 / (2 * kappa), rtol=1e-2)
        assert bool(torch.isfinite(den(x, sigma)).all())


# --------------------------------------------------------------------------- smaller items


def test_bool_sigma_is_a_type_error():
    den = tm.ProjectionDenoiser(tm.Circle())
    x = torch.ones(2, 2)
    for sigma in (True, np.bool_(True), torch.tensor([True, False])):
        with pytest.raises(TypeError, match="sigma"):
            den(x, sigma)
    with pytest.raises(TypeError, match="x"):
        den(torch.ones(2, 2, dtype=torch.bool), 1.0)


def test_mmd_bandwidth_that_underflows():
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = x + 1.0
    with pytest.raises(ValueError, match="bandwidth"):
        analysis.mmd_rbf(x, y, bandwidth=1e-200)  # 2h² = 0
    with pytest.raises(ValueError, match=r"bandwidth .* too small"):
        analysis.mmd_rbf(x, y, bandwidth=1e-3)  # every kernel value exp(−d²/2h²) = 0
    assert float(analysis.mmd_rbf(x, y, bandwidth=1.0)) > 0


def test_frechet_refuses_a_covariance_that_is_not_psd():
    with pytest.raises(ValueError, match="sigma1 must be positive semi-definite"):
        analysis.frechet_distance_from_stats([0, 0], [[1.0, 2.0], [2.0, 1.0]], [0, 0], np.eye(2))
    with pytest.raises(ValueError, match="sigma2 must be positive semi-definite"):
        analysis.frechet_distance_from_stats([0, 0], np.eye(2), [0, 0], -np.eye(2))
    # Round-off below zero in a singular covariance (rank 1, computed in float32) is accepted.
    v = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    cov = (v @ v.T).astype(np.float64)
    assert math.isfinite(analysis.frechet_distance_from_stats(np.zeros(3), cov, np.zeros(3), cov))


def test_suggest_schedule_overflow_gives_the_right_advice():
    """σ_max/σ_min grows like ν^(1/η) as η shrinks: 'use a smaller eta' was the wrong advice."""
    with pytest.raises(ValueError, match="overflows") as info:
        analysis.suggest_schedule(1e-4, 2.0, 200, 1.0)
    msg = str(info.value)
    assert "smaller nu, n_steps or sigma_min" in msg and "smaller eta" not in msg
    # Following the advice works; the old advice (a smaller eta) makes it worse.
    for kw in (dict(nu=1.5), dict(n_steps=100), dict(sigma_min=1e-10)):
        args = {"eta": 1e-4, "nu": 2.0, "n_steps": 200, "sigma_min": 1.0, **kw}
        assert math.isfinite(analysis.suggest_schedule(**args).sigma_max)
    with pytest.raises(ValueError, match="overflows"):
        analysis.suggest_schedule(1e-6, 2.0, 100, 1.0)  # fine at eta = 1e-4 (above), not at 1e-6


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_cifar10_batches_of_every_pickle_protocol(tmp_path, protocol):
    from toymanifold.images.data import load_cifar10

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = np.random.default_rng(0).integers(0, 256, size=(3, 3072), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"labels": [1, 2, 3], b"data": data, b"batch_label": b"test"}, f, protocol=protocol)
    x, y = load_cifar10(tmp_path, train=False)
    assert y.tolist() == [1, 2, 3]
    torch.testing.assert_close(x.reshape(3, -1), torch.from_numpy(data.astype(np.float32) / 127.5 - 1.0))


def test_cifar10_protocol2_codec_is_latin1_only(tmp_path):
    """Protocol 2 stores bytes as _codecs.encode(str, 'latin1'): any other codec is refused."""
    from toymanifold.images.data import load_cifar10

    class OtherCodec:
        def __reduce__(self):
            import _codecs

            return (_codecs.encode, ("abc", "rot13"))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": OtherCodec(), b"labels": []}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="rot13"):
        load_cifar10(tmp_path, train=False)
