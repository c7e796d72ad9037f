"""diffusers schedulers for the gradient-estimation sampler (THEORY §5, §7).

``pipe.scheduler = GradientEstimationScheduler.from_config(pipe.scheduler.config)``
turns a DDPM, DDIM, PNDM, Stable Diffusion (1.x/2.x, ε or v) or SDXL pipeline into a
gradient-estimation sampler with the paper's schedule
(:func:`toymanifold.schedules.paper_timesteps`);
``pipe.scheduler = FlowMatchGradientEstimationScheduler.from_config(pipe.scheduler.config)``
does the same for flow-matching pipelines (SD3, Flux) on a log-linear σ schedule.
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
from ..schedules import loglinear, paper_timesteps  # noqa: E402
from .adapters import alphas_cumprod_from_config  # noqa: E402
from .parameterizations import (  # noqa: E402
    PREDICTION_TYPES,
    eps_from_velocity,
    eps_from_vp_output,
    flow_input_scale,
    flow_t_from_sigma,
    shift_sigmas,
)

__all__ = [
    "FlowMatchGradientEstimationScheduler",
    "GradientEstimationScheduler",
    "GradientEstimationSchedulerOutput",
]

TIMESTEP_SCHEDULES = ("paper", "linspace")

# Config keys taken from a config only if it is this scheduler's own (see from_config).
_NOT_INHERITED = ("clip_sample", "clip_sample_range")


@dataclass
class GradientEstimationSchedulerOutput(BaseOutput):
    """Output of :meth:`GradientEstimationScheduler.step`.

    ``prev_sample``: the pipeline's next model input (``z_{t−1}``, or the flow's
    ``x_{t'}``); ``pred_original_sample``: ``x̂0 = x − σ ε̄`` (data space, THEORY §1).
    """

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor | None = None


class _GEStepping:
    """What both schedulers' ``step`` shares: find the step of a timestep, take steps in order,
    keep the previous step's ε (THEORY §5's ``ε_{t+1}``), and return diffusers' output."""

    timesteps: torch.Tensor | None
    _index: dict
    _eps_prev: torch.Tensor | None
    _last: int | None

    def _start_schedule(self, keys: list) -> None:
        self._index = {k: i for i, k in enumerate(keys)}
        self._eps_prev = None
        self._last = None

    def _step_index(self, t: Any, model_output: torch.Tensor, sample: torch.Tensor) -> int:
        if self.timesteps is None:
            raise ValueError("call set_timesteps(num_inference_steps) before step()")
        if t not in self._index:
            raise ValueError(f"timestep {t} is not in this schedule's timesteps {self.timesteps.tolist()}")
        i = self._index[t]
        if i == 0:
            self._eps_prev = None
        elif self._last != i - 1:
            raise ValueError(f"steps must be taken in order: got timestep {t} (step {i}) after step {self._last}")
        if model_output.shape != sample.shape:
            raise ValueError(f"model_output has shape {tuple(model_output.shape)}, sample {tuple(sample.shape)}")
        return i

    def _finish_step(self, i: int, eps: torch.Tensor, prev: torch.Tensor, x0_hat: torch.Tensor, return_dict: bool):
        self._eps_prev = eps
        self._last = i
        if not return_dict:
            return (prev,)
        return GradientEstimationSchedulerOutput(prev_sample=prev, pred_original_sample=x0_hat)

    def scale_model_input(self, sample: torch.Tensor, timestep: Any = None) -> torch.Tensor:
        """Identity: the model takes the sample as the pipeline holds it (``z`` or the flow's ``x_t``)."""
        return sample

    def __len__(self) -> int:
        return self.config.num_train_timesteps


class GradientEstimationScheduler(_GEStepping, SchedulerMixin, ConfigMixin):
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
    prediction_type : {"epsilon", "v_prediction", "sample"}
        What the model predicts; :meth:`step` turns its output into the σ-space ε by
        THEORY §7 (:func:`toymanifold.images.parameterizations.eps_from_vp_output`), so
        v-prediction checkpoints (Stable Diffusion 2.x at 768 px) run the same update.
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
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
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
        self._start_schedule([int(t) for t in ts[:-1].tolist()])

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
        """One update of THEORY §5 from ``z_t`` (``sample``) and the model's output at it.

        ``model_output`` is ε, v or x0 as the config's ``prediction_type`` says; it
        becomes the σ-space ε by THEORY §7 before the update.
        """
        i = self._step_index(int(timestep), model_output, sample)
        gamma, mu = float(self.config.gamma), float(self.config.mu)
        s, s_prev = float(self.sigmas[i]), float(self.sigmas[i + 1])
        x = sample * math.sqrt(1.0 + s * s)
        eps = eps_from_vp_output(self.config.prediction_type, model_output, x, s)
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
        return self._finish_step(i, eps, prev, x0_hat, return_dict)

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """``z_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε`` (for img2img-style pipelines)."""
        a = self.alphas_cumprod.to(original_samples.device)[timesteps.to(original_samples.device)]
        a = a.to(original_samples.dtype).reshape(-1, *([1] * (original_samples.ndim - 1)))
        return a.sqrt() * original_samples + (1.0 - a).sqrt() * noise


