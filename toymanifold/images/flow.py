"""Rectified-flow (flow-matching) velocity networks as σ-space denoisers (THEORY §7)."""

from __future__ import annotations

from typing import Any

import torch

from ..denoisers.base import Denoiser, check_output
from ..validation import as_tensor, check_positive, check_sigma
from .discrete import check_model_device, model_name, model_output, sigma_batch
from .parameterizations import eps_from_velocity, flow_input_scale, flow_t_from_sigma

__all__ = ["FlowMatchModel"]


class FlowMatchModel(Denoiser):
    """A rectified-flow velocity network ``model(x_t, t · timestep_scale)`` as a σ-space denoiser.

    Flow-matching models (SD3- and Flux-style) see ``x_t = (1 − t) x0 + t ε`` with
    ``t ∈ [0, 1]`` and predict the velocity ``v = ε − x0``. THEORY §7 maps them to
    ``x = x0 + σ ε`` exactly: ``σ = t/(1 − t)``, ``x = x_t/(1 − t)``. So
    ``denoiser(x, sigma)`` feeds the network ``x_t = x/(1 + σ)`` at ``t = σ/(1 + σ)``
    and returns ``ε = x_t + (1 − t) v``
    (:func:`~toymanifold.images.parameterizations.eps_from_velocity`). Every σ-space
    sampler then runs on the model; DDIM on it is the flow's Euler method
    (``x_{t'} = x_t + (t' − t) v`` in the flow's variables).

    ``denoiser(x, sigma, cond)`` calls ``model(x_t, t · timestep_scale, cond)``
    (see :func:`toymanifold.images.classifier_free_guidance`).

    Parameters
    ----------
    model : callable
        ``model(x_t, timestep)`` with ``x_t`` of shape ``(B, *shape)`` and ``timestep`` a
        ``(B,)`` float tensor; returns ``v`` of the shape of ``x_t`` (a tensor, a tuple
        whose first entry is ``v``, or an object with ``.sample``). Inputs go to the
        model's dtype; the timestep is float32 (float64 for a float64 model or, without
        parameters, for float64 ``x``). ``x`` must be on the model's device.
    timestep_scale : float > 0
        The network receives ``t · timestep_scale``: 1000 for SD3-style transformers
        (diffusers' flow schedulers use ``timesteps = 1000 t``), 1 for networks that
        take ``t`` itself (Flux's transformer, which multiplies by 1000 inside).

    Notes
    -----
    A timestep *shift* ``s`` is a property of the schedule, not of the model: it is
    ``σ' = s σ`` (THEORY §7), so a shifted schedule is ``s`` times an unshifted one
    (:class:`toymanifold.images.FlowMatchGradientEstimationScheduler` applies it).

    Examples
    --------
    >>> import torch, toymanifold as tm
    >>> velocity = lambda x_t, t: torch.zeros_like(x_t)  # stands in for a flow network
    >>> den = tm.images.FlowMatchModel(velocity)
    >>> den(torch.ones(2, 4, 8, 8), 3.0).shape
    torch.Size([2, 4, 8, 8])
    """

    ambient_dim = None

    def __init__(self, model: Any, timestep_scale: float = 1000.0) -> None:
        if not callable(model):
            raise TypeError(f"model must be callable as model(x_t, t), got {type(model).__name__}")
        self.model = model
        self.timestep_scale = check_positive(timestep_scale, "timestep_scale")

    def __call__(self, x, sigma, cond: Any = None) -> torch.Tensor:
        """ε at ``(x, σ)`` from ``v = model(x/(1 + σ), t · timestep_scale[, cond])`` (THEORY §7)."""
        x = as_tensor(x, "x")
        if x.ndim < 2:
            raise ValueError(f"x must have shape (B, *shape), got shape {tuple(x.shape)}")
        check_sigma(sigma, x)
        if x.shape[0] == 0:
            return torch.empty_like(x)
        return self._evaluate(x, sigma_batch(sigma, x), cond)

    def _eps(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        # Flat-batch entry point of the Denoiser interface; __call__ keeps the shape.
        return self._evaluate(x, sigma.detach().to(torch.float64).reshape(-1), None)

    def _evaluate(self, x: torch.Tensor, s64: torch.Tensor, cond: Any) -> torch.Tensor:
        m_dtype = check_model_device(self.model, x)
        s64 = s64.to(x.device)
        x_t = x * flow_input_scale(s64).to(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
        t_dtype = torch.promote_types(m_dtype or x.dtype, torch.float32)
        timestep = (flow_t_from_sigma(s64) * self.timestep_scale).to(t_dtype)
        x_in = x_t if m_dtype is None else x_t.to(m_dtype)
        out = self.model(x_in, timestep) if cond is None else self.model(x_in, timestep, cond)
        eps = eps_from_velocity(model_output(out, x_t, "a velocity model"), x_t, s64)
        check_output(eps, self, s64)
        return eps

    def __repr__(self) -> str:
        return f"FlowMatchModel(model={model_name(self.model)}, timestep_scale={self.timestep_scale:g})"
