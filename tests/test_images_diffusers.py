"""diffusers integration: GradientEstimationScheduler and from_diffusers (THEORY §1, §5)."""

import math
import sys

import pytest
import torch

import toymanifold as tm

diffusers = pytest.importorskip("diffusers")
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, PNDMScheduler, UNet2DModel  # noqa: E402

from toymanifold.images import GradientEstimationScheduler, from_diffusers  # noqa: E402

EPS32 = 2.0**-24  # float32 unit roundoff


def tolerance(dtype, n_steps, magnitude):
    """Rounding budget for two float computations of the same N-step run.

    Both sides compute the same operations in a different order (z ↔ x rescaling,
    lerp, the update): each step rounds values of size ``magnitude`` (the largest |x|
    along the run, ≈ σ_N |ξ|) a few times, and the UNet passes such errors on with a
    gain of order one. 8 roundings per step is a generous count; a wrong timestep or σ
    changes the output by orders of magnitude more. The float64 runs pin the
    algorithm itself down to 1e-10 relative.
    """
    u = EPS32 if dtype == torch.float32 else 1e-10 / 8
    return 8 * max(n_steps, 1) * u * magnitude


def tiny_unet(seed=0, sample_size=8, channels=1):
    torch.manual_seed(seed)
    return UNet2DModel(
        sample_size=sample_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    ).eval()


@pytest.fixture(scope="module")
def saved_pipeline(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddpm")
    DDPMPipeline(unet=tiny_unet(), scheduler=DDPMScheduler(num_train_timesteps=1000)).save_pretrained(folder)
    return folder


def load(folder):
    pipe = DDPMPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("steps", [1, 10])
def test_pipeline_equals_gradient_estimation_through_from_diffusers(saved_pipeline, steps, dtype):
    pipe = load(saved_pipeline)
    pipe.unet.to(dtype)
    pipe.scheduler = GradientEstimationScheduler.from_config(pipe.scheduler.config)
    assert isinstance(pipe.scheduler, GradientEstimationScheduler)
    images = pipe(
        batch_size=3, generator=torch.Generator().manual_seed(7), num_inference_steps=steps, output_type="pt"
    ).images

    sched = pipe.scheduler
    sigmas = sched.sigmas
    assert len(sigmas) == steps + 1 and len(sched.timesteps) == steps
    # the schedule is made of table values σ(t) at the timesteps the UNet receives
    den = from_diffusers(pipe.unet, pipe.scheduler.config, data_shape=(1, 8, 8))
    torch.testing.assert_close(sigmas[:-1], den.sigmas[sched.timesteps], rtol=0, atol=0)

    xi = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(7), dtype=dtype)
    x_N = xi * math.sqrt(1.0 + float(sigmas[0]) ** 2)  # z_N = ξ  ⇔  x_N = ξ/√ᾱ
    traj = tm.gradient_estimation(den, sigmas, x_N, gamma=2.0, return_trajectory=True)
    z0 = traj.final / math.sqrt(1.0 + float(sigmas[-1]) ** 2)
    expected = (z0 / 2 + 0.5).clamp(0, 1)
    atol = tolerance(dtype, steps, float(traj.xs.abs().max()))
    torch.testing.assert_close(images, expected, rtol=0, atol=atol)
    assert float((images - 0.5).abs().max()) > 0.01  # a non-trivial image


def test_scheduler_step_is_the_shared_section5_step(saved_pipeline, monkeypatch):
    """The §5 update is written once: the scheduler's step goes through ``tm.sample_step``."""
    import toymanifold.images.scheduler as scheduler_module

    calls = []

    def counting_step(*args, **kwargs):
        calls.append(kwargs.get("eps_prev") is None)
        return tm.sample_step(*args, **kwargs)

    monkeypatch.setattr(scheduler_module, "sample_step", counting_step)
    pipe = load(saved_pipeline)
    pipe.unet.to(torch.float64)
    pipe.scheduler = GradientEstimationScheduler.from_config(pipe.scheduler.config)
    pipe(batch_size=1, generator=torch.Generator().manual_seed(0), num_inference_steps=4, output_type="pt")
    assert calls == [True, False, False, False]  # one call per step; ε̄ = ε only on the first


