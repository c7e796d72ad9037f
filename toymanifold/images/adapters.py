"""diffusers models as σ-space denoisers (THEORY §1): :func:`from_diffusers`.

Needs the optional ``images`` extra (``pip install toymanifold[images]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..validation import as_tensor
from ._optional import require
from .discrete import DiscreteTimeEpsModel

__all__ = ["DiffusersUNetDenoiser", "alphas_cumprod_from_config", "from_diffusers", "scheduler_config_dict"]

# Keys of a diffusers DDPM/DDIM/PNDM/... scheduler config that define ᾱ_t.
_BETA_KEYS = (
    "num_train_timesteps",
    "beta_start",
    "beta_end",
    "beta_schedule",
    "trained_betas",
    "rescale_betas_zero_snr",
)


def scheduler_config_dict(scheduler_config: Any, name: str = "scheduler_config") -> dict:
    """A plain dict from a scheduler config (dict, FrozenDict, or an object with ``.config``)."""
    cfg = getattr(scheduler_config, "config", scheduler_config)
    if not isinstance(cfg, Mapping):
        raise TypeError(
            f"{name} must be a diffusers scheduler config (a mapping such as pipe.scheduler.config) "
            f"or a scheduler, got {type(scheduler_config).__name__}"
        )
    return {k: v for k, v in cfg.items() if not str(k).startswith("_")}


def alphas_cumprod_from_config(scheduler_config: Any, name: str = "scheduler_config") -> torch.Tensor:
    """``ᾱ_t`` (float64, ``t = 0 … T − 1``) of a diffusers DDPM/DDIM/PNDM scheduler config.

    The betas are built by diffusers' own ``DDPMScheduler`` from the config's
    ``num_train_timesteps``, ``beta_schedule``, ``beta_start``, ``beta_end`` (or
    ``trained_betas``), so ``ᾱ`` is exactly what the model was trained with (diffusers
    computes it in float32; it is promoted to float64 here). A config that does not say
    how its betas are made raises ``ValueError`` (no silent defaults); so does a model
    that does not predict ε.
    """
    cfg = scheduler_config_dict(scheduler_config, name)
    if "num_train_timesteps" not in cfg:
        raise ValueError(
            f"{name} has no 'num_train_timesteps': a DDPM-style scheduler config with betas info "
            f"(num_train_timesteps, beta_schedule, beta_start, beta_end or trained_betas) is needed; "
            f"got keys {sorted(cfg)}"
        )
    if cfg.get("trained_betas") is None:
        schedule = cfg.get("beta_schedule")
        if schedule is None:
            raise ValueError(
                f"{name} has neither 'trained_betas' nor 'beta_schedule': cannot tell the model's noise levels; "
                f"got keys {sorted(cfg)}"
            )
        if schedule in ("linear", "scaled_linear", "sigmoid"):
            missing = [k for k in ("beta_start", "beta_end") if cfg.get(k) is None]
            if missing:
                raise ValueError(f"{name} has beta_schedule={schedule!r} but no {missing}; got keys {sorted(cfg)}")
    prediction = cfg.get("prediction_type", "epsilon")
    if prediction != "epsilon":
        raise ValueError(
            f"{name} has prediction_type={prediction!r}; toymanifold's image adapters need an "
            "ε-prediction model (prediction_type='epsilon')"
        )
    diffusers = require("diffusers", "alphas_cumprod_from_config")
    kwargs = {k: cfg[k] for k in _BETA_KEYS if k in cfg}
    try:
        sched = diffusers.DDPMScheduler(**kwargs)
    except (NotImplementedError, ValueError, TypeError) as exc:
        raise ValueError(f"{name}: diffusers cannot build betas from {kwargs}: {exc}") from exc
    return sched.alphas_cumprod.to(torch.float64)


def _unet_sample_shape(unet: Any) -> tuple[int, int, int]:
    cfg = getattr(unet, "config", None)
    if cfg is None or "in_channels" not in cfg or "sample_size" not in cfg:
        raise TypeError(
            f"unet must be a diffusers UNet (with config.in_channels and config.sample_size), got {type(unet).__name__}"
        )
    size = cfg["sample_size"]
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return int(cfg["in_channels"]), int(h), int(w)


class DiffusersUNetDenoiser(DiscreteTimeEpsModel):
    """A diffusers UNet as a σ-space denoiser; built by :func:`from_diffusers` (THEORY §1).

    Adds to :class:`DiscreteTimeEpsModel` a check that ``x`` has the UNet's
    ``(in_channels, sample_size, sample_size)`` shape, and optional keyword arguments
    passed to the UNet on every call (e.g. ``encoder_hidden_states``).
    """

    def __init__(
        self,
        unet: Any,
        alphas_cumprod: Any,
        timestep: str = "interpolate",
        model_kwargs: Mapping[str, Any] | None = None,
        *,
        clip_sample: bool = False,
        clip_sample_range: float = 1.0,
    ) -> None:
        self.sample_shape = _unet_sample_shape(unet)
        self.model_kwargs = dict(model_kwargs or {})
        self.unet = unet
        super().__init__(
            self._call_unet,
            alphas_cumprod,
            timestep=timestep,
            clip_sample=clip_sample,
            clip_sample_range=clip_sample_range,
        )

    def _call_unet(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(z, t, **self.model_kwargs).sample

    def _evaluate(self, x, s, s64):
        if tuple(x.shape[1:]) != self.sample_shape:
            raise ValueError(
                f"x must have shape (B, {', '.join(map(str, self.sample_shape))}) for this UNet "
                f"(in_channels, sample_size), got shape {tuple(x.shape)}"
            )
        return super()._evaluate(x, s, s64)

    # the UNet's parameters give the dtype/device used by DiscreteTimeEpsModel
    def _model_for_dtype(self):
        return self.unet


def from_diffusers(
    unet: Any,
    scheduler_config: Any,
    *,
    timestep: str = "interpolate",
    data_shape: Any = None,
    model_kwargs: Mapping[str, Any] | None = None,
    clip_sample: bool = False,
    clip_sample_range: float = 1.0,
) -> DiffusersUNetDenoiser:
    """A σ-space denoiser around a diffusers ε-prediction UNet (THEORY §1).

    ``tm.gradient_estimation``, ``tm.ddim`` and every other sampler run on the result:
    it feeds the UNet ``z = x/√(1 + σ²)`` and the timestep matching ``σ`` on the
    model's ``ᾱ_t`` table (see :class:`DiscreteTimeEpsModel` for the rules).

    Parameters
    ----------
    unet : diffusers.UNet2DModel (or any diffusers UNet returning ``.sample``)
        Used where it is, with its dtype and device; ``x`` must be on its device.
    scheduler_config : mapping or scheduler
        The config of the scheduler the model was trained with (``pipe.scheduler.config``
        of a DDPM/DDIM/PNDM pipeline); must contain betas info.
    timestep : {"interpolate", "nearest", "paper"}
        σ → timestep rule (:class:`DiscreteTimeEpsModel`).
    data_shape : tuple, optional
        ``(C, H, W)`` of the data this denoiser will see; checked against the UNet's
        ``in_channels`` and ``sample_size`` now, rather than at the first call.
    model_kwargs : mapping, optional
        Extra keyword arguments for every UNet call (e.g. ``encoder_hidden_states``).
    clip_sample, clip_sample_range : bool, float
        Clip ``x̂0 = x − σ ε`` to ``[−clip_sample_range, clip_sample_range]`` and return
        the ε of the clipped ``x̂0`` (:class:`DiscreteTimeEpsModel`): what
        ``GradientEstimationScheduler(clip_sample=True)`` does inside its step. Not read
        from ``scheduler_config`` (diffusers' DDPM and DDIM configs say ``True``, which
        would change every sampler run on this denoiser); default off.

    Examples
    --------
    >>> den = tm.images.from_diffusers(pipe.unet, pipe.scheduler.config)  # doctest: +SKIP
    >>> x = tm.gradient_estimation(den, sigmas, x_N)                       # doctest: +SKIP
    """
    require("diffusers", "from_diffusers")
    abar = alphas_cumprod_from_config(scheduler_config)
    shape = _unet_sample_shape(unet)
    out_channels = unet.config.get("out_channels", shape[0]) if hasattr(unet.config, "get") else shape[0]
    if out_channels is not None and int(out_channels) != shape[0]:
        raise ValueError(
            f"unet has in_channels={shape[0]} but out_channels={out_channels}: an ε-prediction UNet returns "
            "one value per input channel (learned-variance outputs are not supported)"
        )
    if data_shape is not None:
        ds = tuple(int(v) for v in as_tensor(list(data_shape), "data_shape").tolist())
        if len(ds) != 3:
            raise ValueError(f"data_shape must be (C, H, W), got {ds}")
        if ds[0] != shape[0]:
            raise ValueError(f"data has {ds[0]} channels but the UNet has in_channels={shape[0]}")
        if ds[1:] != shape[1:]:
            raise ValueError(f"data images are {ds[1]}x{ds[2]} but the UNet's sample_size is {shape[1]}x{shape[2]}")
    return DiffusersUNetDenoiser(
        unet,
        abar,
        timestep=timestep,
        model_kwargs=model_kwargs,
        clip_sample=clip_sample,
        clip_sample_range=clip_sample_range,
    )
