"""DiscreteTimeEpsModel: the THEORY §1 map from a discrete-time ε model to σ-space."""

import math

import pytest
import torch

import toymanifold as tm
from toymanifold.images import DiscreteTimeEpsModel

T = 1000


def linear_abar(T=T, dtype=torch.float64):
    return torch.cumprod(1.0 - torch.linspace(1e-4, 0.02, T, dtype=dtype), 0)


class Recorder:
    """A fake ε model that records (z, t) and returns a fixed function of them."""

    def __init__(self):
        self.calls = []

    def __call__(self, z, t):
        self.calls.append((z.clone(), t.clone()))
        return 0.5 * z


def test_sigma_table_matches_theory_endpoints():
    den = DiscreteTimeEpsModel(Recorder(), linear_abar())
    # THEORY §1: with linear betas 1e-4..0.02, σ runs from about 0.01 to about 157.
    assert den.sigmas.dtype == torch.float64
    assert math.isclose(den.sigma_min, math.sqrt(1e-4 / (1 - 1e-4)), rel_tol=1e-12)
    assert 157.0 < den.sigma_max < 158.0
    assert bool((den.sigmas[1:] > den.sigmas[:-1]).all())


@pytest.mark.parametrize("rule", ["interpolate", "nearest", "paper"])
def test_input_scaling_and_table_sigmas_give_exact_timesteps(rule):
    rec = Recorder()
    den = DiscreteTimeEpsModel(rec, linear_abar(), timestep=rule)
    x = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    for t in (0, 1, 17, 500, 998, 999):
        sigma = float(den.sigmas[t])
        eps = den(x, sigma)
        z, tt = rec.calls[-1]
        # z = x / √(1 + σ²) in x's dtype (THEORY §1), ε returned unchanged
        scale = torch.tensor(1.0 / math.sqrt(1.0 + sigma * sigma), dtype=x.dtype)
        torch.testing.assert_close(z, x * scale, rtol=0, atol=0)
        torch.testing.assert_close(eps, 0.5 * z, rtol=0, atol=0)
        assert tt.shape == (3,)
        assert bool((tt == t).all()), (rule, t, tt)
        assert tt.dtype == (torch.float32 if rule == "interpolate" else torch.int64)


def test_interpolation_is_linear_in_log_sigma():
    den = DiscreteTimeEpsModel(Recorder(), linear_abar())
    s = den.sigmas
    for t in (0, 3, 250, 998):
        for w in (0.25, 0.5, 0.9):
            sigma = torch.exp((1 - w) * s[t].log() + w * s[t + 1].log())
            assert math.isclose(float(den.sigma_to_t(sigma)), t + w, abs_tol=1e-9)
    # clamped outside the table
    assert float(den.sigma_to_t(1e-5)) == 0.0
    assert float(den.sigma_to_t(1e4)) == T - 1


def test_nearest_rounds_the_interpolated_timestep():
    interp = DiscreteTimeEpsModel(Recorder(), linear_abar())
    near = DiscreteTimeEpsModel(Recorder(), linear_abar(), timestep="nearest")
    sig = torch.exp(torch.linspace(math.log(0.011), math.log(150.0), 777, dtype=torch.float64))
    frac = interp.sigma_to_t(sig)
    idx = near.sigma_to_t(sig)
    assert idx.dtype == torch.int64
    assert bool(((idx - frac).abs() <= 0.5).all())
    # the chosen t is the table entry nearest in log σ
    d = (sig.log()[:, None] - near.sigmas.log()[None, :]).abs()
    assert bool((d[torch.arange(777), idx] <= d.min(dim=1).values + 1e-12).all())


