"""The denoiser interface: ``ε(x, σ)`` callables in the σ-parameterization (THEORY §1)."""

from __future__ import annotations

import abc
import math

import torch

from ..validation import as_tensor, check_sigma

__all__ = ["Denoiser"]

#: Dtypes whose range (float16: up to 65504) or precision (bfloat16: 8 bits) is too small
#: for the σ powers and softmaxes of the closed forms; those are evaluated in float32.
HALF_DTYPES = (torch.float16, torch.bfloat16)


class Denoiser(abc.ABC):
    """A noise predictor ``ε_θ(x, σ)`` with denoised estimate ``x̂0 = x − σ ε_θ`` (THEORY §1).

    ``denoiser(x, sigma)`` accepts ``x`` of shape ``(B, *shape)`` (``n`` is the product
    of ``shape``) and ``sigma`` a float or a ``(B,)`` tensor of values ``> 0``; it returns
    ``ε`` with the shape, dtype and device of ``x``. Subclasses implement
    ``_eps(x, sigma)`` on the flattened batch ``(B, n)`` with ``sigma`` of shape
    ``(B, 1)``; ``ambient_dim`` is ``None`` when any ``n`` is accepted.

    Every call guarantees:

    - an empty batch ``(0, *shape)`` gives an empty ``ε`` (``_eps`` is not called);
    - float16/bfloat16 ``x`` is evaluated in float32 when ``half_in_float32`` is true
      (the default: closed forms and oracles square ``σ`` and exponentiate logits, which
      overflow in half precision) and ``ε`` is returned in ``x``'s dtype; a trained
      network (:class:`~toymanifold.MLPDenoiser`) sets it to false and runs in its own dtype;
    - finite ``x`` never gives a non-finite ``ε`` silently: a ``ValueError`` names the
      σ range and the dtype instead (e.g. ``ε = (x − x̂0)/σ`` beyond float16's 65504,
      or a network that overflows on inputs far outside its training range).
    """

    ambient_dim: int | None = None
    half_in_float32: bool = True

    def _prepare(self, x, sigma) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x, flat, s)``: the validated input, its ``(B, n)`` working copy and ``σ`` ``(B, 1)``."""
        x = as_tensor(x, "x")
        if x.ndim < 2:
            raise ValueError(f"x must have shape (B, *shape), got shape {tuple(x.shape)}")
        flat = x.reshape(x.shape[0], math.prod(x.shape[1:]))  # not -1: ambiguous for B = 0
        if self.ambient_dim is not None and flat.shape[1] != self.ambient_dim:
            raise ValueError(f"x must flatten to (B, {self.ambient_dim}) for this denoiser, got shape {tuple(x.shape)}")
        if self.half_in_float32 and flat.dtype in HALF_DTYPES:
            flat = flat.to(torch.float32)
        return x, flat, check_sigma(sigma, flat)

    def __call__(self, x, sigma) -> torch.Tensor:
        x, flat, s = self._prepare(x, sigma)
        if flat.shape[0] == 0:
            return torch.empty_like(x)
        eps = self._eps(flat, s).to(x.dtype)
        check_output(eps, self, s)
        return eps.reshape(x.shape)

    def denoise(self, x, sigma) -> torch.Tensor:
        """The denoised estimate ``x̂0(x, σ) = x − σ ε(x, σ)`` (THEORY §1), in ``x``'s dtype.

        Computed in float32 for float16/bfloat16 ``x`` (``σ`` may exceed their range).
        """
        x = as_tensor(x, "x")
        eps = self(x, sigma)
        work = x.to(torch.float32) if x.dtype in HALF_DTYPES else x
        s = check_sigma(sigma, work)
        return (work - s * eps.to(work.dtype)).to(x.dtype)

    @abc.abstractmethod
    def _eps(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``ε`` for a flat batch ``x`` ``(B, n)`` and ``sigma`` ``(B, 1)`` (same dtype/device)."""


def check_output(eps: torch.Tensor, denoiser: object, sigma: torch.Tensor) -> None:
    """``ValueError`` if ``eps`` (computed from finite ``x``) holds NaN or inf: never pass it on silently."""
    # One reduction and one synchronisation per call (the input check of as_tensor makes one already).
    if bool(torch.isfinite(eps.sum())) or bool(torch.isfinite(eps).all()):
        return
    lo, hi = float(sigma.min()), float(sigma.max())
    at = f"sigma = {lo:.6g}" if lo == hi else f"sigma in [{lo:.6g}, {hi:.6g}]"
    raise ValueError(
        f"{type(denoiser).__name__} gave a non-finite ε for finite x at {at} in {eps.dtype}: ε = (x − x̂0)/σ is "
        f"not representable in {eps.dtype} there, or the model overflowed (evaluate x in float32 or float64)"
    )
