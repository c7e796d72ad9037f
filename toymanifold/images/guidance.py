"""Classifier-free guidance as a σ-space denoiser (THEORY §7)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..validation import as_tensor

__all__ = ["ClassifierFreeGuidance", "classifier_free_guidance"]


def _check_cond(cond: Any, name: str) -> Any:
    if isinstance(cond, torch.Tensor):
        if cond.ndim == 0:
            raise ValueError(f"{name} must have a leading batch dimension, got a 0-d tensor")
        return cond
    if isinstance(cond, Mapping):
        return {
            k: _check_cond(v, f"{name}[{k!r}]") if isinstance(v, (torch.Tensor, Mapping)) else v
            for k, v in cond.items()
        }
    raise TypeError(
        f"{name} must be a tensor or a mapping of tensors (model keyword arguments), got {type(cond).__name__}"
    )


def _expand(cond: Any, batch: int) -> Any:
    """``cond`` with every tensor's leading size 1 broadcast to ``batch``."""
    if isinstance(cond, torch.Tensor):
        if cond.shape[0] == batch:
            return cond
        if cond.shape[0] == 1:
            return cond.expand(batch, *cond.shape[1:])
        raise ValueError(f"conditioning has leading size {cond.shape[0]}, expected 1 or the batch size {batch}")
    if isinstance(cond, Mapping):
        return {k: _expand(v, batch) for k, v in cond.items()}
    return cond


def _concat(first: Any, second: Any) -> Any:
    """``first`` and ``second`` (same structure) concatenated along the leading dimension."""
    if isinstance(first, torch.Tensor):
        return torch.cat([first, second])
    if isinstance(first, Mapping):
        return {k: _concat(first[k], second[k]) for k in first}
    return first  # a non-tensor keyword argument, equal in both (checked at construction)


