"""Input validation at the public boundary, shared by ``toymanifold`` and ``analysis``.

Every public function converts its inputs with these helpers, so that bad input
raises a ``ValueError``/``TypeError`` that names the argument, the expected and the
received value (docs/design.md, Conventions). Code built on the toolkit (the
``analysis`` package, a user's own manifold) uses the same helpers and so gives the
same messages.
"""

from __future__ import annotations

import argparse
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = [
    "arg_int",
    "arg_positive_float",
    "as_manifold",
    "as_points",
    "as_tensor",
    "check_eta",
    "check_finite",
    "check_int",
    "check_nonnegative",
    "check_nu",
    "check_positive",
    "check_real",
    "check_schedule",
    "check_sigma",
    "make_generator",
]


def as_tensor(
    value: Any,
    name: str,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    allow_nonfinite: bool = False,
) -> torch.Tensor:
    """Convert ``value`` (tensor, NumPy array, nested list) to a floating tensor.

    NumPy arrays, lists and integer tensors become float64 (geometry's default);
    floating tensors keep their dtype unless ``dtype`` is given.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be numeric, got a bool ({value!r})")
    if isinstance(value, torch.Tensor):
        t = value
    elif isinstance(value, (np.ndarray, list, tuple, numbers.Real)):
        if np.asarray(value).dtype == np.bool_:
            raise TypeError(f"{name} must be numeric, got booleans")
        try:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be numeric array-like, got {type(value).__name__}") from exc
    else:
        raise TypeError(f"{name} must be a torch.Tensor or NumPy array, got {type(value).__name__}")
    if t.is_complex():
        raise TypeError(f"{name} must be real, got dtype {t.dtype}")
    if t.dtype == torch.bool:
        raise TypeError(f"{name} must be numeric, got dtype {t.dtype}")
    if dtype is not None:
        t = t.to(dtype)
    elif not t.is_floating_point():
        t = t.to(torch.float64)
    if device is not None:
        t = t.to(device)
    if not allow_nonfinite and t.numel() and not _all_finite(t):
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    return t


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise the ``ValueError`` of :func:`as_tensor` if ``t`` holds NaN or inf."""
    if t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got NaN or inf values")


def _all_finite(t: torch.Tensor) -> bool:
    # A sum is finite iff no entry is NaN/inf, unless finite entries overflow it; only
    # then is the elementwise test (a full-size boolean temporary) needed.
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())


def as_points(
    value: Any,
    name: str,
    dim: int | None = None,
    *,
    dtype: torch.dtype | None = None,
    allow_empty: bool = True,
    allow_nonfinite: bool = False,
) -> torch.Tensor:
    """Validate a batch of points of shape ``(B, dim)``.

    ``allow_nonfinite=True`` skips the finiteness pass, for callers that detect
    NaN/inf inside a pass of their own and then call :func:`check_finite`.
    """
    t = as_tensor(value, name, dtype=dtype, allow_nonfinite=allow_nonfinite)
    if t.ndim != 2:
        expected = f"(B, {dim})" if dim is not None else "(B, n)"
        raise ValueError(f"{name} must be a 2-D array of shape {expected}, got shape {tuple(t.shape)}")
    if dim is not None and t.shape[1] != dim:
        raise ValueError(f"{name} must have shape (B, {dim}), got shape {tuple(t.shape)}")
    if not allow_empty and t.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one point, got shape {tuple(t.shape)}")
    return t


def as_manifold(value: Any, name: str = "manifold"):
    """``value`` itself if it is a :class:`toymanifold.Manifold`, else a ``TypeError`` naming ``name``."""
    from .manifolds.base import Manifold  # the manifolds import this module

    if not isinstance(value, Manifold):
        raise TypeError(f"{name} must be a toymanifold Manifold, got {type(value).__name__}")
    return value


def check_schedule(sigmas: Any, name: str = "sigmas", *, allow_zero_last: bool = True) -> torch.Tensor:
    """A σ schedule ``σ_N > … > σ_0 ≥ 0`` in sampler order (THEORY §3), as float64 on the CPU.

    ``sigmas[0] = σ_N`` is the first (largest) noise level and ``sigmas[-1] = σ_0`` the
    last: 1-D, at least two entries (one step), finite, strictly decreasing. Only the
    last entry may be zero, and only with ``allow_zero_last`` (Corollary 1's final step
    to ``σ = 0``).
    """
    # A schedule is metadata, not data: it is read to the CPU once, the only device
    # synchronisation a sampler makes.
    s = as_tensor(sigmas, name, dtype=torch.float64, device="cpu", allow_nonfinite=True).detach()
    if s.ndim != 1 or s.shape[0] < 2:
        raise ValueError(f"{name} must be a 1-D schedule of length n_steps + 1 >= 2, got shape {tuple(s.shape)}")
    if not bool(torch.isfinite(s).all()):
        raise ValueError(f"{name} must be finite, got {s.tolist()}")
    if bool((s[:-1] <= 0).any()) or float(s[-1]) < 0 or (float(s[-1]) == 0 and not allow_zero_last):
        last = ">= 0" if allow_zero_last else "> 0"
        raise ValueError(
            f"{name} must be > 0 except the last entry ({last}), got minimum {float(s.min())} in {s.tolist()}"
        )
    if not bool((s[1:] < s[:-1]).all()):
        i = int(torch.nonzero(s[1:] >= s[:-1])[0, 0])
        raise ValueError(
            f"{name} must be strictly decreasing (sigma_N first), got {name}[{i}] = {float(s[i])} "
            f"<= {name}[{i + 1}] = {float(s[i + 1])}"
        )
    return s


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        elif isinstance(value, np.ndarray) and value.size == 1:
            value = value.item()
        else:
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def check_real(value: Any, name: str) -> float:
    """A finite real number (bools rejected)."""
    return _real(value, name)


