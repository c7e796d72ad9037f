"""THEORY §7: ε-, x0-, v- and flow-prediction models, classifier-free guidance and CFG++ in σ-space.

The same closed-form ideal denoiser (of a finite set of 16-dimensional points) is
written as a network in every parameterization; through the adapters each must give
the σ-space ε back, so every sampler gives the same samples.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import toymanifold as tm
from toymanifold.images import (
    DiscreteTimeEpsModel,
    DiscreteTimeModel,
    FlowMatchModel,
    classifier_free_guidance,
)
from toymanifold.images.parameterizations import (
    eps_from_velocity,
    eps_from_vp_output,
    flow_t_from_sigma,
    shift_sigmas,
    sigma_from_flow_t,
)

N_DIM = 16
ABAR = tm.schedules.alphas_cumprod(1000, "linear")  # float64
TABLE = ((1.0 - ABAR) / ABAR).sqrt()  # σ(t), t = 0 … 999
K = tm.FiniteSet(torch.randn(32, N_DIM, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
IDEAL = tm.ideal_denoiser(K)


# ----------------------------------------------------------------------------- the networks
# Each "network" is the ideal denoiser of K written in a model's own variables: it
# receives what that model receives (z and an integer timestep, or x_t and 1000 t) and
# returns what it predicts.


def _x_and_sigma(z, t):
    s = TABLE[t.long()].reshape(-1, 1)
    return z * (1.0 + s * s).sqrt(), s  # x = z/√ᾱ


def eps_network(z, t):
    x, s = _x_and_sigma(z, t)
    return IDEAL(x, s.reshape(-1))


def x0_network(z, t):
    x, s = _x_and_sigma(z, t)
    return x - s * IDEAL(x, s.reshape(-1))


def v_network(z, t):
    x, s = _x_and_sigma(z, t)
    eps = IDEAL(x, s.reshape(-1))
    sqrt_abar, sqrt_one_minus_abar = 1.0 / (1.0 + s * s).sqrt(), s / (1.0 + s * s).sqrt()
    return sqrt_abar * eps - sqrt_one_minus_abar * (x - s * eps)  # v = √ᾱ ε − √(1−ᾱ) x0


def velocity_network(x_t, timestep):
    t = (timestep / 1000.0).reshape(-1, 1)
    s = t / (1.0 - t)
    x = x_t / (1.0 - t)
    eps = IDEAL(x, s.reshape(-1))
    return eps - (x - s * eps)  # v = ε − x0


def table_schedule(n_steps):
    """The paper's schedule on this table: every σ is a table entry, so every timestep rule is exact."""
    return TABLE[tm.schedules.paper_timesteps(n_steps, 40.0, ABAR)]


