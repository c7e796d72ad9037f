"""diffusers models as σ-space denoisers (THEORY §1, §7): :func:`from_diffusers`.

Needs the optional ``images`` extra (``pip install toymanifold[images]``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch

from ..validation import as_tensor
from ._optional import require
from .discrete import DiscreteTimeModel
from .flow import FlowMatchModel
from .parameterizations import PREDICTION_TYPES

__all__ = [
    "DiffusersModel",
    "alphas_cumprod_from_config",
    "from_diffusers",
    "is_flow_matching_config",
    "scheduler_config_dict",
]

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
    how its betas are made raises ``ValueError`` (no silent defaults). ``ᾱ`` does not
    depend on ``prediction_type``.
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
    diffusers = require("diffusers", "alphas_cumprod_from_config")
    kwargs = {k: cfg[k] for k in _BETA_KEYS if k in cfg}
    try:
        sched = diffusers.DDPMScheduler(**kwargs)
    except (NotImplementedError, ValueError, TypeError) as exc:
        raise ValueError(f"{name}: diffusers cannot build betas from {kwargs}: {exc}") from exc
    return sched.alphas_cumprod.to(torch.float64)


def is_flow_matching_config(scheduler_config: Any) -> bool:
    """Whether a scheduler config belongs to a flow-matching (rectified-flow) model.

    True for diffusers' ``FlowMatch*`` schedulers (by ``_class_name`` or the scheduler's
    class), for ``prediction_type="flow_prediction"`` or ``use_flow_sigmas=True``, and for a
    config without betas that has a ``shift`` or ``use_dynamic_shifting`` key.
    """
    raw = getattr(scheduler_config, "config", scheduler_config)
    if not isinstance(raw, Mapping):
        raise TypeError(
            "scheduler_config must be a diffusers scheduler config (a mapping such as pipe.scheduler.config) "
            f"or a scheduler, got {type(scheduler_config).__name__}"
        )
    name = str(raw.get("_class_name") or (type(scheduler_config).__name__ if raw is not scheduler_config else ""))
    if name.startswith("FlowMatch") or raw.get("prediction_type") == "flow_prediction" or raw.get("use_flow_sigmas"):
        return True
    has_betas = any(raw.get(k) is not None for k in ("beta_schedule", "trained_betas", "beta_start"))
    return not has_betas and ("shift" in raw or "use_dynamic_shifting" in raw)


def _unet_sample_shape(cfg: Any) -> tuple[int, int, int]:
    size = cfg["sample_size"]
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return int(cfg["in_channels"]), int(h), int(w)


class DiffusersModel:
    """A diffusers UNet or transformer called as ``model(sample, timestep[, cond])``; built by :func:`from_diffusers`.

    The network gets its input as ``sample=`` (UNets) or ``hidden_states=``
    (transformers), ``timestep=``, the fixed ``model_kwargs`` and the conditioning
    ``cond``: a mapping is merged into the keyword arguments, a tensor is
    ``encoder_hidden_states``. Inputs are checked against the model's ``in_channels``
    (dimension 1 of a 4-D input, the last of a 3-D token sequence) and, for a
    ``UNet2DModel``, against its ``(in_channels, sample_size, sample_size)``.
    """

    def __init__(self, module: Any, model_kwargs: Mapping[str, Any] | None = None) -> None:
        diffusers = require("diffusers", "from_diffusers")
        cfg = getattr(module, "config", None)
        if not callable(module) or not isinstance(cfg, Mapping) or "in_channels" not in cfg:
            raise TypeError(
                "model must be a diffusers model (UNet2DModel, UNet2DConditionModel or a transformer such as "
                f"SD3Transformer2DModel, with config.in_channels), got {type(module).__name__}"
            )
        params = inspect.signature(module.forward).parameters
        self.input_name = "hidden_states" if "hidden_states" in params else "sample"
        if self.input_name not in params or "timestep" not in params:
            raise TypeError(f"{type(module).__name__}.forward takes no 'sample'/'hidden_states' and 'timestep'")
        self.module = module
        self.model_kwargs = dict(model_kwargs or {})
        self.in_channels = int(cfg["in_channels"])
        out_channels = cfg.get("out_channels")
        if out_channels is not None and int(out_channels) != self.in_channels:
            raise ValueError(
                f"model has in_channels={self.in_channels} but out_channels={out_channels}: a model for these "
                "adapters returns one value per input channel (learned-variance outputs are not supported)"
            )
        fixed = isinstance(module, diffusers.UNet2DModel) and cfg.get("sample_size") is not None
        self.sample_shape = _unet_sample_shape(cfg) if fixed else None

    def parameters(self):
        """The wrapped module's parameters (they give the adapters the model's dtype and device)."""
        return self.module.parameters()

    def check_shape(self, shape: tuple[int, ...], name: str = "x") -> None:
        """Raise ``ValueError`` if a batch of shape ``shape`` does not fit the model."""
        shape = tuple(int(v) for v in shape)
        if self.sample_shape is not None:
            if shape[1:] != self.sample_shape:
                raise ValueError(
                    f"{name} must have shape (B, {', '.join(map(str, self.sample_shape))}) for this UNet "
                    f"(in_channels, sample_size), got shape {shape}"
                )
            return
        channels = shape[1] if len(shape) == 4 else shape[-1] if len(shape) == 3 else None
        if channels is not None and channels != self.in_channels:
            where = "dimension 1" if len(shape) == 4 else "the last dimension"
            raise ValueError(
                f"{name} must have the model's in_channels={self.in_channels} in {where}, got shape {shape}"
            )

    def __call__(self, sample: torch.Tensor, timestep: torch.Tensor, cond: Any = None) -> Any:
        self.check_shape(tuple(sample.shape))
        kwargs = dict(self.model_kwargs)
        if isinstance(cond, Mapping):
            kwargs.update(cond)
        elif cond is not None:
            kwargs["encoder_hidden_states"] = cond
        return self.module(**{self.input_name: sample, "timestep": timestep}, **kwargs)

    def __repr__(self) -> str:
        return f"DiffusersModel({type(self.module).__name__})"


def from_diffusers(
    model: Any,
    scheduler_config: Any,
    *,
    timestep: str = "interpolate",
    data_shape: Any = None,
    clip_sample: bool = False,
    clip_sample_range: float = 1.0,
    timestep_scale: float | None = None,
    **model_kwargs: Any,
) -> DiscreteTimeModel | FlowMatchModel:
    """A σ-space denoiser around a diffusers model, in the parameterization its config says (THEORY §1, §7).

    ``tm.gradient_estimation``, ``tm.ddim`` and every other sampler run on the result,
    and :func:`toymanifold.images.classifier_free_guidance` guides it
    (``den(x, sigma, cond)`` passes conditioning to the model).

    - A discrete-time (DDPM/DDIM/PNDM/Euler...) config gives a
      :class:`~toymanifold.images.DiscreteTimeModel` with the config's ``ᾱ_t`` table and
      ``prediction_type`` (``"epsilon"``, ``"sample"`` or ``"v_prediction"``): the model sees
      ``z = x/√(1 + σ²)`` and the timestep matching ``σ``.
    - A flow-matching config (``FlowMatchEulerDiscreteScheduler`` and the like, see
      :func:`is_flow_matching_config`) gives a :class:`~toymanifold.images.FlowMatchModel`:
      the model sees ``x_t = x/(1 + σ)`` and ``t = σ/(1 + σ)`` times ``timestep_scale``. The
      config's ``shift`` does not change the model, only the schedule (``σ' = s σ``,
      THEORY §7): :class:`toymanifold.images.FlowMatchGradientEstimationScheduler` applies
      it, and its ``sigmas`` are the σ to pass to a sampler.

    Parameters
    ----------
    model : diffusers model
        ``UNet2DModel``, ``UNet2DConditionModel`` or a transformer (``SD3Transformer2DModel``,
        ``FluxTransformer2DModel``, ...). Used where it is, with its dtype and device;
        ``x`` must be on its device.
    scheduler_config : mapping or scheduler
        The config of the scheduler the model was trained with (``pipe.scheduler.config``).
    timestep : {"interpolate", "nearest", "paper"}
        σ → timestep rule of a discrete-time model (:class:`~toymanifold.images.DiscreteTimeModel`).
    data_shape : tuple, optional
        The shape of one sample, ``(C, H, W)`` (or ``(tokens, C)`` for Flux's packed
        latents), checked against the model now rather than at the first call.
    clip_sample, clip_sample_range : bool, float
        Clip ``x̂0 = x − σ ε`` to ``[−clip_sample_range, clip_sample_range]``
        (discrete-time models only): what ``GradientEstimationScheduler(clip_sample=True)``
        does inside its step. Not read from ``scheduler_config`` (diffusers' DDPM and
        DDIM configs say ``True``, which would change every sampler run on this
        denoiser); default off.
    timestep_scale : float, optional
        Flow-matching models only: the network receives ``t · timestep_scale``. Default:
        the config's ``num_train_timesteps`` (SD3-style, as diffusers' flow schedulers
        feed ``1000 t``), except 1 for Flux's transformers (``FluxTransformer2DModel``
        and ``Flux2Transformer2DModel``), which their pipelines feed ``t`` itself. Other
        transformers whose pipelines divide the timestep by 1000 (e.g. Chroma, QwenImage,
        AuraFlow) need ``timestep_scale=1.0``.
    **model_kwargs
        Keyword arguments for every model call (e.g. ``encoder_hidden_states``, SDXL's
        ``added_cond_kwargs``, SD3's ``pooled_projections``, Flux's ``img_ids``,
        ``txt_ids`` and ``guidance``). Conditioning that differs between the conditional
        and unconditional branch belongs in :func:`~toymanifold.images.classifier_free_guidance`'s
        ``cond``/``uncond`` instead.

    Examples
    --------
    >>> den = tm.images.from_diffusers(pipe.unet, pipe.scheduler.config)  # doctest: +SKIP
    >>> x = tm.gradient_estimation(den, sigmas, x_N)                       # doctest: +SKIP
    """
    require("diffusers", "from_diffusers")
    cfg = scheduler_config_dict(scheduler_config)
    net = DiffusersModel(model, model_kwargs)
    if data_shape is not None:
        ds = tuple(int(v) for v in as_tensor(list(data_shape), "data_shape").tolist())
        net.check_shape((1, *ds), "data_shape (with a batch dimension)")
    if is_flow_matching_config(scheduler_config):
        if cfg.get("invert_sigmas"):
            raise ValueError("scheduler_config has invert_sigmas=True: its t runs the other way; not supported")
        if timestep != "interpolate" or clip_sample:
            raise ValueError("timestep and clip_sample apply to discrete-time models; this is a flow-matching config")
        if timestep_scale is None:
            flux = type(model).__name__ in ("FluxTransformer2DModel", "Flux2Transformer2DModel")
            timestep_scale = 1.0 if flux else float(cfg.get("num_train_timesteps", 1000))
        return FlowMatchModel(net, timestep_scale=timestep_scale)
    if timestep_scale is not None:
        raise ValueError("timestep_scale applies to flow-matching models; this is a discrete-time config")
    prediction = cfg.get("prediction_type", "epsilon")
    if prediction not in PREDICTION_TYPES:
        raise ValueError(f"scheduler_config has prediction_type={prediction!r}; expected one of {PREDICTION_TYPES}")
    return DiscreteTimeModel(
        net,
        alphas_cumprod_from_config(scheduler_config),
        prediction,
        timestep,
        clip_sample=clip_sample,
        clip_sample_range=clip_sample_range,
    )