def test_ddpm_variant_matches_tm_ddpm_with_shared_noise(saved_pipeline):
    pipe = load(saved_pipeline)
    pipe.unet.to(torch.float64)
    pipe.scheduler = GradientEstimationScheduler.from_config(pipe.scheduler.config, gamma=1.0, mu=0.5)
    images = pipe(
        batch_size=2, generator=torch.Generator().manual_seed(3), num_inference_steps=6, output_type="pt"
    ).images
    sigmas = pipe.scheduler.sigmas
    g = torch.Generator().manual_seed(3)
    xi = torch.randn(2, 1, 8, 8, generator=g, dtype=torch.float64)  # the pipeline's z_N; g then feeds the noise
    den = from_diffusers(pipe.unet, pipe.scheduler.config)
    traj = tm.ddpm(den, sigmas, xi * math.sqrt(1.0 + float(sigmas[0]) ** 2), generator=g, return_trajectory=True)
    z0 = traj.final / math.sqrt(1.0 + float(sigmas[-1]) ** 2)
    expected = (z0 / 2 + 0.5).clamp(0, 1)
    torch.testing.assert_close(images, expected, rtol=0, atol=tolerance(torch.float64, 6, float(traj.xs.abs().max())))


def test_paper_schedule_recipe():
    """THEORY §5 on linear betas: the paper code's timesteps, table values σ(t_k), a final σ(0)."""
    sched = GradientEstimationScheduler.from_config(DDPMScheduler().config)
    sched.set_timesteps(10)
    full = [*sched.timesteps.tolist(), 0]
    assert full == [853, 765, 665, 549, 415, 271, 149, 73, 33, 14, 0]
    assert torch.equal(sched.sigmas, sched.train_sigmas[torch.tensor(full)])
    assert sched.sigmas[-1] == sched.train_sigmas[0] and sched.init_noise_sigma == 1.0
    sched.set_timesteps(5)
    assert sched.timesteps.tolist() == [853, 652, 380, 116, 22]
    # the σ the pipeline steps through are tm.schedules.paper(N, dataset, discrete=True)
    for n, dataset, kw in [(10, "cifar10", {}), (20, "cifar10", {}), (20, "celeba", dict(gamma=2.4, sigma_max=100.0))]:
        sched = GradientEstimationScheduler.from_config(DDPMScheduler().config, **kw)
        sched.set_timesteps(n)
        sigmas, gamma = tm.schedules.paper(n, dataset, discrete=True)
        assert torch.equal(sched.sigmas, sigmas) and sched.config.gamma == gamma
        assert len(sched.timesteps) == n and bool((sched.timesteps[1:] < sched.timesteps[:-1]).all())
    with pytest.warns(UserWarning, match="merged"):
        sched.set_timesteps(100)
    assert sched.num_inference_steps == len(sched.timesteps) < 100


@pytest.mark.parametrize("clip", [False, True])
def test_pipeline_equals_sigma_space_run_on_the_paper_sigmas(saved_pipeline, clip):
    """``tm.gradient_estimation(from_diffusers(unet, cfg), paper(N, discrete=True), x)``
    takes the pipeline's steps, with and without ``clip_sample`` (float64)."""
    pipe = load(saved_pipeline)
    pipe.unet.to(torch.float64)
    pipe.scheduler = GradientEstimationScheduler.from_config(pipe.scheduler.config, clip_sample=clip)
    assert pipe.scheduler.config.clip_sample is clip
    images = pipe(
        batch_size=2, generator=torch.Generator().manual_seed(5), num_inference_steps=10, output_type="pt"
    ).images
    sigmas, gamma = tm.schedules.paper(10, "cifar10", discrete=True)
    den = from_diffusers(pipe.unet, pipe.scheduler.config, clip_sample=clip)
    xi = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    traj = tm.gradient_estimation(
        den, sigmas, xi * math.sqrt(1.0 + float(sigmas[0]) ** 2), gamma=gamma, return_trajectory=True
    )
    z0 = traj.final / math.sqrt(1.0 + float(sigmas[-1]) ** 2)
    expected = (z0 / 2 + 0.5).clamp(0, 1)
    torch.testing.assert_close(images, expected, rtol=0, atol=tolerance(torch.float64, 10, float(traj.xs.abs().max())))
    # the clip is active on this model: the other setting gives other images
    other = from_diffusers(pipe.unet, pipe.scheduler.config, clip_sample=not clip)
    z0_other = tm.gradient_estimation(other, sigmas, traj.xs[0], gamma=gamma) / math.sqrt(1.0 + float(sigmas[-1]) ** 2)
    assert float((z0_other - z0).abs().max()) > 1e-3


