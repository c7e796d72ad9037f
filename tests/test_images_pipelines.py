"""The gradient-estimation schedulers in Stable Diffusion, SDXL, SD3 and Flux pipelines (THEORY §5, §7).

Every pipeline is a real diffusers pipeline class built offline from configs
(:func:`toymanifold.images.tiny_pipeline`: random UNet/transformer, VAE, CLIP and T5
text encoders, tokenizers with a character vocabulary), run from prompt strings with
classifier-free guidance. Its latents must equal the σ-space run
``tm.gradient_estimation(classifier_free_guidance(from_diffusers(model, config), ...))``
started from the same noise, to float32 rounding.
"""

import math

import pytest
import torch

import toymanifold as tm

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from diffusers import FlowMatchEulerDiscreteScheduler  # noqa: E402

from toymanifold.images import (  # noqa: E402
    DiscreteTimeModel,
    FlowMatchGradientEstimationScheduler,
    FlowMatchModel,
    GradientEstimationScheduler,
    classifier_free_guidance,
    from_diffusers,
    tiny_pipeline,
)

EPS32 = 2.0**-24  # float32 unit roundoff
PROMPT, NEGATIVE = "a photo of a cat", "blurry"
SCALE = 5.0  # guidance scale
SIZE = dict(height=16, width=16)


def tolerance(n_steps, magnitude, scale):
    """Rounding budget for the pipeline and the σ-space run of the same N steps in float32.

    The two compute the same operations in a different order (z ↔ x rescaling, the
    batched guidance, the update): each step rounds values of size ``magnitude`` (the
    largest |latent| along the run, in the pipeline's own variable) a few times, and the
    network passes such errors on with a gain of order one. Guidance multiplies errors in
    ``ε_c`` and ``ε_u`` by up to ``|1 − s| + |s|``. 8 roundings per step is a generous
    count; a wrong timestep, σ or conversion changes the latents by orders of magnitude
    more.
    """
    return 8 * n_steps * EPS32 * magnitude * (abs(1.0 - scale) + abs(scale))


_PIPES = {}


def pipeline(kind, prediction_type=None):
    """A fresh scheduler on a cached tiny pipeline (building one takes a moment)."""
    key = (kind, prediction_type)
    if key not in _PIPES:
        _PIPES[key] = tiny_pipeline(kind, prediction_type=prediction_type)
    pipe = _PIPES[key]
    if kind in ("stable-diffusion-3", "flux"):
        pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    return pipe


def guided_latents(pipe, start, steps):
    """The pipeline's latents for two images of PROMPT against NEGATIVE, guided with SCALE, from ``start``."""
    return pipe(
        PROMPT,
        negative_prompt=NEGATIVE,
        num_images_per_prompt=2,
        num_inference_steps=steps,
        guidance_scale=SCALE,
        latents=start,
        output_type="latent",
        **SIZE,
    ).images


def vp_conditioning(pipe, kind):
    """(cond, uncond) for ``classifier_free_guidance`` from the pipeline's own text encoders."""
    if kind == "stable-diffusion":
        cond, uncond = pipe.encode_prompt(PROMPT, "cpu", 1, True, NEGATIVE)
        return cond, uncond
    cond, uncond, pooled, negative_pooled = pipe.encode_prompt(
        PROMPT, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True, negative_prompt=NEGATIVE
    )
    # SDXL's micro-conditioning: original size, crop top-left, target size
    time_ids = torch.tensor([[SIZE["height"], SIZE["width"], 0, 0, SIZE["height"], SIZE["width"]]], dtype=cond.dtype)
    return (
        {"encoder_hidden_states": cond, "added_cond_kwargs": {"text_embeds": pooled, "time_ids": time_ids}},
        {"encoder_hidden_states": uncond, "added_cond_kwargs": {"text_embeds": negative_pooled, "time_ids": time_ids}},
    )


@pytest.mark.parametrize("steps", [5, 10])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("kind", ["stable-diffusion", "stable-diffusion-xl"])
def test_vp_pipeline_step_equals_gradient_estimation(kind, prediction_type, steps):
    pipe = pipeline(kind, prediction_type)
    pipe.scheduler = GradientEstimationScheduler.from_config(pipe.scheduler.config)
    assert pipe.scheduler.config.prediction_type == prediction_type
    z_N = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    latents = guided_latents(pipe, z_N, steps)
    sigmas = pipe.scheduler.sigmas
    assert len(sigmas) == steps + 1

    cond, uncond = vp_conditioning(pipe, kind)
    den = from_diffusers(pipe.unet, pipe.scheduler.config)
    assert isinstance(den, DiscreteTimeModel) and den.prediction == prediction_type
    guided = classifier_free_guidance(den, cond, uncond, SCALE)
    # the pipeline starts at z_N (init_noise_sigma = 1): x_N = z_N √(1 + σ_N²)
    traj = tm.gradient_estimation(guided, sigmas, z_N * math.sqrt(1.0 + float(sigmas[0]) ** 2), return_trajectory=True)
    z_scale = (1.0 + sigmas**2).rsqrt().to(torch.float32).reshape(-1, 1, 1, 1, 1)
    expected = traj.final * float(z_scale[-1])
    magnitude = float((traj.xs * z_scale).abs().max())
    torch.testing.assert_close(latents, expected, rtol=0, atol=tolerance(steps, magnitude, SCALE))
    assert float(latents.std()) > 0.1


