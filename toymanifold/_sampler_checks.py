"""The samplers' input checks, their noise and the finiteness watch of the loop (THEORY §5).

Private to :mod:`toymanifold.samplers`: every sampler validates ``x``, the model output,
``gamma``/``mu`` and its generators here, and the loop watches every model evaluation
for non-finite values without a device synchronisation per step.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch

from .validation import as_tensor


def _check_x(x: Any, denoiser: Callable) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        t = x
        if t.ndim < 2:
            raise ValueError(f"x must have shape (B, *shape), got shape {tuple(t.shape)}")
        if t.numel() and not bool(torch.isfinite(t).all()):
            raise ValueError("x must be finite, got NaN or inf values")
    else:
        t = as_tensor(x, "x")
        if t.ndim < 2:
            raise ValueError(f"x must have shape (B, *shape), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        # A sampler run is a sequence of model calls on one batch; an empty batch is a
        # caller's bookkeeping slip (an empty shard is skipped, not sampled).
        raise ValueError(f"x must hold at least one sample, got shape {tuple(t.shape)}")
    # Fail before the first step when the model says what it expects: a Denoiser's
    # ambient dimension, a module's parameter device.
    ambient = getattr(denoiser, "ambient_dim", None)
    if isinstance(ambient, numbers.Integral) and math.prod(t.shape[1:]) != ambient:
        raise ValueError(f"x must flatten to (B, {ambient}) for this denoiser, got shape {tuple(t.shape)}")
    if isinstance(denoiser, torch.nn.Module):
        p = next(iter(denoiser.parameters()), None)
        if p is not None and p.device != t.device:
            raise ValueError(f"x is on device {t.device} but the denoiser's parameters are on {p.device}")
    return t


def _check_eps(eps: Any, x: torch.Tensor) -> torch.Tensor:
    """First-step check of the model output: a tensor like ``x``."""
    if not isinstance(eps, torch.Tensor):
        raise TypeError(f"denoiser must return a torch.Tensor, got {type(eps).__name__}")
    if eps.shape != x.shape:
        raise ValueError(
            f"denoiser returned shape {tuple(eps.shape)} for x of shape {tuple(x.shape)}; "
            "x must have the batch and shape the denoiser expects"
        )
    if eps.device != x.device:
        raise ValueError(f"denoiser returned a tensor on {eps.device} for x on {x.device}")
    return eps


def _check_gamma_mu(gamma: Any, mu: Any) -> tuple[float, float]:
    for name, v in (("gamma", gamma), ("mu", mu)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {type(v).__name__}")
        if not math.isfinite(float(v)):
            raise ValueError(f"{name} must be finite, got {v}")
    gamma, mu = float(gamma), float(mu)
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    if not 0.0 <= mu < 1.0:
        raise ValueError(f"mu must lie in [0, 1), got {mu}")
    return gamma, mu


def _check_generator(generator: Any, x: Any = None) -> None:
    if generator is None or isinstance(generator, torch.Generator):
        return
    if isinstance(generator, (list, tuple)):
        if not generator or not all(isinstance(g, torch.Generator) for g in generator):
            raise TypeError("generator as a sequence must hold one torch.Generator per sample")
        if len({g.device for g in generator}) > 1:
            raise ValueError("generator: the per-sample generators must all be on one device")
        batch = getattr(x, "shape", (None,))[0] if getattr(x, "ndim", 0) else None
        if batch is not None and len(generator) != batch:
            raise ValueError(f"generator holds {len(generator)} generators but x holds {batch} samples")
        return
    if isinstance(generator, bool) or not isinstance(generator, numbers.Integral):
        raise TypeError(
            "generator must be a torch.Generator, a list of them (one per sample), an int seed or None, "
            f"got {type(generator).__name__}"
        )


def _noise(x: torch.Tensor, gen: torch.Generator | list[torch.Generator]) -> torch.Tensor:
    # Drawn on the generator's device, then moved: a CPU generator gives the same
    # ξ whether x lives on the CPU or a GPU. With one generator per sample, row b is
    # drawn from gen[b] alone, so it does not depend on the batch the sample is in.
    if isinstance(gen, torch.Generator):
        xi = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=gen.device)
    else:
        xi = torch.stack([torch.randn(x.shape[1:], generator=g, dtype=x.dtype, device=g.device) for g in gen])
    return xi.to(x.device, non_blocking=True)


def add_scaled(x: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """``x + alpha · y`` as one fused kernel, in ``x``'s dtype.

    ``alpha`` is a σ (or a difference of σ's) and may exceed a half-precision dtype's range
    (float16: 65504) while ``alpha · y`` does not; ``torch.add`` refuses such a scalar, so
    the product is then formed in float32 and the sum rounded once to ``x``'s dtype.
    """
    if x.is_floating_point() and abs(alpha) > torch.finfo(x.dtype).max:
        return torch.add(x.float(), y.float(), alpha=alpha).to(x.dtype)
    return torch.add(x, y, alpha=alpha)


class _FiniteWatch:
    """Records ``min`` and ``max`` of ``x`` and ``ε`` at every model evaluation on the device; checks them once.

    ``torch.aminmax`` is one reduction kernel (about 6 µs for 8192 floats on a CPU core,
    a sixth of ``vector_norm(ord=inf)``) whose results are non-finite exactly when an
    entry is NaN or ±inf, and its 0-d results stay on the device: no synchronisation
    inside the loop. :meth:`check` stacks them (with the final iterate's) and
    synchronises once, at the end of the run, and names the first step whose model
    output — or whose iterate — was not finite.
    """

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype
        self.where: list[tuple[int, float]] = []
        self.norms: list[torch.Tensor] = []  # per evaluation: min x, max x, min ε, max ε

    def record(self, step: int, sigma: float, x: torch.Tensor, eps: torch.Tensor) -> None:
        self.where.append((step, sigma))
        self.norms.extend(torch.aminmax(x))
        self.norms.extend(torch.aminmax(eps))

    def check(self, x_last: torch.Tensor, *, before_step: int | None = None, sigma: float = math.nan) -> None:
        """Raise the ``ValueError`` naming the first non-finite evaluation or iterate, if any.

        ``x_last`` is the final iterate, or with ``before_step`` the input of the model
        evaluation of that step that has not been recorded (the denoiser raised on it).
        """
        norms = torch.stack([*self.norms, *torch.aminmax(x_last)])
        if bool(torch.isfinite(norms).all()):  # the run's one synchronisation
            return
        finite = torch.isfinite(norms).reshape(-1, 2).all(1).tolist()  # per tensor: x, ε, x, ε, ..., x_last
        for k, (i, s) in enumerate(self.where):
            if not finite[2 * k]:
                raise self._overflow_before(i, s)
            if not finite[2 * k + 1]:
                raise ValueError(
                    f"denoiser returned a non-finite eps (NaN or inf) at step {i} (sigma = {s:.6g}) "
                    f"for a finite x in {self.dtype}"
                )
        if before_step is not None:
            raise self._overflow_before(before_step, sigma)
        i, s = self.where[-1]
        raise ValueError(
            f"the sampler's last update (step {i}, sigma = {s:.6g}) overflowed {self.dtype}: "
            "the result is not finite (run x in float32 or float64)"
        )

    def _overflow_before(self, step: int, sigma: float) -> ValueError:
        return ValueError(
            f"the sampler's iterate became non-finite before the model evaluation of step {step} "
            f"(sigma = {sigma:.6g}): its update overflowed {self.dtype} (run x in float32 or float64)"
        )