def _same_structure(a: Any, b: Any, path: str = "cond") -> None:
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        if not (isinstance(a, Mapping) and isinstance(b, Mapping)) or set(a) != set(b):
            keys = (
                sorted(a) if isinstance(a, Mapping) else type(a).__name__,
                sorted(b) if isinstance(b, Mapping) else type(b).__name__,
            )
            raise ValueError(f"cond and uncond must have the same keys, got {keys[0]} and {keys[1]} at {path}")
        for k in a:
            _same_structure(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape[1:] != b.shape[1:]:
            raise ValueError(
                f"cond and uncond must hold tensors of the same shape after the batch dimension at {path}, got "
                f"{getattr(a, 'shape', type(a).__name__)} and {getattr(b, 'shape', type(b).__name__)}"
            )
    elif a != b:
        raise ValueError(f"cond and uncond differ in a non-tensor entry at {path}: {a!r} and {b!r}")


class ClassifierFreeGuidance:
    """A conditional σ-space denoiser guided by classifier-free guidance (THEORY §7).

    Built by :func:`classifier_free_guidance`; ``guided(x, sigma)`` returns
    ``ε_g = ε_u + s (ε_c − ε_u)`` and :meth:`guided_and_unconditional` returns
    ``(ε_g, ε_u)`` from the same model call (what CFG++ needs,
    :func:`toymanifold.gradient_estimation_cfg_pp`).
    """

    def __init__(
        self,
        denoiser: Callable,
        cond: Any,
        uncond: Any,
        scale: float,
        *,
        batched: bool = True,
        guidance_rescale: float = 0.0,
    ) -> None:
        if not callable(denoiser):
            raise TypeError(f"denoiser must be callable as denoiser(x, sigma, cond), got {type(denoiser).__name__}")
        for name, v in (("scale", scale), ("guidance_rescale", guidance_rescale)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
                raise ValueError(f"{name} must be a finite real number, got {v!r}")
        if not 0.0 <= guidance_rescale <= 1.0:
            raise ValueError(f"guidance_rescale must lie in [0, 1], got {guidance_rescale}")
        if not isinstance(batched, bool):
            raise TypeError(f"batched must be a bool, got {type(batched).__name__}")
        self.cond = _check_cond(cond, "cond")
        self.uncond = _check_cond(uncond, "uncond")
        _same_structure(self.cond, self.uncond)
        self.denoiser = denoiser
        self.scale = float(scale)
        self.batched = batched
        self.guidance_rescale = float(guidance_rescale)

    def guided_and_unconditional(self, x: Any, sigma: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ε_g, ε_u)`` at ``(x, σ)``: one batched model call (two with ``batched=False``)."""
        x = as_tensor(x, "x")
        if x.ndim < 2:
            raise ValueError(f"x must have shape (B, *shape), got shape {tuple(x.shape)}")
        b = x.shape[0]
        cond, uncond = _expand(self.cond, b), _expand(self.uncond, b)
        if self.batched:
            # One call on [x; x] with [uncond; cond]: the first half is ε_u, the second ε_c.
            s2 = torch.cat([sigma, sigma]) if isinstance(sigma, torch.Tensor) and sigma.ndim else sigma
            eps = self.denoiser(torch.cat([x, x]), s2, _concat(uncond, cond))
            eps_u, eps_c = eps[:b], eps[b:]
        else:
            eps_u = self.denoiser(x, sigma, uncond)
            eps_c = self.denoiser(x, sigma, cond)
        eps_g = eps_u + self.scale * (eps_c - eps_u)
        if self.guidance_rescale > 0.0:
            eps_g = self._rescale(eps_g, eps_c)
        if not bool(torch.isfinite(eps_g).all()):
            raise ValueError(
                f"classifier-free guidance with scale = {self.scale:g} gave a non-finite ε for finite x in "
                f"{eps_g.dtype}: the conditional denoiser returned non-finite values, or the scale is too large "
                "for the dtype"
            )
        return eps_g, eps_u

    def _rescale(self, eps_g: torch.Tensor, eps_c: torch.Tensor) -> torch.Tensor:
        # Lin et al. (2024), §3.4, as diffusers' `rescale_noise_cfg`: match the per-sample
        # standard deviation of the conditional output, mixed in with weight φ.
        dims = list(range(1, eps_g.ndim))
        rescaled = eps_g * (eps_c.std(dim=dims, keepdim=True) / eps_g.std(dim=dims, keepdim=True))
        return self.guidance_rescale * rescaled + (1.0 - self.guidance_rescale) * eps_g

    def __call__(self, x: Any, sigma: Any) -> torch.Tensor:
        """The guided ``ε_g = ε_u + s (ε_c − ε_u)`` at ``(x, σ)`` (THEORY §7)."""
        return self.guided_and_unconditional(x, sigma)[0]

    def __repr__(self) -> str:
        extra = "" if self.batched else ", batched=False"
        if self.guidance_rescale:
            extra += f", guidance_rescale={self.guidance_rescale:g}"
        return f"ClassifierFreeGuidance({self.denoiser!r}, scale={self.scale:g}{extra})"


def classifier_free_guidance(
    denoiser: Callable,
    cond: Any,
    uncond: Any,
    scale: float,
    *,
    batched: bool = True,
    guidance_rescale: float = 0.0,
) -> ClassifierFreeGuidance:
    """Classifier-free guidance: ``den(x, σ) = ε_u + s (ε_c − ε_u)`` (THEORY §7).

    ``ε_c = denoiser(x, σ, cond)`` and ``ε_u = denoiser(x, σ, uncond)`` at the same
    ``(x, σ)``. Every conversion of THEORY §7 is affine in the network output with
    coefficients that depend only on ``(x, σ)``, so guiding the σ-space ε with ``s``
    gives the same ``ε_g`` as guiding an ε-, x0-, v- or flow-velocity network's output
    with ``s`` (what diffusers' pipelines do) and converting afterwards.

    Parameters
    ----------
    denoiser : callable
        A conditional σ-space denoiser ``denoiser(x, sigma, c) -> ε``: e.g.
        :func:`toymanifold.images.from_diffusers`, :class:`~toymanifold.images.DiscreteTimeModel`
        or :class:`~toymanifold.images.FlowMatchModel` (which pass ``c`` to the network).
    cond, uncond : tensor or mapping of tensors
        The conditional and unconditional conditioning, each tensor with a leading batch
        dimension of the batch size or 1 (broadcast). For a diffusers model a tensor is
        its ``encoder_hidden_states``; a mapping holds model keyword arguments, e.g.
        ``{"encoder_hidden_states": ..., "added_cond_kwargs": {"text_embeds": ..., "time_ids": ...}}``
        (SDXL) or ``{"encoder_hidden_states": ..., "pooled_projections": ...}`` (SD3).
        Both must have the same structure.
    scale : float
        The guidance scale ``s`` (diffusers' ``guidance_scale``; 1 is the conditional
        model alone, 0 the unconditional one).
    batched : bool
        ``True`` (default): ONE model call per evaluation, on ``x`` repeated twice with
        ``[uncond; cond]`` concatenated along the batch dimension (as diffusers'
        pipelines do). ``False``: two calls of the batch size, for when memory is short.
    guidance_rescale : float in [0, 1]
        φ of Lin et al. (2024) as diffusers' ``guidance_rescale``: ``ε_g`` is rescaled to
        the per-sample standard deviation of ``ε_c`` and mixed, ``φ ε_rescaled +
        (1 − φ) ε_g``. It acts on the σ-space ε, so it equals diffusers' for
        ε-prediction models; diffusers rescales the raw output (v for v-prediction),
        which the affine argument above does not cover. Default 0 (off).

    Returns
    -------
    ClassifierFreeGuidance
        Callable as ``den(x, sigma)``; also ``den.guided_and_unconditional(x, sigma)``.

    Examples
    --------
    >>> import torch, toymanifold as tm
    >>> net = lambda z, t, c: z * c  # a "conditional ε-network": c scales its output
    >>> abar = tm.schedules.alphas_cumprod(1000, "linear")
    >>> den = tm.images.DiscreteTimeModel(net, abar)
    >>> guided = tm.images.classifier_free_guidance(den, torch.full((1, 1), 2.0), torch.ones(1, 1), 7.5)
    >>> guided(torch.ones(3, 1), 1.0).shape
    torch.Size([3, 1])
    """
    return ClassifierFreeGuidance(denoiser, cond, uncond, scale, batched=batched, guidance_rescale=guidance_rescale)