@pytest.mark.parametrize("steps", [5, 10])
def test_sd3_pipeline_step_equals_gradient_estimation(steps):
    pipe = pipeline("stable-diffusion-3")
    pipe.scheduler = FlowMatchGradientEstimationScheduler.from_config(pipe.scheduler.config)
    assert pipe.scheduler.config.shift == 3.0
    x_N = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    latents = guided_latents(pipe, x_N, steps)
    sigmas = pipe.scheduler.sigmas
    # log-linear from 3·40 to 3·0.05 (SD3's shift, σ' = s σ), then 0
    torch.testing.assert_close(sigmas[:-1], 3.0 * tm.schedules.loglinear(40.0, 0.05, steps - 1), rtol=1e-15, atol=0)
    assert float(sigmas[-1]) == 0.0

    cond, uncond, pooled, negative_pooled = pipe.encode_prompt(
        PROMPT, None, None, device="cpu", do_classifier_free_guidance=True, negative_prompt=NEGATIVE
    )
    den = from_diffusers(pipe.transformer, pipe.scheduler.config)
    assert isinstance(den, FlowMatchModel) and den.timestep_scale == 1000.0
    guided = classifier_free_guidance(
        den,
        {"encoder_hidden_states": cond, "pooled_projections": pooled},
        {"encoder_hidden_states": uncond, "pooled_projections": negative_pooled},
        SCALE,
    )
    # the pipeline starts at x_t = ξ: x_N = (1 + σ_N) ξ
    traj = tm.gradient_estimation(guided, sigmas, x_N * (1.0 + float(sigmas[0])), return_trajectory=True)
    flow_scale = (1.0 / (1.0 + sigmas)).to(torch.float32).reshape(-1, 1, 1, 1, 1)
    magnitude = float((traj.xs * flow_scale).abs().max())
    torch.testing.assert_close(latents, traj.final, rtol=0, atol=tolerance(steps, magnitude, SCALE))
    assert float(latents.std()) > 0.1


@pytest.mark.parametrize("steps", [5, 10])
def test_flux_pipeline_step_equals_gradient_estimation(steps):
    """Flux: dynamic shifting (σ' = e^μ σ), packed latents, guidance distilled into the transformer."""
    pipe = pipeline("flux")
    pipe.scheduler = FlowMatchGradientEstimationScheduler.from_config(pipe.scheduler.config)
    assert pipe.scheduler.config.use_dynamic_shifting
    x_N, image_ids = pipe.prepare_latents(2, 4, 16, 16, torch.float32, "cpu", torch.Generator().manual_seed(1))
    latents = pipe(
        PROMPT,
        num_images_per_prompt=2,
        num_inference_steps=steps,
        guidance_scale=3.5,
        latents=x_N,
        output_type="latent",
        **SIZE,
    ).images
    sigmas = pipe.scheduler.sigmas
    mu = diffusers.pipelines.flux.pipeline_flux.calculate_shift(x_N.shape[1], 256, 4096, 0.5, 1.15)
    torch.testing.assert_close(
        sigmas[:-1], math.exp(mu) * tm.schedules.loglinear(40.0, 0.05, steps - 1), rtol=1e-14, atol=0
    )

    prompt_embeds, pooled, text_ids = pipe.encode_prompt(PROMPT, None, device="cpu", num_images_per_prompt=2)
    den = from_diffusers(
        pipe.transformer,
        pipe.scheduler.config,
        encoder_hidden_states=prompt_embeds,
        pooled_projections=pooled,
        txt_ids=text_ids,
        img_ids=image_ids,
        guidance=torch.full((2,), 3.5),
    )
    assert den.timestep_scale == 1.0  # Flux's transformer takes t itself
    traj = tm.gradient_estimation(den, sigmas, x_N * (1.0 + float(sigmas[0])), return_trajectory=True)
    flow_scale = (1.0 / (1.0 + sigmas)).to(torch.float32).reshape(-1, 1, 1, 1)
    magnitude = float((traj.xs * flow_scale).abs().max())
    torch.testing.assert_close(latents, traj.final, rtol=0, atol=tolerance(steps, magnitude, 1.0))
    assert float(latents.std()) > 0.1


