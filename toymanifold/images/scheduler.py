"""A diffusers scheduler for the gradient-estimation sampler (THEORY §5).

``pipe.scheduler = GradientEstimationScheduler.from_config(pipe.scheduler.config)``
turns a DDPM, DDIM, PNDM or Stable-Diffusion pipeline into a gradient-estimation
sampler with the paper's schedule (:func:`toymanifold.schedules.paper_timesteps`).
Needs the optional ``images`` extra.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ._optional import require

_diffusers = require("diffusers", "GradientEstimationScheduler")
from diffusers.configuration_utils import ConfigMixin, register_to_config  # noqa: E402
from diffusers.schedulers.scheduling_utils import KarrasDiffusionSchedulers, SchedulerMixin  # noqa: E402
from diffusers.utils import BaseOutput  # noqa: E402
from diffusers.utils.torch_utils import randn_tensor  # noqa: E402

from ..samplers import sample_step  # noqa: E402
from ..schedules import paper_timesteps  # noqa: E402
from .adapters import alphas_cumprod_from_config  # noqa: E402

__all__ = ["GradientEstimationScheduler", "GradientEstimationSchedulerOutput"]

TIMESTEP_SCHEDULES = ("paper", "linspace")

# Config keys taken from a config only if it is this scheduler's own (see from_config).
_NOT_INHERITED = ("clip_sample", "clip_sample_range")


@dataclass
class GradientEstimationSchedulerOutput(BaseOutput):
    """Output of :meth:`GradientEstimationScheduler.step`.

    ``prev_sample``: ``z_{t−1}`` (the pipeline's next model input);
    ``pred_original_sample``: ``x̂0 = x_t − σ_t ε̄_t`` (data space, THEORY §1).
    """

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor | None = None


class GradientEstimationScheduler(SchedulerMixin, ConfigMixin):
    """The gradient-estimation sampler of THEORY §5 as a diffusers scheduler.

    The pipeline works in the z-space of discrete-time models
    (``z_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε``); each :meth:`step` converts to the
    σ-parameterization ``x = z/√ᾱ_t = z √(1 + σ_t²)`` (THEORY §1), makes the update

    ``ε̄_t = ε_t`` (first step) or ``γ ε_t + (1 − γ) ε_{t+1}``,
    ``σ' = (σ_{t−1}/σ_t^μ)^{1/(1−μ)}``, ``ζ = √(σ_{t−1}² − σ'²)``,
    ``x_{t−1} = x_t − (σ_t − σ') ε̄_t + ζ ξ``,

    and returns ``z_{t−1} = x_{t−1}/√(1 + σ_{t−1}²)``. Every σ is a table value
    ``σ(t) = √((1 − ᾱ_t)/ᾱ_t)`` (float64 from the model's ᾱ) at the integer timestep
    the UNet receives, so the result equals
    ``tm.gradient_estimation(tm.images.from_diffusers(unet, config, clip_sample=...),
    scheduler.sigmas, √(1 + σ_N²) ξ)`` rescaled to z (the pipeline starts at
    ``z_N = ξ``, i.e. ``init_noise_sigma = 1``, as diffusers' DDIM does; that is
    ``x_N = √(1 + σ_N²) ξ`` rather than ``σ_N ξ``, a relative difference
    ``≈ 1/(2σ_N²)``). For the paper's model, ``scheduler.sigmas`` is
    ``tm.schedules.paper(N, dataset, discrete=True)[0]``.

    Parameters (config)
    -------------------
    num_train_timesteps, beta_start, beta_end, beta_schedule, trained_betas, rescale_betas_zero_snr
        The model's betas, as in diffusers' DDPM/DDIM schedulers.
    prediction_type : "epsilon"
        Only ε-prediction models are supported.
    gamma : float
        γ of THEORY §5 (2 = gradient estimation, 1 = DDIM). The paper's CelebA table
        uses 2.0 at 5–10 steps, 2.4 at 20 and 2.8 at 50.
    mu : float in [0, 1)
        μ of THEORY §5 (0 = deterministic; 0.5 with γ = 1 = DDPM).
    sigma_max : float
        Largest σ of the paper's log-linear schedule (clipped to ``σ(T − 1)``); the
        paper uses 40 on CIFAR-10 (THEORY §5), the default here.
    timestep_schedule : {"paper", "linspace"}
        ``"paper"``: THEORY §5's recipe (:func:`toymanifold.schedules.paper_timesteps`;
        σ_max = 40 and 10 steps on linear betas: 853, 765, 665, 549, 415, 271, 149, 73,
        33, 14, then 0). ``"linspace"``: the DDIM grid ``t_k = ⌊linspace(T − 1, 0, N + 1)⌋``
        (from ``σ(T − 1)``, ``sigma_max`` unused), for DDIM comparisons with ``gamma=1``;
        it is the paper code's DDIM baseline (σ_max = 157 maps to ``T − 1`` there).
    clip_sample : bool
        Clip ``x̂0 = x_t − σ_t ε_t`` to ``[−clip_sample_range, clip_sample_range]`` and use
        ``ε_t = (x_t − x̂0)/σ_t`` from the clipped ``x̂0`` (in the update and as the next
        step's ``ε_{t+1}``), as the paper's scheduler does by default. Default ``False``:
        the plain update above. The σ-space equivalent is
        ``from_diffusers(..., clip_sample=True)``. Unlike other keys, ``clip_sample`` and
        ``clip_sample_range`` are not taken over from another scheduler's config in
        :meth:`from_config` (diffusers' DDPM and DDIM configs say ``True``); pass them as
        keywords.
    clip_sample_range : float
        The clipping bound (1 for data in [−1, 1]).

    Examples
    --------
    >>> pipe.scheduler = GradientEstimationScheduler.from_config(pipe.scheduler.config)  # doctest: +SKIP
    >>> images = pipe(num_inference_steps=10).images                                      # doctest: +SKIP
    """

    _compatibles: ClassVar[list[str]] = [e.name for e in KarrasDiffusionSchedulers]
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas: Any = None,
        rescale_betas_zero_snr: bool = False,
        prediction_type: str = "epsilon",
        gamma: float = 2.0,
        mu: float = 0.0,
        sigma_max: float = 40.0,
        timestep_schedule: str = "paper",
        clip_sample: bool = False,
        clip_sample_range: float = 1.0,
    ) -> None:
        if not (isinstance(gamma, (int, float)) and gamma > 0):
            raise ValueError(f"gamma must be > 0, got {gamma!r}")
        if not (isinstance(mu, (int, float)) and 0.0 <= mu < 1.0):
            raise ValueError(f"mu must lie in [0, 1), got {mu!r}")
        if not (isinstance(sigma_max, (int, float)) and sigma_max > 0):
            raise ValueError(f"sigma_max must be > 0, got {sigma_max!r}")
        if timestep_schedule not in TIMESTEP_SCHEDULES:
            raise ValueError(f"timestep_schedule must be one of {TIMESTEP_SCHEDULES}, got {timestep_schedule!r}")
        if not isinstance(clip_sample, bool):
            raise TypeError(f"clip_sample must be a bool, got {type(clip_sample).__name__}")
        if not (isinstance(clip_sample_range, (int, float)) and clip_sample_range > 0):
            raise ValueError(f"clip_sample_range must be > 0, got {clip_sample_range!r}")
        cfg = {
            "num_train_timesteps": num_train_timesteps,
            "beta_start": beta_start,
            "beta_end": beta_end,
            "beta_schedule": beta_schedule,
            "trained_betas": trained_betas,
            "rescale_betas_zero_snr": rescale_betas_zero_snr,
            "prediction_type": prediction_type,
        }
        #: ᾱ_t, float64 (as diffusers computes it, promoted)
        self.alphas_cumprod = alphas_cumprod_from_config(cfg, "scheduler config")
        if bool((self.alphas_cumprod <= 0).any()):
            raise ValueError("alphas_cumprod must be > 0 everywhere (rescale_betas_zero_snr gives σ(T−1) = inf)")
        #: σ(t) for t = 0 … T − 1 (float64, increasing)
        self.train_sigmas = ((1.0 - self.alphas_cumprod) / self.alphas_cumprod).sqrt()
        self.init_noise_sigma = 1.0
        self.num_inference_steps: int | None = None
        self.timesteps: torch.Tensor | None = None
        #: σ of the inference schedule, σ_N … σ_0 (float64, length N + 1, ends at σ(0))
        self.sigmas: torch.Tensor | None = None
        self._index: dict[int, int] = {}
        self._eps_prev: torch.Tensor | None = None
        self._last: int | None = None

    @classmethod
    def from_config(cls, config: Any = None, return_unused_kwargs: bool = False, **kwargs):
        """diffusers' ``from_config``, except that ``clip_sample``/``clip_sample_range`` of
        another scheduler's config are not taken over (they stay at their defaults unless
        passed as keywords); a saved ``GradientEstimationScheduler`` config keeps its own."""
        cfg = getattr(config, "config", config)
        if isinstance(cfg, Mapping) and cfg.get("_class_name", cls.__name__) != cls.__name__:
            cfg = {k: v for k, v in cfg.items() if k not in _NOT_INHERITED}
        return super().from_config(cfg, return_unused_kwargs=return_unused_kwargs, **kwargs)

    # -- schedule ---------------------------------------------------------------------

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None, **kwargs) -> None:
        """Build the schedule of ``num_inference_steps`` model evaluations (THEORY §5)."""
        if kwargs.get("timesteps") is not None or kwargs.get("sigmas") is not None:
            raise ValueError("GradientEstimationScheduler builds its own schedule; pass num_inference_steps only")
        T = self.config.num_train_timesteps
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int):
            raise TypeError(f"num_inference_steps must be an integer, got {type(num_inference_steps).__name__}")
        if not 1 <= num_inference_steps < T:
            raise ValueError(f"num_inference_steps must lie in [1, {T - 1}], got {num_inference_steps}")
        if self.config.timestep_schedule == "paper":
            ts = paper_timesteps(num_inference_steps, self.config.sigma_max, self.alphas_cumprod)
        else:
            # N ≤ T − 1: the grid's spacing is ≥ 1, so the floors are distinct
            ts = torch.from_numpy(np.floor(np.linspace(T - 1, 0, num_inference_steps + 1)).astype(np.int64))
        self.num_inference_steps = int(ts.shape[0] - 1)
        self._timesteps_full = ts
        self.sigmas = self.train_sigmas[ts]
        self.timesteps = ts[:-1].to(device)
        self._index = {int(t): i for i, t in enumerate(ts[:-1].tolist())}
        self._eps_prev = None
        self._last = None

    def scale_model_input(self, sample: torch.Tensor, timestep: Any = None) -> torch.Tensor:
        """Identity: the UNet takes ``z`` as the pipeline holds it."""
        return sample

    # -- update -----------------------------------------------------------------------

    def step(
        self,
        model_output: torch.Tensor,
        timestep: Any,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
        **kwargs,
    ) -> GradientEstimationSchedulerOutput | tuple:
        """One update of THEORY §5 from ``z_t`` (``sample``) and ``ε_t`` (``model_output``)."""
        if self.timesteps is None:
            raise ValueError("call set_timesteps(num_inference_steps) before step()")
        t = int(timestep)
        if t not in self._index:
            raise ValueError(f"timestep {t} is not in this schedule's timesteps {self.timesteps.tolist()}")
        i = self._index[t]
        if i == 0:
            self._eps_prev = None
        elif self._last != i - 1:
            raise ValueError(f"steps must be taken in order: got timestep {t} (step {i}) after step {self._last}")
        if model_output.shape != sample.shape:
            raise ValueError(f"model_output has shape {tuple(model_output.shape)}, sample {tuple(sample.shape)}")
        gamma, mu = float(self.config.gamma), float(self.config.mu)
        s, s_prev = float(self.sigmas[i]), float(self.sigmas[i + 1])
        eps = model_output
        x = sample * math.sqrt(1.0 + s * s)
        if self.config.clip_sample:
            r = float(self.config.clip_sample_range)
            eps = (x - (x - s * eps).clamp(-r, r)) / s

        def noise() -> torch.Tensor:
            # drawn on the generator's device, as tm.sample does, then moved
            gen_device = generator.device if generator is not None else sample.device
            xi = randn_tensor(sample.shape, generator=generator, device=gen_device, dtype=sample.dtype)
            return xi.to(sample.device)

        x_prev, eps_bar = sample_step(x, eps, s, s_prev, eps_prev=self._eps_prev, gamma=gamma, mu=mu, noise=noise)
        x0_hat = x - s * eps_bar
        prev = x_prev / math.sqrt(1.0 + s_prev * s_prev)
        self._eps_prev = eps
        self._last = i
        if not return_dict:
            return (prev,)
        return GradientEstimationSchedulerOutput(prev_sample=prev, pred_original_sample=x0_hat)

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """``z_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε`` (for img2img-style pipelines)."""
        a = self.alphas_cumprod.to(original_samples.device)[timesteps.to(original_samples.device)]
        a = a.to(original_samples.dtype).reshape(-1, *([1] * (original_samples.ndim - 1)))
        return a.sqrt() * original_samples + (1.0 - a).sqrt() * noise

    def __len__(self) -> int:
        return self.config.num_train_timesteps