def test_clip_sample_in_sigma_space_is_the_clipped_denoised_estimate():
    """ε_clip = (x − clamp(x − σ ε, −r, r))/σ: x̂0 of the clipped ε lies in [−r, r] and
    equals x − σ ε where that is inside."""
    unet = tiny_unet(2).double()
    den = from_diffusers(unet, DDPMScheduler().config)
    clipped = from_diffusers(unet, DDPMScheduler().config, clip_sample=True, clip_sample_range=0.5)
    x = 3 * torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for sigma in (0.05, 1.0, 30.0):
        with torch.no_grad():
            eps, eps_c = den(x, sigma), clipped(x, sigma)
        x0, x0_c = x - sigma * eps, x - sigma * eps_c
        inside = x0.abs() <= 0.5
        assert 0 < int(inside.sum()) < inside.numel()
        # x − σ (x − c)/σ returns c up to a few roundings of |x|
        atol = 1e-12 * max(1.0, float(x.abs().max()))
        torch.testing.assert_close(x0_c[inside], x0[inside], rtol=0, atol=atol)
        torch.testing.assert_close(x0_c[~inside], 0.5 * x0[~inside].sign(), rtol=0, atol=atol)
    assert "clip_sample_range=0.5" in repr(clipped)


def test_clip_sample_is_not_taken_over_from_other_configs(tmp_path):
    ddpm = DDPMScheduler()  # diffusers' default: clip_sample=True
    assert ddpm.config.clip_sample is True
    assert GradientEstimationScheduler.from_config(ddpm.config).config.clip_sample is False
    assert GradientEstimationScheduler.from_config(ddpm.config, clip_sample=True).config.clip_sample is True
    sched = GradientEstimationScheduler(clip_sample=True, clip_sample_range=2.0)
    sched.save_pretrained(tmp_path)
    again = GradientEstimationScheduler.from_pretrained(tmp_path)
    assert again.config.clip_sample is True and again.config.clip_sample_range == 2.0
    assert GradientEstimationScheduler.from_config(sched.config).config.clip_sample is True


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_linspace_schedule_and_gamma_one_is_ddim(dtype):
    sched = GradientEstimationScheduler(gamma=1.0, timestep_schedule="linspace")
    sched.set_timesteps(10)
    assert sched.timesteps.tolist() == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    unet = tiny_unet(1).to(dtype)
    den = from_diffusers(unet, sched.config)
    xi = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=dtype)
    z = xi.clone()
    with torch.no_grad():
        for t in sched.timesteps:
            z = sched.step(unet(z, t).sample, t, z).prev_sample
    traj = tm.ddim(den, sched.sigmas, xi * math.sqrt(1 + float(sched.sigmas[0]) ** 2), return_trajectory=True)
    expected = traj.final / math.sqrt(1 + float(sched.sigmas[-1]) ** 2)
    torch.testing.assert_close(z, expected, rtol=0, atol=tolerance(dtype, 10, float(traj.xs.abs().max())))


@pytest.mark.parametrize(
    "config",
    [
        # Stable Diffusion v1's PNDM config and its DDIM config
        dict(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            num_train_timesteps=1000,
            skip_prk_steps=True,
            set_alpha_to_one=False,
            steps_offset=1,
            trained_betas=None,
        ),
        "ddim",
        "cosine",
    ],
)
def test_from_config_of_other_schedulers(config):
    if config == "ddim":
        config = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).config
    elif config == "cosine":
        config = DDPMScheduler(beta_schedule="squaredcos_cap_v2").config
    else:
        config = PNDMScheduler(**config).config
    sched = GradientEstimationScheduler.from_config(config)
    ref = DDPMScheduler.from_config(config).alphas_cumprod.double()
    torch.testing.assert_close(sched.alphas_cumprod, ref, rtol=0, atol=0)
    sched.set_timesteps(20, device="cpu")
    assert sched.timesteps.dtype == torch.int64 and len(sched.timesteps) == 20
    # σ_max is clipped to the model's largest σ (≈ 14.6 for Stable Diffusion's betas)
    assert float(sched.sigmas[0]) <= float(sched.train_sigmas[-1])
    z = torch.randn(1, 4, 2, 2)
    out = sched.step(torch.zeros_like(z), sched.timesteps[0], z)
    assert out.prev_sample.shape == z.shape


