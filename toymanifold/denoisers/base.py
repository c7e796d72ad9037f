"""The denoiser interface: ``ε(x, σ)`` callables in the σ-parameterization (THEORY §1)."""

from __future__ import annotations

import abc

import torch

from ..validation import as_tensor, check_sigma

__all__ = ["Denoiser"]


class Denoiser(abc.ABC):
    """A noise predictor ``ε_θ(x, σ)`` with denoised estimate ``x̂0 = x − σ ε_θ`` (THEORY §1).

    ``denoiser(x, sigma)`` accepts ``x`` of shape ``(B, *shape)`` (``n`` is the product
    of ``shape``) and ``sigma`` a float or a ``(B,)`` tensor of values ``> 0``; it returns
    ``ε`` with the shape, dtype and device of ``x``. Subclasses implement
    ``_eps(x, sigma)`` on the flattened batch ``(B, n)`` with ``sigma`` of shape
    ``(B, 1)``; ``ambient_dim`` is ``None`` when any ``n`` is accepted.
    """

    ambient_dim: int | None = None

    def __call__(self, x, sigma) -> torch.Tensor:
        x = as_tensor(x, "x")
        if x.ndim < 2:
            raise ValueError(f"x must have shape (B, *shape), got shape {tuple(x.shape)}")
        flat = x.reshape(x.shape[0], -1)
        if self.ambient_dim is not None and flat.shape[1] != self.ambient_dim:
            raise ValueError(f"x must flatten to (B, {self.ambient_dim}) for this denoiser, got shape {tuple(x.shape)}")
        s = check_sigma(sigma, flat)
        return self._eps(flat, s).reshape(x.shape)

    def denoise(self, x, sigma) -> torch.Tensor:
        """The denoised estimate ``x̂0(x, σ) = x − σ ε(x, σ)`` (THEORY §1)."""
        x = as_tensor(x, "x")
        eps = self(x, sigma)
        s = sigma if isinstance(sigma, (int, float)) else check_sigma(sigma, x)
        return x - s * eps

    @abc.abstractmethod
    def _eps(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``ε`` for a flat batch ``x`` ``(B, n)`` and ``sigma`` ``(B, 1)`` (same dtype/device)."""
