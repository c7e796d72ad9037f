"""The changes of variables of THEORY §7: every model is the σ-space denoiser ``ε(x, σ)``.

A model trained in another parameterization is the same σ-space denoiser
``ε(x, σ)`` with ``x = x0 + σ ε`` after an exact change of variables; the sampler of
THEORY §5 never changes. Each formula of THEORY §7 is written here once, and
:class:`~toymanifold.images.DiscreteTimeModel`, :class:`~toymanifold.images.FlowMatchModel`
and the diffusers schedulers all call these functions:

- discrete-time (VP) models see ``z = x/√(1 + σ²)`` (:func:`vp_input_scale`) and their
  output ``o`` becomes ε by :func:`eps_from_vp_output` (ε-, x0- or v-prediction);
- rectified-flow models see ``x_t = x/(1 + σ)`` at ``t = σ/(1 + σ)``
  (:func:`flow_input_scale`, :func:`flow_t_from_sigma`) and their velocity becomes ε by
  :func:`eps_from_velocity`; a timestep shift ``s`` is ``σ' = s σ`` (:func:`shift_sigmas`).

Torch only; no diffusers needed.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = [
    "PREDICTION_TYPES",
    "eps_from_velocity",
    "eps_from_vp_output",
    "flow_input_scale",
    "flow_t_from_sigma",
    "shift_sigmas",
    "sigma_from_flow_t",
    "vp_input_scale",
]

#: What a discrete-time network may predict (diffusers' ``prediction_type``).
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


def _like(coef: Any, x: torch.Tensor) -> Any:
    """A coefficient computed in float64 (a float or a ``(B,)`` tensor), ready to multiply ``x``."""
    if isinstance(coef, torch.Tensor):
        return coef.to(device=x.device, dtype=x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
    return float(coef)


def vp_input_scale(sigma: Any) -> Any:
    """``√ᾱ = 1/√(1 + σ²)``: a VP network sees ``z = √ᾱ x = x/√(1 + σ²)`` (THEORY §1, §7).

    ``sigma`` is a float or a float64 tensor; the result has its type.
    """
    if isinstance(sigma, torch.Tensor):
        return torch.rsqrt(1.0 + sigma * sigma)
    return (1.0 + sigma * sigma) ** -0.5


def eps_from_vp_output(prediction: str, output: torch.Tensor, x: torch.Tensor, sigma: Any) -> torch.Tensor:
    """ε in σ-space from the output ``o`` of a discrete-time (VP) network (THEORY §7).

    With ``√ᾱ = 1/√(1 + σ²)``, ``√(1 − ᾱ) = σ/√(1 + σ²)`` and the network input
    ``z = √ᾱ x``:

    - ``"epsilon"``: ``ε = o``;
    - ``"sample"`` (the network predicts x0): ``ε = (x − o)/σ``;
    - ``"v_prediction"`` (``v = √ᾱ ε − √(1 − ᾱ) x0``, diffusers' convention):
      ``ε = √ᾱ o + √(1 − ᾱ) z``.

    Parameters
    ----------
    prediction : {"epsilon", "sample", "v_prediction"}
    output, x : tensors of one shape and dtype
        The network output ``o`` and the σ-space iterate ``x``.
    sigma : float or float64 tensor of shape ``(B,)``
        The noise level(s); the coefficients are computed in float64 and applied in
        ``x``'s dtype.
    """
    if prediction == "epsilon":
        return output
    if prediction == "sample":
        return (x - output) / _like(sigma, x)
    if prediction == "v_prediction":
        sqrt_abar = vp_input_scale(sigma)
        sqrt_one_minus_abar = sigma * sqrt_abar
        z = x * _like(sqrt_abar, x)
        return _like(sqrt_abar, x) * output + _like(sqrt_one_minus_abar, x) * z
    raise ValueError(f"prediction must be one of {PREDICTION_TYPES}, got {prediction!r}")


def flow_t_from_sigma(sigma: Any) -> Any:
    """Rectified-flow time ``t = σ/(1 + σ)`` of a noise level σ (THEORY §7); ``σ = 0`` gives 0."""
    return sigma / (1.0 + sigma)


def sigma_from_flow_t(t: Any) -> Any:
    """Noise level ``σ = t/(1 − t)`` of a rectified-flow time ``t ∈ [0, 1)`` (THEORY §7)."""
    return t / (1.0 - t)


def flow_input_scale(sigma: Any) -> Any:
    """``1 − t = 1/(1 + σ)``: a flow network sees ``x_t = x/(1 + σ)`` (THEORY §7).

    Computed as ``1/(1 + σ)`` rather than ``1 − t``, which loses digits when ``t`` is
    near 1.
    """
    return 1.0 / (1.0 + sigma)


def eps_from_velocity(velocity: torch.Tensor, x_t: torch.Tensor, sigma: Any) -> torch.Tensor:
    """ε in σ-space from a rectified-flow velocity ``v = ε − x0`` (THEORY §7).

    ``x_t = (1 − t) x0 + t ε`` gives ``ε = x_t + (1 − t) v``, with ``1 − t = 1/(1 + σ)``
    (:func:`flow_input_scale`); ``sigma`` is a float or a float64 ``(B,)`` tensor.
    """
    return x_t + _like(flow_input_scale(sigma), x_t) * velocity


def shift_sigmas(sigmas: Any, shift: float) -> Any:
    """A timestep shift ``t' = s t/(1 + (s − 1) t)`` of a flow model is ``σ' = s σ`` (THEORY §7).

    diffusers' ``FlowMatchEulerDiscreteScheduler`` applies the shift to ``t``; in
    σ-space it is a plain rescaling, so a log-linear schedule stays log-linear.
    """
    return shift * sigmas