def test_save_and_reload_config(tmp_path):
    sched = GradientEstimationScheduler(gamma=2.4, sigma_max=100.0)
    sched.save_pretrained(tmp_path)
    again = GradientEstimationScheduler.from_pretrained(tmp_path)
    assert again.config.gamma == 2.4 and again.config.sigma_max == 100.0


def test_scheduler_bad_input():
    with pytest.raises(ValueError, match="gamma"):
        GradientEstimationScheduler(gamma=0.0)
    with pytest.raises(ValueError, match="mu"):
        GradientEstimationScheduler(mu=1.0)
    with pytest.raises(ValueError, match="prediction_type"):
        GradientEstimationScheduler(prediction_type="v_prediction")
    sched = GradientEstimationScheduler()
    with pytest.raises(ValueError, match="set_timesteps"):
        sched.step(torch.zeros(1, 1), 10, torch.zeros(1, 1))
    sched.set_timesteps(5)
    with pytest.raises(ValueError, match="not in this schedule"):
        sched.step(torch.zeros(1, 1), 1, torch.zeros(1, 1))
    with pytest.raises(ValueError, match="in order"):
        sched.step(torch.zeros(1, 1), sched.timesteps[2], torch.zeros(1, 1))
    with pytest.raises(ValueError, match="num_inference_steps"):
        sched.set_timesteps(0)
    with pytest.raises(TypeError, match="clip_sample"):
        GradientEstimationScheduler(clip_sample=1)
    with pytest.raises(ValueError, match="clip_sample_range"):
        GradientEstimationScheduler(clip_sample_range=0.0)


def test_from_diffusers_bad_input():
    unet = tiny_unet()
    good = DDPMScheduler().config
    with pytest.raises(ValueError, match="num_train_timesteps"):
        from_diffusers(unet, {"prediction_type": "epsilon"})
    with pytest.raises(ValueError, match="beta_schedule"):
        from_diffusers(unet, {"num_train_timesteps": 1000})
    with pytest.raises(ValueError, match="beta_start"):
        from_diffusers(unet, {"num_train_timesteps": 1000, "beta_schedule": "linear"})
    with pytest.raises(ValueError, match="epsilon"):
        from_diffusers(unet, dict(good, prediction_type="v_prediction"))
    with pytest.raises(TypeError, match="scheduler config"):
        from_diffusers(unet, [1, 2])
    with pytest.raises(ValueError, match="sample_size"):
        from_diffusers(unet, good, data_shape=(1, 16, 16))
    with pytest.raises(ValueError, match="channels"):
        from_diffusers(unet, good, data_shape=(3, 8, 8))
    with pytest.raises(TypeError, match="clip_sample"):
        from_diffusers(unet, good, clip_sample="yes")
    with pytest.raises(ValueError, match="clip_sample_range"):
        from_diffusers(unet, good, clip_sample=True, clip_sample_range=-1.0)
    den = from_diffusers(unet, good)
    with pytest.raises(ValueError, match="sample_size"):
        den(torch.zeros(2, 1, 16, 16), 1.0)
    with pytest.raises(ValueError, match="in_channels"):
        den(torch.zeros(2, 3, 8, 8), 1.0)


def test_images_imports_without_diffusers(monkeypatch):
    import importlib

    # a fresh import of toymanifold.images with diffusers unavailable (restored afterwards)
    monkeypatch.setitem(sys.modules, "diffusers", None)
    # the re-import below rebinds tm.images; monkeypatch puts the original back afterwards
    monkeypatch.setattr(tm, "images", sys.modules["toymanifold.images"])
    for name in [m for m in sys.modules if m.startswith("toymanifold.images")]:
        monkeypatch.delitem(sys.modules, name)
    images = importlib.import_module("toymanifold.images")
    den = images.DiscreteTimeEpsModel(lambda z, t: z, torch.tensor([0.9, 0.5]))
    assert den(torch.ones(1, 2), 1.0).shape == (1, 2)
    with pytest.raises(ImportError, match=r"pip install toymanifold\[images\]"):
        images.GradientEstimationScheduler  # noqa: B018
    with pytest.raises(ImportError, match=r"pip install toymanifold\[images\]"):
        images.from_diffusers(None, {"num_train_timesteps": 2, "trained_betas": [0.1, 0.2]})