@pytest.mark.parametrize("rule", ["paper", "interpolate", "nearest"])
@pytest.mark.parametrize("n_steps", [5, 10])
def test_every_parameterization_gives_the_eps_form_samples(rule, n_steps):
    """x0-, v- and flow networks of the same ideal denoiser sample as the ε-form (float64, 1e-9)."""
    sigmas = table_schedule(n_steps)
    x_N = float(sigmas[0]) * torch.randn(64, N_DIM, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    eps_form = DiscreteTimeEpsModel(eps_network, ABAR, timestep=rule)
    others = {
        "sample": DiscreteTimeModel(x0_network, ABAR, prediction="sample", timestep=rule),
        "v_prediction": DiscreteTimeModel(v_network, ABAR, prediction="v_prediction", timestep=rule),
        "flow": FlowMatchModel(velocity_network, timestep_scale=1000.0),
    }
    for sampler in (tm.gradient_estimation, tm.ddim):
        reference = sampler(eps_form, sigmas, x_N)
        # the ε-form is the ideal denoiser itself on table σ
        torch.testing.assert_close(reference, sampler(IDEAL, sigmas, x_N), rtol=0, atol=1e-9)
        for name, den in others.items():
            torch.testing.assert_close(sampler(den, sigmas, x_N), reference, rtol=0, atol=1e-9, msg=name)
        # a non-trivial run: from dist_K ≈ σ_N √n ≈ 160 to K's neighbourhood
        assert float(K.distance(reference).median()) < 0.02 * float(K.distance(x_N).median())


def test_flow_model_feeds_x_t_and_scaled_t():
    seen = []

    def net(x_t, timestep):
        seen.append((x_t.clone(), timestep.clone()))
        return torch.zeros_like(x_t)

    x = torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    den = FlowMatchModel(net, timestep_scale=1.0)
    eps = den(x, 3.0)
    x_t, timestep = seen[-1]
    torch.testing.assert_close(x_t, x / 4.0, rtol=0, atol=0)  # x_t = x/(1 + σ)
    torch.testing.assert_close(timestep, torch.full((3,), 0.75, dtype=torch.float64), rtol=0, atol=0)  # t = σ/(1+σ)
    torch.testing.assert_close(eps, x_t)  # v = 0: ε = x_t
    x32 = x.float()
    FlowMatchModel(net)(x32, torch.tensor([1.0, 3.0, 9.0]))
    assert seen[-1][1].dtype == torch.float32
    torch.testing.assert_close(seen[-1][1], torch.tensor([500.0, 750.0, 900.0]))
    assert "timestep_scale=1" in repr(den)


@settings(max_examples=60, deadline=None)
@given(
    t_index=st.integers(0, 999),
    seed=st.integers(0, 2**31 - 1),
    prediction=st.sampled_from(["epsilon", "sample", "v_prediction"]),
)
def test_vp_conversion_recovers_the_noise(t_index, seed, prediction):
    """z_t = √ᾱ x0 + √(1−ᾱ) ε: the network's target in each parameterization converts back to ε (THEORY §7)."""
    g = torch.Generator().manual_seed(seed)
    x0, eps = torch.randn(2, 2, N_DIM, generator=g, dtype=torch.float64)
    sigma = float(TABLE[t_index])
    sqrt_abar, sqrt_one_minus_abar = math.sqrt(float(ABAR[t_index])), math.sqrt(1.0 - float(ABAR[t_index]))
    z = sqrt_abar * x0 + sqrt_one_minus_abar * eps
    x = z / sqrt_abar
    torch.testing.assert_close(x, x0 + sigma * eps, rtol=1e-12, atol=1e-12)  # THEORY §1
    target = {"epsilon": eps, "sample": x0, "v_prediction": sqrt_abar * eps - sqrt_one_minus_abar * x0}[prediction]
    # (x − x0)/σ loses digits as σ → 0: the bound scales with 1/σ
    atol = 1e-12 * max(1.0, float(x.abs().max()) / sigma)
    torch.testing.assert_close(eps_from_vp_output(prediction, target, x, sigma), eps, rtol=0, atol=atol)
    # a (B,) float64 σ gives the same
    s = torch.full((2,), sigma, dtype=torch.float64)
    torch.testing.assert_close(eps_from_vp_output(prediction, target, x, s), eps, rtol=0, atol=atol)


@settings(max_examples=60, deadline=None)
@given(t=st.floats(1e-4, 1.0 - 1e-4), shift=st.floats(0.1, 10.0), seed=st.integers(0, 2**31 - 1))
def test_flow_conversion_and_shift(t, shift, seed):
    """x_t = (1−t) x0 + t ε, v = ε − x0: σ = t/(1−t), x = x_t/(1−t), ε = x_t + (1−t) v; shift is σ' = s σ."""
    g = torch.Generator().manual_seed(seed)
    x0, eps = torch.randn(2, 3, N_DIM, generator=g, dtype=torch.float64)
    x_t = (1 - t) * x0 + t * eps
    sigma = sigma_from_flow_t(t)
    assert math.isclose(flow_t_from_sigma(sigma), t, rel_tol=1e-14)
    torch.testing.assert_close(x_t / (1 - t), x0 + sigma * eps, rtol=1e-12, atol=1e-12 / (1 - t))
    torch.testing.assert_close(eps_from_velocity(eps - x0, x_t, sigma), eps, rtol=0, atol=1e-13 / (1 - t))
    t_shifted = shift * t / (1 + (shift - 1) * t)  # diffusers' FlowMatchEulerDiscreteScheduler
    assert math.isclose(sigma_from_flow_t(t_shifted), shift_sigmas(sigma, shift), rel_tol=1e-12 / (1 - t_shifted))


# ----------------------------------------------------------------------------- guidance


def conditional_ideal(x, sigma, c):
    """The ideal denoiser of the translated set K + c, per sample: a class-conditional model."""
    return IDEAL(x - c, sigma)


def conditional_v_network(z, t, c):
    x, s = _x_and_sigma(z, t)
    eps = conditional_ideal(x, s.reshape(-1), c)
    a, b = 1.0 / (1.0 + s * s).sqrt(), s / (1.0 + s * s).sqrt()
    return a * eps - b * (x - s * eps)


class Counting:
    """A conditional denoiser that counts its calls and the batch sizes it sees."""

    def __init__(self, den):
        self.den, self.batches = den, []

    def __call__(self, x, sigma, c):
        self.batches.append(x.shape[0])
        return self.den(x, sigma, c)


def _conds(batch=4):
    g = torch.Generator().manual_seed(5)
    return torch.randn(batch, N_DIM, generator=g, dtype=torch.float64), torch.zeros(1, N_DIM, dtype=torch.float64)


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("scale", [0.0, 1.0, 3.0, 7.5])
def test_guided_eps_is_the_cfg_formula(batched, scale):
    cond, uncond = _conds()
    x = 3.0 * torch.randn(4, N_DIM, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    guided = classifier_free_guidance(conditional_ideal, cond, uncond, scale, batched=batched)
    for sigma in (0.05, 1.0, 20.0, torch.tensor([0.1, 0.5, 2.0, 9.0], dtype=torch.float64)):
        eps_c = conditional_ideal(x, sigma, cond)
        eps_u = conditional_ideal(x, sigma, uncond.expand(4, N_DIM))
        expected = eps_u + scale * (eps_c - eps_u)
        eps_g, eps_u_out = guided.guided_and_unconditional(x, sigma)
        torch.testing.assert_close(guided(x, sigma), expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(eps_g, expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(eps_u_out, eps_u, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sampler", [tm.gradient_estimation, tm.ddim, tm.gradient_estimation_cfg_pp])
def test_batched_guidance_makes_one_model_call_per_step(sampler):
    cond, uncond = _conds()
    sigmas = table_schedule(10)
    x_N = float(sigmas[0]) * torch.randn(4, N_DIM, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    counting = Counting(conditional_ideal)
    sampler(classifier_free_guidance(counting, cond, uncond, 2.0), sigmas, x_N)
    assert counting.batches == [8] * 10  # N calls for N steps, each on [x; x]
    two = Counting(conditional_ideal)
    out_two = sampler(classifier_free_guidance(two, cond, uncond, 2.0, batched=False), sigmas, x_N)
    assert two.batches == [4] * 20
    out_one = sampler(classifier_free_guidance(conditional_ideal, cond, uncond, 2.0), sigmas, x_N)
    torch.testing.assert_close(out_one, out_two, rtol=0, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(t_index=st.integers(0, 999), scale=st.floats(-2.0, 12.0), seed=st.integers(0, 2**31 - 1))
def test_guiding_v_outputs_equals_guiding_eps(t_index, scale, seed):
    """THEORY §7: the conversions are affine in the output, so guiding v (as diffusers' pipelines do)
    and converting gives the guided ε."""
    g = torch.Generator().manual_seed(seed)
    x = 3.0 * torch.randn(3, N_DIM, generator=g, dtype=torch.float64)
    cond, uncond = torch.randn(2, 3, N_DIM, generator=g, dtype=torch.float64)
    den = DiscreteTimeModel(conditional_v_network, ABAR, prediction="v_prediction", timestep="paper")
    sigma = float(TABLE[t_index])
    z = x / math.sqrt(1.0 + sigma * sigma)
    t = torch.full((3,), t_index)
    v_u, v_c = conditional_v_network(z, t, uncond), conditional_v_network(z, t, cond)
    via_v = eps_from_vp_output("v_prediction", v_u + scale * (v_c - v_u), x, sigma)
    guided = classifier_free_guidance(den, cond, uncond, scale)(x, sigma)
    atol = 1e-12 * (abs(1 - scale) + abs(scale)) * max(1.0, float(x.abs().max()))
    torch.testing.assert_close(guided, via_v, rtol=0, atol=atol)


def test_conditioning_mappings_broadcast_and_concatenate():
    seen = []

    def den(x, sigma, c):
        seen.append(c)
        return x * c["scale"] + c["extra"]["shift"]

    cond = {"scale": torch.full((1, 1), 2.0), "extra": {"shift": torch.ones(3, 1)}, "flag": True}
    uncond = {"scale": torch.ones(1, 1), "extra": {"shift": torch.zeros(1, 1)}, "flag": True}
    x = torch.ones(3, 1)
    out = classifier_free_guidance(den, cond, uncond, 4.0)(x, 1.0)
    torch.testing.assert_close(out, torch.full((3, 1), 1.0 + 4.0 * 2.0))  # ε_u = 1, ε_c = 3
    c = seen[-1]
    assert c["scale"].shape == (6, 1) and c["extra"]["shift"].shape == (6, 1) and c["flag"] is True
    torch.testing.assert_close(c["scale"][:, 0], torch.tensor([1.0, 1, 1, 2, 2, 2]))  # [uncond; cond]


def test_guidance_rescale_is_diffusers_rescale_noise_cfg():
    pytest.importorskip("diffusers")
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

    cond, uncond = _conds()
    x = 3.0 * torch.randn(4, N_DIM, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    guided = classifier_free_guidance(conditional_ideal, cond, uncond, 7.5, guidance_rescale=0.7)
    eps_c, eps_u = conditional_ideal(x, 2.0, cond), conditional_ideal(x, 2.0, uncond)
    expected = rescale_noise_cfg(eps_u + 7.5 * (eps_c - eps_u), eps_c, guidance_rescale=0.7)
    torch.testing.assert_close(guided(x, 2.0), expected, rtol=0, atol=1e-12)
    assert (
        float((guided(x, 2.0) - classifier_free_guidance(conditional_ideal, cond, uncond, 7.5)(x, 2.0)).abs().max())
        > 0.1
    )


def comfy_gradient_estimation_cfg_pp(guided, x, sigmas, gamma):
    """ComfyUI's ``sample_gradient_estimation(..., cfg_pp=True)`` written out in k-diffusion's variables
    (``denoised = x − σ ε``, ``d = (x − denoised_u)/σ``), for schedules that do not reach 0."""
    old_d = None
    for i in range(len(sigmas) - 1):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        eps_g, eps_u = guided.guided_and_unconditional(x, s)
        denoised, denoised_u = x - s * eps_g, x - s * eps_u
        d = (x - denoised_u) / s
        x = denoised + d * s_next
        if i >= 1:
            x = x + (gamma - 1) * (d - old_d) * (s_next - s)
        old_d = d
    return x


@pytest.mark.parametrize("gamma", [1.0, 2.0, 2.4])
def test_cfg_pp_gradient_estimation_is_comfyuis(gamma):
    cond, uncond = _conds()
    guided = classifier_free_guidance(conditional_ideal, cond, uncond, 1.5)
    sigmas = table_schedule(10)
    x_N = float(sigmas[0]) * torch.randn(4, N_DIM, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    out = tm.gradient_estimation_cfg_pp(guided, sigmas, x_N, gamma=gamma)
    torch.testing.assert_close(out, comfy_gradient_estimation_cfg_pp(guided, x_N, sigmas, gamma), rtol=0, atol=1e-10)
    if gamma == 1.0:  # THEORY §7: x_{t−1} = (x_t − σ_t ε_g) + σ_{t−1} ε_u
        x = x_N
        for s, s_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
            eps_g, eps_u = guided.guided_and_unconditional(x, s)
            x = (x - s * eps_g) + s_next * eps_u
        torch.testing.assert_close(out, x, rtol=0, atol=1e-10)


def test_cfg_pp_without_guidance_is_gradient_estimation():
    """cond = uncond: ε_g = ε_u, and CFG++ gradient estimation is gradient estimation."""
    cond, _ = _conds()
    guided = classifier_free_guidance(conditional_ideal, cond, cond, 5.0)
    sigmas = torch.cat([table_schedule(8)[:-1], torch.zeros(1, dtype=torch.float64)])  # ends in 0 as well
    x_N = float(sigmas[0]) * torch.randn(4, N_DIM, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    traj = tm.gradient_estimation_cfg_pp(guided, sigmas, x_N, return_trajectory=True)
    ref = tm.gradient_estimation(guided, sigmas, x_N, return_trajectory=True)
    torch.testing.assert_close(traj.final, ref.final, rtol=0, atol=1e-10)
    torch.testing.assert_close(traj.eps_bar, ref.eps_bar, rtol=0, atol=1e-9)
    assert traj.nfe == 8 and tm.nfe(tm.gradient_estimation_cfg_pp, sigmas) == 8


def test_bad_input():
    with pytest.raises(ValueError, match="prediction"):
        DiscreteTimeModel(eps_network, ABAR, prediction="velocity")
    with pytest.raises(ValueError, match="timestep_scale"):
        FlowMatchModel(velocity_network, timestep_scale=0.0)
    with pytest.raises(TypeError, match="model"):
        FlowMatchModel(3)
    with pytest.raises(ValueError, match="shape"):
        FlowMatchModel(lambda x_t, t: x_t[:1])(torch.ones(2, 3), 1.0)
    with pytest.raises(ValueError, match="sigma"):
        FlowMatchModel(velocity_network)(torch.ones(2, 3), 0.0)
    cond, uncond = _conds()
    with pytest.raises(ValueError, match="same shape"):
        classifier_free_guidance(conditional_ideal, cond, uncond[:, :3], 2.0)
    with pytest.raises(ValueError, match="same keys"):
        classifier_free_guidance(conditional_ideal, {"a": cond}, {"b": uncond}, 2.0)
    with pytest.raises(TypeError, match="cond"):
        classifier_free_guidance(conditional_ideal, [1.0], uncond, 2.0)
    with pytest.raises(ValueError, match="scale"):
        classifier_free_guidance(conditional_ideal, cond, uncond, float("nan"))
    with pytest.raises(ValueError, match="guidance_rescale"):
        classifier_free_guidance(conditional_ideal, cond, uncond, 2.0, guidance_rescale=1.5)
    with pytest.raises(ValueError, match="leading size"):
        classifier_free_guidance(conditional_ideal, cond, uncond, 2.0)(torch.ones(3, N_DIM, dtype=torch.float64), 1.0)
    with pytest.raises(TypeError, match="guided_and_unconditional"):
        tm.gradient_estimation_cfg_pp(IDEAL, table_schedule(5), torch.ones(2, N_DIM, dtype=torch.float64))


def test_adapters_take_a_sigma_list_and_empty_batches():
    x = 3.0 * torch.randn(2, N_DIM, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    for den in (
        DiscreteTimeModel(x0_network, ABAR, prediction="sample", timestep="paper"),
        FlowMatchModel(velocity_network),
    ):
        s = [float(TABLE[100]), float(TABLE[700])]
        torch.testing.assert_close(den(x, s), den(x, torch.tensor(s, dtype=torch.float64)), rtol=0, atol=0)
        empty = den(torch.empty(0, N_DIM, dtype=torch.float64), 1.0)
        assert empty.shape == (0, N_DIM) and empty.dtype == torch.float64


def test_a_non_finite_eps_from_finite_x_is_an_error():
    """ε = (x − o)/σ beyond float32's range, an overflowing network, a guidance scale too large: a ValueError."""
    x0_model = DiscreteTimeModel(lambda z, t: torch.tanh(z), ABAR, prediction="sample")
    with pytest.raises(ValueError, match=r"non-finite ε for finite x at sigma = 1e-30"):
        x0_model(torch.full((1, 4), 1e30), 1e-30)
    overflowing = FlowMatchModel(lambda x_t, t: torch.exp(1e3 * x_t))
    with pytest.raises(ValueError, match="FlowMatchModel gave a non-finite"):
        overflowing(torch.ones(2, 4), 1.0)
    cond, uncond = _conds()
    too_strong = classifier_free_guidance(conditional_ideal, cond.float(), uncond.float(), 1e300)
    with pytest.raises(ValueError, match="scale = 1e"):
        too_strong(torch.ones(4, N_DIM), 1.0)