@pytest.mark.parametrize("steps", [5, 10])
@pytest.mark.parametrize("kind", ["stable-diffusion", "stable-diffusion-xl", "stable-diffusion-3", "flux"])
def test_pipelines_run_end_to_end_with_gradient_estimation(kind, steps):
    pipe = pipeline(kind)
    flow = kind in ("stable-diffusion-3", "flux")
    scheduler = FlowMatchGradientEstimationScheduler if flow else GradientEstimationScheduler
    pipe.scheduler = scheduler.from_config(pipe.scheduler.config)
    calls = []
    model = pipe.transformer if flow else pipe.unet
    hook = model.register_forward_hook(lambda module, args, kwargs, out: calls.append(1), with_kwargs=True)
    try:
        images = pipe(
            [PROMPT, "a dog"],
            num_inference_steps=steps,
            output_type="np",
            generator=torch.Generator().manual_seed(0),
            **SIZE,
        ).images
    finally:
        hook.remove()
    assert images.shape == (2, 16, 16, 3) and bool(torch.isfinite(torch.from_numpy(images)).all())
    assert len(calls) == steps  # one (batched) model call per step
    assert len(pipe.scheduler.timesteps) == steps


def test_guided_sigma_space_run_makes_one_unet_call_per_step():
    pipe = pipeline("stable-diffusion-xl")
    pipe.scheduler = GradientEstimationScheduler.from_config(pipe.scheduler.config)
    pipe.scheduler.set_timesteps(10)
    batches = []
    hook = pipe.unet.register_forward_hook(
        lambda module, args, kwargs, out: batches.append(kwargs["sample"].shape[0]), with_kwargs=True
    )
    try:
        cond, uncond = vp_conditioning(pipe, "stable-diffusion-xl")
        guided = classifier_free_guidance(from_diffusers(pipe.unet, pipe.scheduler.config), cond, uncond, SCALE)
        x_N = float(pipe.scheduler.sigmas[0]) * torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(2))
        tm.gradient_estimation(guided, pipe.scheduler.sigmas, x_N)
    finally:
        hook.remove()
    assert batches == [6] * 10


def test_flow_scheduler_with_gamma_one_is_flow_match_euler():
    """γ = 1 is DDIM in σ-space, which is the flow's Euler step (THEORY §7): diffusers'
    ``FlowMatchEulerDiscreteScheduler`` on the same times gives the same latents."""
    pipe = pipeline("stable-diffusion-3")
    x_N = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    run = dict(negative_prompt=NEGATIVE, num_inference_steps=6, guidance_scale=SCALE, output_type="latent", **SIZE)
    pipe.scheduler = FlowMatchGradientEstimationScheduler.from_config(pipe.scheduler.config, gamma=1.0)
    ours = pipe(PROMPT, latents=x_N, **run).images
    sigmas = pipe.scheduler.sigmas
    ts = (sigmas[:-1] / (1.0 + sigmas[:-1])).tolist()  # t = σ/(1+σ), already shifted
    pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config, shift=1.0)
    euler = pipe(PROMPT, latents=x_N, sigmas=ts, **run).images
    torch.testing.assert_close(ours, euler, rtol=0, atol=tolerance(6, float(x_N.abs().max()), SCALE))
    pipe.scheduler = FlowMatchGradientEstimationScheduler.from_config(pipe.scheduler.config)
    ge = pipe(PROMPT, latents=x_N, **run).images
    assert float((ge - euler).abs().max()) > 1e-3  # γ = 2 is another sampler


@pytest.mark.parametrize(
    "config, mu",
    [
        (dict(shift=3.0), None),
        (dict(use_dynamic_shifting=True), 0.8),
        (dict(use_dynamic_shifting=True, time_shift_type="linear"), 1.7),
    ],
)
def test_flow_scheduler_shift_is_diffusers_shift(config, mu):
    """diffusers shifts t (t' = s t/(1 + (s−1) t), or its dynamic forms); in σ-space that is σ' = s σ."""
    ours = FlowMatchGradientEstimationScheduler.from_config(FlowMatchEulerDiscreteScheduler(**config).config)
    ours.set_timesteps(8, mu=mu)
    s = {None: 3.0, 0.8: math.exp(0.8), 1.7: 1.7}[mu]
    assert ours.shift == s
    unshifted = tm.schedules.loglinear(40.0, 0.05, 7)
    torch.testing.assert_close(ours.sigmas[:-1], s * unshifted, rtol=1e-15, atol=0)
    euler = FlowMatchEulerDiscreteScheduler(**config)
    euler.set_timesteps(sigmas=(unshifted / (1 + unshifted)).tolist(), mu=mu)  # unshifted t; diffusers shifts them
    t_shifted = euler.sigmas[:-1].double()
    # diffusers rounds t to float32: σ = t/(1 − t) has relative error ≈ u/(1 − t) = u (1 + σ)
    rtol = 8 * EPS32 * (1 + float(ours.sigmas[0]))
    torch.testing.assert_close(t_shifted / (1 - t_shifted), ours.sigmas[:-1], rtol=rtol, atol=0)
    torch.testing.assert_close(ours.timesteps, euler.timesteps, rtol=4 * EPS32 * (1 + float(ours.sigmas[0])), atol=0)