def test_paper_rule_is_searchsorted_left():
    den = DiscreteTimeEpsModel(Recorder(), linear_abar(), timestep="paper")
    s = den.sigmas
    g = torch.Generator().manual_seed(1)
    sig = torch.exp(torch.empty(2000, dtype=torch.float64).uniform_(math.log(s[0]), math.log(s[-1]), generator=g))
    t = den.sigma_to_t(sig)
    # σ(t−1) < σ ≤ σ(t): the smallest t with σ(t) ≥ σ (the paper code's torch.searchsorted)
    assert bool((s[t] >= sig).all())
    assert bool((s[(t - 1).clamp(min=0)] < sig)[t > 0].all())
    # a table value maps to its own t (not t + 1)
    assert den.sigma_to_t(s[123]).item() == 123


def test_per_sample_sigmas():
    rec = Recorder()
    den = DiscreteTimeEpsModel(rec, linear_abar(), timestep="nearest")
    x = torch.ones(3, 2)
    sig = den.sigmas[[5, 50, 500]].to(torch.float32)
    den(x, sig)
    z, t = rec.calls[-1]
    assert t.tolist() == [5, 50, 500]
    expected = 1.0 / torch.sqrt(1.0 + sig.double() ** 2)
    torch.testing.assert_close(z[:, 0].double(), expected, rtol=1e-6, atol=0)


def test_gaussian_ideal_model_maps_to_sigma_space_ideal():
    # For data N(0, s² I) the z-space ideal ε is √(1−ᾱ) z / (ᾱ s² + 1 − ᾱ); through the
    # THEORY §1 map it must be the σ-space ideal ε = σ x / (s² + σ²).
    s2 = 0.7
    abar = linear_abar()

    def model(z, t):
        a = abar[t].reshape(-1, 1)
        return (1 - a).sqrt() * z / (a * s2 + 1 - a)

    den = DiscreteTimeEpsModel(model, abar, timestep="nearest")
    x = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for t in (0, 10, 400, 999):
        sigma = float(den.sigmas[t])
        torch.testing.assert_close(den(x, sigma), sigma * x / (s2 + sigma**2), rtol=1e-12, atol=1e-14)


def test_ddim_runs_through_the_wrapper():
    den = DiscreteTimeEpsModel(lambda z, t: 0.1 * z, linear_abar())
    sig = den.sigmas[[999, 500, 100, 0]]
    x = torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(0)) * float(sig[0])
    out = tm.ddim(den, sig, x)
    assert out.shape == x.shape and out.dtype == x.dtype


def test_model_dtype_is_kept_and_output_in_x_dtype():
    lin = torch.nn.Linear(4, 4, bias=False).double()

    def model(z, t):
        assert z.dtype == torch.float64
        return lin(z)

    model.parameters = lin.parameters  # expose the model's dtype/device
    den = DiscreteTimeEpsModel(model, linear_abar())
    out = den(torch.ones(2, 4, dtype=torch.float32), 1.0)
    assert out.dtype == torch.float32


def test_outputs_with_sample_attribute_or_tuple():
    class Out:
        def __init__(self, sample):
            self.sample = sample

    x = torch.ones(2, 3)
    a = DiscreteTimeEpsModel(lambda z, t: Out(2 * z), linear_abar())(x, 1.0)
    b = DiscreteTimeEpsModel(lambda z, t: (2 * z,), linear_abar())(x, 1.0)
    torch.testing.assert_close(a, b)


def test_alpha_bar_one_at_t0():
    abar = torch.cat([torch.ones(1, dtype=torch.float64), linear_abar()[1:]])
    den = DiscreteTimeEpsModel(Recorder(), abar)
    assert den.sigmas[0] == 0
    s1 = float(den.sigmas[1])
    assert math.isclose(float(den.sigma_to_t(0.5 * s1)), 0.5, abs_tol=1e-12)
    assert math.isfinite(float(den.sigma_to_t(1e-6)))


@pytest.mark.parametrize(
    ("abar", "match"),
    [
        (torch.ones(3, 3), "1-D"),
        (torch.tensor([0.9]), "at least 2"),
        (torch.tensor([0.9, 0.95, 0.5]), "strictly decreasing"),
        (torch.tensor([0.9, 0.9, 0.5]), "strictly decreasing"),
        (torch.tensor([1.2, 0.5]), r"\(0, 1\]"),
        (torch.tensor([0.5, 0.0]), r"\(0, 1\]"),
        (torch.tensor([0.5, float("nan")]), "finite"),
    ],
)
def test_bad_alphas_cumprod(abar, match):
    with pytest.raises(ValueError, match=match):
        DiscreteTimeEpsModel(Recorder(), abar)