class FlowMatchGradientEstimationScheduler(_GEStepping, SchedulerMixin, ConfigMixin):
    """The gradient-estimation sampler of THEORY §5 for flow-matching pipelines (SD3, Flux).

    A drop-in for diffusers' ``FlowMatchEulerDiscreteScheduler``:
    ``pipe.scheduler = FlowMatchGradientEstimationScheduler.from_config(pipe.scheduler.config)``.
    The pipeline holds the flow's ``x_t = (1 − t) x0 + t ε`` and its model predicts
    ``v = ε − x0``. Each :meth:`step` converts to σ-space by THEORY §7 (``σ = t/(1 − t)``,
    ``x = x_t (1 + σ)``, ``ε = x_t + (1 − t) v``), makes the update of THEORY §5
    (``ε̄ = γ ε_t + (1 − γ) ε_{t+1}``, ``x_{t−1} = x_t − (σ_t − σ_{t−1}) ε̄``; deterministic,
    μ = 0) and returns ``x_{t'} = x_{t−1}/(1 + σ_{t−1})``. With ``gamma=1`` this is the
    flow's Euler method, i.e. ``FlowMatchEulerDiscreteScheduler``'s step, on this
    scheduler's σ.

    The schedule: ``N`` sigmas log-linear from ``sigma_max`` to ``sigma_min`` (the
    paper's log-linear spacing, THEORY §5), multiplied by the shift ``s`` (a timestep
    shift ``t' = s t/(1 + (s − 1) t)`` is exactly ``σ' = s σ``, THEORY §7), then a
    final ``σ = 0`` reached without a model call, as diffusers' flow schedulers end at
    ``t = 0``. ``s`` is the config's ``shift``, or with ``use_dynamic_shifting`` the
    resolution-dependent ``e^μ`` (``time_shift_type="exponential"``) or ``μ``
    (``"linear"``) from the ``mu`` the pipeline passes to :meth:`set_timesteps`.

    ``sigmas`` holds these σ (float64, ``N + 1`` entries, ending in 0) — the σ of
    THEORY, not the flow times ``t`` that diffusers' flow schedulers call ``sigmas`` —
    and ``timesteps`` the model's timesteps ``1000 t`` (float32). The result equals
    ``tm.gradient_estimation(tm.images.from_diffusers(transformer, config), scheduler.sigmas,
    (1 + σ_N) ξ)`` (the pipeline starts at ``x_t = ξ``, i.e. ``x_N = (1 + σ_N) ξ``, not
    ``σ_N ξ``: a relative difference ``1/σ_N``).

    Parameters (config)
    -------------------
    num_train_timesteps : int
        The model's timesteps are ``t · num_train_timesteps``.
    shift, use_dynamic_shifting, base_shift, max_shift, base_image_seq_len, max_image_seq_len, time_shift_type
        As in ``FlowMatchEulerDiscreteScheduler`` (taken over by :meth:`from_config`;
        the pipeline computes ``mu`` from the last four).
    gamma : float > 0
        γ of THEORY §5: 2 = gradient estimation (the paper's value), 1 = Euler/DDIM.
    sigma_max, sigma_min : float
        The unshifted ends of the log-linear schedule: 40 as the paper's CIFAR-10 σ_max
        (THEORY §5; ``t ≈ 0.976``, or ``0.992`` after SD3's shift 3) and 0.05, the last
        σ evaluated before the step to 0 (a choice of this scheduler, about the paper's
        ``σ_end`` at 10 steps).
    use_flow_sigmas : True
        Tells Flux-style pipelines that this scheduler builds its own σ (they then call
        :meth:`set_timesteps` without ``sigmas``); always True.

    Examples
    --------
    >>> pipe.scheduler = FlowMatchGradientEstimationScheduler.from_config(pipe.scheduler.config)  # doctest: +SKIP
    >>> images = pipe(prompt, num_inference_steps=10).images                                     # doctest: +SKIP
    """

    _compatibles: ClassVar[list[str]] = ["FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler"]
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        shift: float = 1.0,
        use_dynamic_shifting: bool = False,
        base_shift: float | None = 0.5,
        max_shift: float | None = 1.15,
        base_image_seq_len: int = 256,
        max_image_seq_len: int = 4096,
        time_shift_type: str = "exponential",
        gamma: float = 2.0,
        sigma_max: float = 40.0,
        sigma_min: float = 0.05,
        use_flow_sigmas: bool = True,
    ) -> None:
        for name, v in (("gamma", gamma), ("shift", shift), ("sigma_max", sigma_max), ("sigma_min", sigma_min)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not sigma_min < sigma_max:
            raise ValueError(f"sigma_min must be < sigma_max, got {sigma_min} and {sigma_max}")
        if time_shift_type not in ("exponential", "linear"):
            raise ValueError(f"time_shift_type must be 'exponential' or 'linear', got {time_shift_type!r}")
        if use_flow_sigmas is not True:
            raise ValueError("use_flow_sigmas must be True: this scheduler always builds its own sigmas")
        if isinstance(num_train_timesteps, bool) or not isinstance(num_train_timesteps, int) or num_train_timesteps < 1:
            raise ValueError(f"num_train_timesteps must be a positive integer, got {num_train_timesteps!r}")
        self.init_noise_sigma = 1.0
        self.num_inference_steps: int | None = None
        self.timesteps: torch.Tensor | None = None
        #: σ of the inference schedule, σ_N … σ_1, 0 (float64, length N + 1)
        self.sigmas: torch.Tensor | None = None
        #: the shift s applied by the last set_timesteps (σ' = s σ)
        self.shift: float | None = None
        self._index: dict[float, int] = {}
        self._eps_prev: torch.Tensor | None = None
        self._last: int | None = None
        self._begin_index: int | None = None

    @classmethod
    def from_config(cls, config: Any = None, return_unused_kwargs: bool = False, **kwargs):
        """diffusers' ``from_config``; refuses configs whose ``t`` runs the other way (``invert_sigmas``)."""
        cfg = getattr(config, "config", config)
        if isinstance(cfg, Mapping) and cfg.get("invert_sigmas"):
            raise ValueError("config has invert_sigmas=True (t runs from 0 to 1 while sampling); not supported")
        return super().from_config(cfg, return_unused_kwargs=return_unused_kwargs, **kwargs)

    @property
    def begin_index(self) -> int | None:
        """Set by :meth:`set_begin_index` (pipelines call it); this scheduler finds steps by timestep."""
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Accepted for pipeline compatibility; only 0 (sampling from the first step) is supported."""
        if begin_index != 0:
            raise ValueError(f"only begin_index=0 is supported (text-to-image), got {begin_index}")
        self._begin_index = begin_index

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        sigmas: Any = None,
        mu: float | None = None,
        timesteps: Any = None,
    ) -> None:
        """Build the schedule of ``num_inference_steps`` model evaluations (THEORY §5, §7).

        ``mu`` is used with ``use_dynamic_shifting`` (and then required) and ignored
        otherwise, as ``FlowMatchEulerDiscreteScheduler`` does.
        """
        if sigmas is not None or timesteps is not None:
            raise ValueError(
                "FlowMatchGradientEstimationScheduler builds its own schedule; pass num_inference_steps only"
            )
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int):
            raise TypeError(f"num_inference_steps must be an integer, got {type(num_inference_steps).__name__}")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        cfg = self.config
        if cfg.use_dynamic_shifting:
            if mu is None:
                raise ValueError("mu must be passed to set_timesteps when use_dynamic_shifting is True")
            shift = math.exp(mu) if cfg.time_shift_type == "exponential" else float(mu)
        else:
            shift = float(cfg.shift)
        n = num_inference_steps
        if n == 1:
            head = torch.tensor([float(cfg.sigma_max)], dtype=torch.float64)
        else:
            head = loglinear(float(cfg.sigma_max), float(cfg.sigma_min), n - 1)
        sigmas64 = torch.cat([shift_sigmas(head, shift), torch.zeros(1, dtype=torch.float64)])
        ts = (flow_t_from_sigma(sigmas64[:-1]) * float(cfg.num_train_timesteps)).to(torch.float32)
        if bool((ts[1:] >= ts[:-1]).any()):
            raise ValueError(f"{n} steps give repeated float32 timesteps; use fewer steps")
        self.shift = shift
        self.num_inference_steps = n
        self.sigmas = sigmas64
        self.timesteps = ts.to(device)
        self._start_schedule([float(t) for t in ts.tolist()])

    def step(
        self,
        model_output: torch.Tensor,
        timestep: Any,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
        **kwargs,
    ) -> GradientEstimationSchedulerOutput | tuple:
        """One update of THEORY §5 from the flow's ``x_t`` (``sample``) and velocity ``v`` (``model_output``).

        Computed in float32 at least (as ``FlowMatchEulerDiscreteScheduler`` does);
        returned in ``sample``'s dtype.
        """
        t = float(timestep.reshape(-1)[0]) if isinstance(timestep, torch.Tensor) else float(timestep)
        i = self._step_index(t, model_output, sample)
        work = torch.promote_types(sample.dtype, torch.float32)
        x_t, v = sample.to(work), model_output.to(work)
        s, s_prev = float(self.sigmas[i]), float(self.sigmas[i + 1])
        x = x_t * (1.0 + s)
        eps = eps_from_velocity(v, x_t, s)
        x_prev, eps_bar = sample_step(x, eps, s, s_prev, eps_prev=self._eps_prev, gamma=float(self.config.gamma))
        prev = x_prev * flow_input_scale(s_prev)
        x0_hat = x - s * eps_bar
        return self._finish_step(i, eps, prev.to(sample.dtype), x0_hat.to(sample.dtype), return_dict)