def test_from_diffusers_picks_the_parameterization():
    sd = pipeline("stable-diffusion", "v_prediction")
    den = from_diffusers(sd.unet, sd.scheduler.config)
    assert type(den) is DiscreteTimeModel and den.prediction == "v_prediction"
    assert "prediction='v_prediction'" in repr(den) and "UNet2DConditionModel" in repr(den)
    assert from_diffusers(sd.unet, dict(sd.scheduler.config, prediction_type="sample")).prediction == "sample"
    sd3 = pipeline("stable-diffusion-3")
    assert isinstance(from_diffusers(sd3.transformer, sd3.scheduler.config), FlowMatchModel)
    ours = FlowMatchGradientEstimationScheduler.from_config(sd3.scheduler.config)
    assert from_diffusers(sd3.transformer, ours.config).timestep_scale == 1000.0
    assert from_diffusers(sd3.transformer, {"num_train_timesteps": 1000, "shift": 3.0}).timestep_scale == 1000.0
    assert from_diffusers(sd3.transformer, sd3.scheduler.config, timestep_scale=1.0).timestep_scale == 1.0
    with pytest.raises(ValueError, match="invert_sigmas"):
        from_diffusers(sd3.transformer, dict(sd3.scheduler.config, invert_sigmas=True))
    with pytest.raises(ValueError, match="invert_sigmas"):
        FlowMatchGradientEstimationScheduler.from_config(dict(sd3.scheduler.config, invert_sigmas=True))
    with pytest.raises(ValueError, match="discrete-time"):
        from_diffusers(sd3.transformer, sd3.scheduler.config, clip_sample=True)
    with pytest.raises(ValueError, match="flow-matching"):
        from_diffusers(sd.unet, sd.scheduler.config, timestep_scale=1.0)
    with pytest.raises(ValueError, match="in_channels"):
        from_diffusers(sd3.transformer, sd3.scheduler.config, data_shape=(3, 8, 8))
    with pytest.raises(ValueError, match="in_channels"):
        from_diffusers(sd.unet, sd.scheduler.config)(torch.zeros(1, 3, 8, 8), 1.0)
    with pytest.raises(TypeError, match="diffusers model"):
        from_diffusers(lambda x, t: x, sd.scheduler.config)


def test_flow_scheduler_bad_input_and_config_round_trip(tmp_path):
    with pytest.raises(ValueError, match="gamma"):
        FlowMatchGradientEstimationScheduler(gamma=0.0)
    with pytest.raises(ValueError, match="sigma_min"):
        FlowMatchGradientEstimationScheduler(sigma_min=50.0)
    with pytest.raises(ValueError, match="use_flow_sigmas"):
        FlowMatchGradientEstimationScheduler(use_flow_sigmas=False)
    sched = FlowMatchGradientEstimationScheduler(use_dynamic_shifting=True)
    with pytest.raises(ValueError, match="mu"):
        sched.set_timesteps(5)
    with pytest.raises(ValueError, match="own schedule"):
        sched.set_timesteps(5, sigmas=[1.0, 0.5], mu=1.0)
    with pytest.raises(ValueError, match="set_timesteps"):
        FlowMatchGradientEstimationScheduler().step(torch.zeros(1, 1), 1.0, torch.zeros(1, 1))
    sched = FlowMatchGradientEstimationScheduler(shift=3.0, gamma=2.4)
    sched.set_timesteps(5)
    with pytest.raises(ValueError, match="not in this schedule"):
        sched.step(torch.zeros(1, 1), 500.0, torch.zeros(1, 1))
    with pytest.raises(ValueError, match="in order"):
        sched.step(torch.zeros(1, 1), sched.timesteps[2], torch.zeros(1, 1))
    with pytest.raises(ValueError, match="begin_index"):
        sched.set_begin_index(2)
    sched.save_pretrained(tmp_path)
    again = FlowMatchGradientEstimationScheduler.from_pretrained(tmp_path)
    assert again.config.shift == 3.0 and again.config.gamma == 2.4