def check_positive(value: Any, name: str) -> float:
    """A finite real number ``> 0``."""
    v = _real(value, name)
    if v <= 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    return v


def check_nonnegative(value: Any, name: str) -> float:
    """A finite real number ``>= 0``."""
    v = _real(value, name)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


def check_int(value: Any, name: str, minimum: int = 0) -> int:
    """An integer ``>= minimum`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def check_eta(value: Any, name: str = "eta") -> float:
    """Relative projection error η ∈ [0, 1) (THEORY §2)."""
    v = _real(value, name)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {v}")
    return v


def check_nu(value: Any, name: str = "nu") -> float:
    """Admissibility constant ν ≥ 1 (THEORY §2)."""
    v = _real(value, name)
    if v < 1.0:
        raise ValueError(f"{name} must be >= 1, got {v}")
    return v


def check_sigma(sigma: Any, x: torch.Tensor, name: str = "sigma") -> torch.Tensor:
    """Noise level(s) at which a model is evaluated, broadcast against ``x``.

    ``sigma`` is a real number (not a bool) or a ``(B,)`` tensor; every entry must be
    finite, ``> 0`` and a positive normal number of ``x``'s dtype (representable there
    without overflow or loss of precision: a float16 ``x`` takes ``σ`` up to 65504, which
    is why the denoisers of this package evaluate float16/bfloat16 input in float32).
    Returns a tensor of shape ``(B, 1, ..., 1)`` on ``x``'s device and dtype.
    """
    if isinstance(sigma, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number or a tensor, got a bool ({sigma!r})")
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    info = torch.finfo(x.dtype) if x.is_floating_point() else torch.finfo(torch.float64)
    if isinstance(sigma, (numbers.Real, np.floating)):
        v = float(sigma)
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be finite and > 0, got {v}")
        if not info.tiny <= v <= info.max:
            raise ValueError(
                f"{name} = {v} is outside the positive normal range of {x.dtype} [{info.tiny}, {info.max}]"
            )
        return torch.full(shape, v, dtype=x.dtype, device=x.device)
    s = as_tensor(sigma, name, allow_nonfinite=True)
    if s.ndim == 0:
        s = s.expand(x.shape[0])
    if s.ndim != 1 or s.shape[0] != x.shape[0]:
        raise ValueError(f"{name} must be a float or a tensor of shape ({x.shape[0]},), got shape {tuple(s.shape)}")
    if s.numel() == 0:
        return s.to(device=x.device, dtype=x.dtype).reshape(shape)
    if s.device != x.device:
        raise ValueError(f"{name} is on device {s.device} but x is on {x.device}")
    # One synchronisation: the finite, positive, in-range test in one reduction.
    if bool(((s < info.tiny) | (s > info.max) | ~torch.isfinite(s)).any()):
        lo, hi = s.min().item(), s.max().item()
        if not bool(torch.isfinite(s).all()) or lo <= 0:
            raise ValueError(f"{name} must be finite and > 0 everywhere, got min {lo}, max {hi}")
        raise ValueError(
            f"{name} spans [{lo}, {hi}], outside the positive normal range of {x.dtype} [{info.tiny}, {info.max}]"
        )
    return s.to(x.dtype).reshape(shape)


def make_generator(generator: torch.Generator | int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` from a generator, an integer seed or ``None`` (fresh, seed 0 is *not* assumed)."""
    if isinstance(generator, torch.Generator):
        return generator
    g = torch.Generator(device=device)
    if generator is None:
        g.seed()
    elif isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        g.manual_seed(int(generator))
    else:
        raise TypeError(f"generator must be a torch.Generator, an int seed or None, got {type(generator).__name__}")
    return g


def arg_int(minimum: int) -> Callable[[str], int]:
    """An argparse ``type=``: an integer ``>= minimum`` (the command lines' one-line errors)."""

    def parse(value: str) -> int:
        try:
            v = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        return v

    return parse


def arg_positive_float(value: str) -> float:
    """An argparse ``type=``: a finite number ``> 0``."""
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {value}")
    return v