@pytest.mark.parametrize("sigma", [0.02, 0.7, 25.0, torch.tensor([0.02, 0.7, 25.0])])
def test_clip_sample_returns_the_eps_of_the_clipped_estimate(sigma):
    """With a model whose x̂0 = x − σ ε is known (ε = 0.5 z), clip_sample gives
    ε' = (x − clamp(x̂0, −r, r))/σ: x̂0 is kept inside the bound and clamped outside."""
    r = 0.75
    plain = DiscreteTimeEpsModel(Recorder(), linear_abar())
    clipped = DiscreteTimeEpsModel(Recorder(), linear_abar(), clip_sample=True, clip_sample_range=r)
    x = torch.linspace(-4, 4, 3 * 16, dtype=torch.float64).reshape(3, 1, 4, 4)
    s = torch.as_tensor(sigma, dtype=torch.float64).expand(3).reshape(3, 1, 1, 1)
    x0 = x - s * plain(x, sigma)
    expected = (x - x0.clamp(-r, r)) / s
    torch.testing.assert_close(clipped(x, sigma), expected, rtol=0, atol=0)
    inside = x0.abs() <= r
    assert 0 < int(inside.sum()) < inside.numel()  # both branches are exercised
    assert "clip_sample_range=0.75" in repr(clipped) and "clip" not in repr(plain)


def test_bad_arguments():
    with pytest.raises(ValueError, match="timestep"):
        DiscreteTimeEpsModel(Recorder(), linear_abar(), timestep="round")
    with pytest.raises(TypeError, match="clip_sample"):
        DiscreteTimeEpsModel(Recorder(), linear_abar(), clip_sample=None)
    with pytest.raises(ValueError, match="clip_sample_range"):
        DiscreteTimeEpsModel(Recorder(), linear_abar(), clip_sample=True, clip_sample_range=0)
    with pytest.raises(TypeError, match="model"):
        DiscreteTimeEpsModel(3, linear_abar())
    den = DiscreteTimeEpsModel(lambda z, t: z[:1], linear_abar())
    with pytest.raises(ValueError, match="shape"):
        den(torch.ones(2, 3), 1.0)
    ok = DiscreteTimeEpsModel(Recorder(), linear_abar())
    with pytest.raises(ValueError, match="sigma"):
        ok(torch.ones(2, 3), 0.0)
    with pytest.raises(ValueError, match="sigma"):
        ok(torch.ones(2, 3), torch.ones(3))
    with pytest.raises(ValueError, match="x must have shape"):
        ok(torch.ones(3), 1.0)


def test_device_mismatch_is_a_clear_error():
    lin = torch.nn.Linear(3, 3, device="meta")

    def model(z, t):
        return z

    model.parameters = lin.parameters
    den = DiscreteTimeEpsModel(model, linear_abar())
    with pytest.raises(ValueError, match="device"):
        den(torch.ones(2, 3), 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    lin = torch.nn.Linear(6, 6)
    den_cpu = DiscreteTimeEpsModel(lambda z, t: lin(z) * (1 + t[:, None] / 1000), linear_abar())
    lin_gpu = torch.nn.Linear(6, 6).cuda()
    lin_gpu.load_state_dict(lin.state_dict())
    den_gpu = DiscreteTimeEpsModel(lambda z, t: lin_gpu(z) * (1 + t[:, None] / 1000), linear_abar())
    x = torch.randn(4, 6)
    with torch.no_grad():
        torch.testing.assert_close(den_gpu(x.cuda(), 3.3).cpu(), den_cpu(x, 3.3), rtol=1e-5, atol=1e-6)
