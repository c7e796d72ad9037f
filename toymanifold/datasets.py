"""Real data that ships offline: scikit-learn's 8×8 digits (no download at run time)."""

from __future__ import annotations

import torch

from .manifolds.finite import FiniteSet

__all__ = ["digits", "digits_arrays"]


def digits_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1 797 digits as ``(x, labels)``: ``x`` float64 ``(1797, 64)`` in ``[−1, 1]``.

    Pixel values ``0…16`` map to ``v/8 − 1``; rows are 8×8 images in row-major order.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float64) / 8.0 - 1.0
    return x, torch.as_tensor(bunch.target, dtype=torch.long)


def digits() -> FiniteSet:
    """scikit-learn's digits as a :class:`FiniteSet` in ``[−1, 1]^64`` (``n = 64``, ``M = 1797``)."""
    return FiniteSet(digits_arrays()[0])
