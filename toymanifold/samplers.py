"""σ-space samplers: one loop for DDIM, DDPM, gradient estimation and the peers.

The sampler knows nothing of manifolds: it sees a denoiser ``ε_θ(x, σ)`` and a
schedule ``σ_N > … > σ_0 ≥ 0`` (docs/design.md, data flow). The update is THEORY §5:

- ``ε̄_t = ε_t`` on the first step, else ``ε̄_t = γ ε_t + (1 − γ) ε_{t+1}``;
- ``σ' = (σ_{t−1} / σ_t^μ)^{1/(1−μ)}``, ``ζ = √(σ_{t−1}² − σ'²)``;
- ``x_{t−1} = x_t − (σ_t − σ') ε̄_t + ζ ξ``, ``ξ ~ N(0, I)``.

DDIM is ``γ = 1, μ = 0`` (gradient descent on ``½ dist_K²``, THEORY §3), DDPM is
``γ = 1, μ = ½`` (ancestral sampling with the exact Gaussian posterior variance) and
gradient estimation (GE) is ``γ = 2, μ = 0``. All three make exactly ``N`` model
evaluations for ``N + 1`` sigmas; a final ``σ_0 = 0`` costs no evaluation and returns
``x_1 − σ_1 ε̄_1``.

The peers ``heun`` (EDM's second-order Heun, Euler on a last step to 0) and
``dpmpp_2m`` (DPM-Solver++(2M), as k-diffusion's ``sample_dpmpp_2m``) share the
calling convention. Their cost differs: use :func:`nfe` to compare at equal cost.
Every sampler is one *step rule* plugged into the same loop (``_drive``), which owns
the model evaluation, the checks, the callback, the trajectory and the NFE count.

Conventions for every sampler here:

- ``denoiser(x, float(sigma))`` is called with a Python float, so any callable works
  and no device synchronisation happens inside the loop.
- ``x`` keeps its dtype and device; the loop never moves data between devices. The
  only cross-device copy is the noise ``ξ`` of a stochastic sampler, drawn on the
  generator's device (CPU by default) and then moved to ``x``'s device, so that the
  same seed gives the same numbers on CPU and CUDA.
- Sampling runs under ``torch.no_grad()`` (like k-diffusion and smalldiffusion):
  a 50-step run of a network would otherwise keep 50 autograd graphs alive.
- A non-finite model output (or an iterate that overflows the dtype) is never passed
  on silently: ``min``/``max`` of every evaluation's ``x`` and ``ε`` stay on the device
  and are checked once at the end of the run, which raises a ``ValueError`` naming the
  first bad step and its σ (no synchronisation per step; about 20 µs per step on a CPU
  core for 8192 floats, ``benchmarks/samplers.py`` measures the whole loop).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .validation import as_tensor, check_schedule, make_generator

__all__ = [
    "SAMPLERS",
    "SamplerInfo",
    "StepInfo",
    "Trajectory",
    "ddim",
    "ddpm",
    "dpmpp_2m",
    "gradient_estimation",
    "heun",
    "nfe",
    "sample",
    "sample_step",
    "sampler_info",
]


@dataclass(frozen=True, eq=False)
class StepInfo:
    """What ``callback(info)`` receives once per step (THEORY §5 notation).

    ``i`` is the step index (0 for the first step, at ``sigmas[0] = σ_N``); ``sigma``
    and ``sigma_next`` are ``σ_t`` and ``σ_{t−1}`` as Python floats; ``x`` is the
    iterate ``x_t`` at ``sigma``; ``eps`` the model output ``ε_t = ε_θ(x_t, σ_t)``;
    ``eps_bar`` the direction the step uses (``ε̄_t``; for the peers, the effective
    direction with ``x_{t−1} = x_t − (σ_t − σ_{t−1}) ε̄_t``); ``x0_hat`` the raw
    model's denoised estimate ``x_t − σ_t ε_t`` (THEORY §1). Item access
    (``info["eps"]``) works too, for k-diffusion-style callbacks.
    """

    i: int
    sigma: float
    sigma_next: float
    x: torch.Tensor
    eps: torch.Tensor
    eps_bar: torch.Tensor
    x0_hat: torch.Tensor

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str) or key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def keys(self):
        return self.__dataclass_fields__.keys()


@dataclass(eq=False)
class Trajectory:
    """A whole sampler run, for analysis and figures.

    Attributes
    ----------
    xs : (N + 1, B, *shape)
        ``xs[0]`` is the start ``x_N``, ``xs[i]`` the iterate at ``sigmas[i]``;
        ``xs[N]`` is the sampler's output.
    eps : (N, B, *shape)
        Model output ``ε_θ(xs[i], sigmas[i])``.
    eps_bar : (N, B, *shape)
        The direction of step ``i``: THEORY §5's ``ε̄`` for :func:`sample`; for the
        peers the effective direction, ``xs[i+1] = xs[i] − (sigmas[i] − sigmas[i+1]) eps_bar[i]``.
    x0_hats : (N, B, *shape)
        ``xs[i] − sigmas[i] · eps[i]``, the raw model's denoised estimate (THEORY §1;
        Lemma 1's ``e_t`` is its distance to the nearest point).
    sigmas : (N + 1,) float64 on the CPU
        The schedule.
    nfe : int
        Number of model evaluations the run made.
    """

    xs: torch.Tensor
    eps: torch.Tensor
    eps_bar: torch.Tensor
    x0_hats: torch.Tensor
    sigmas: torch.Tensor
    nfe: int

    @property
    def final(self) -> torch.Tensor:
        """The sampler's output ``xs[-1]``."""
        return self.xs[-1]


# --------------------------------------------------------------------------- validation


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


# --------------------------------------------------------------------------- the loop

# A step rule turns one model output into one step; it is built fresh for each run and
# keeps its own state (the previous ε or x̂0):
#
#     rule(model, x, eps, sigma, sigma_next, info) -> (x_next, eps_bar, x0_hat)
#
# ``eps`` is ``ε_θ(x, σ_t)``, already checked and cast to ``x.dtype``; ``model`` is the
# loop's own evaluator (checked, cast and counted), for a rule that needs another
# evaluation (Heun's corrector). ``info`` says whether a callback or a trajectory wants
# ``eps_bar`` and ``x0_hat``: a rule may return None for what costs extra work only for
# them (DPM++'s ``eps_bar``); ``x0_hat = None`` means the loop's ``x − σ_t ε_t``.


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


@torch.no_grad()
def _drive(denoiser, sigmas, x, rule, callback, return_trajectory):
    """The one sampling loop: N model evaluations at ``(x_t, σ_t)``, one ``rule`` step each."""
    s_tensor = check_schedule(sigmas)
    s = s_tensor.tolist()
    x = _check_x(x, denoiser)
    dtype, calls, step = x.dtype, 0, 0
    watch = _FiniteWatch(dtype)

    def model(x_, sigma):
        nonlocal calls
        try:
            eps = denoiser(x_, sigma)
        except Exception as exc:
            # A denoiser that validates its input refuses the NaN an earlier step made:
            # name that step instead (this synchronises, but only on the way out).
            try:
                watch.check(x_, before_step=step, sigma=sigma)
            except ValueError as named:
                raise named from exc
            exc.add_note(f"(raised by the denoiser at sampler step {step}, sigma = {sigma:.6g})")
            raise
        calls += 1
        if calls == 1:
            eps = _check_eps(eps, x_)
        # Keep the caller's dtype (e.g. a float16 network driven in float32).
        eps = eps if eps.dtype == dtype else eps.to(dtype)
        watch.record(step, sigma, x_, eps)
        return eps

    info = callback is not None or return_trajectory
    rows = []
    for i in range(len(s) - 1):
        step = i
        sigma, sigma_next = s[i], s[i + 1]
        eps = model(x, sigma)
        x_next, eps_bar, x0_hat = rule(model, x, eps, sigma, sigma_next, info)
        if info:
            if x0_hat is None:
                x0_hat = x - sigma * eps if sigma <= torch.finfo(dtype).max else add_scaled(x, eps, -sigma)
            if callback is not None:
                callback(StepInfo(i, sigma, sigma_next, x, eps, eps_bar, x0_hat))
            if return_trajectory:
                rows.append((x, eps, eps_bar, x0_hat))
        x = x_next
    watch.check(x)
    if not return_trajectory:
        return x
    xs, epss, ebars, x0s = zip(*rows, strict=True)
    return Trajectory(
        xs=torch.stack([*xs, x]),
        eps=torch.stack(epss),
        eps_bar=torch.stack(ebars),
        x0_hats=torch.stack(x0s),
        sigmas=s_tensor,
        nfe=calls,
    )


def sample_step(
    x: torch.Tensor,
    eps: torch.Tensor,
    sigma: float,
    sigma_next: float,
    *,
    eps_prev: torch.Tensor | None = None,
    gamma: float = 1.0,
    mu: float = 0.0,
    noise: torch.Tensor | Callable[[], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One update of THEORY §5, from ``x_t`` at ``σ_t = sigma`` to ``x_{t−1}`` at ``σ_{t−1} = sigma_next``.

    ``ε̄_t = ε_t`` when ``eps_prev`` is None (the first step), else
    ``γ ε_t + (1 − γ) ε_{t+1}`` with ``ε_{t+1} = eps_prev``;
    ``σ' = (σ_{t−1}/σ_t^μ)^{1/(1−μ)}``, ``ζ = √(σ_{t−1}² − σ'²)``;
    ``x_{t−1} = x_t − (σ_t − σ') ε̄_t + ζ ξ``.

    This is the only place the update is written: :func:`sample` (and so DDIM, DDPM and
    gradient estimation) and :class:`toymanifold.images.GradientEstimationScheduler`
    both call it. Arguments are not validated (the callers do that once per run).

    Parameters
    ----------
    x, eps : tensors of one shape
        The iterate ``x_t`` and the model output ``ε_t = ε_θ(x_t, σ_t)``.
    sigma, sigma_next : float
        ``σ_t > σ_{t−1} ≥ 0``.
    eps_prev : tensor or None
        The previous step's model output ``ε_{t+1}``; None on the first step.
    gamma, mu : float
        Extrapolation ``γ > 0`` and stochasticity ``μ ∈ [0, 1)``.
    noise : tensor, callable or None
        ``ξ ~ N(0, I)`` like ``x``, or a callable that draws it. Used (and a callable
        called) only when ``ζ > 0``, i.e. ``μ > 0`` and ``σ_{t−1} > 0``.

    Returns
    -------
    (x_next, eps_bar)
        ``x_{t−1}`` and the direction ``ε̄_t`` the step used.
    """
    if eps_prev is None or gamma == 1.0:
        # γ = 1 skips the arithmetic so GE(γ=1) is DDIM bit for bit.
        eps_bar = eps
    else:
        # γ ε_t + (1 − γ) ε_{t+1} as one kernel: lerp(a, b, w) = a + w (b − a).
        eps_bar = torch.lerp(eps_prev, eps, gamma)
    if mu == 0.0 or sigma_next == 0.0:
        # σ' = σ_{t−1} exactly (μ = 0), resp. σ' = 0 on a step to σ = 0; ζ = 0.
        sigma_p = sigma_next if mu == 0.0 else 0.0
        zeta = 0.0
    else:
        sigma_p = (sigma_next / sigma**mu) ** (1.0 / (1.0 - mu))
        zeta = math.sqrt(max(sigma_next * sigma_next - sigma_p * sigma_p, 0.0))
    # One fused kernel: x − (σ_t − σ') ε̄.
    x_next = add_scaled(x, eps_bar, -(sigma - sigma_p))
    if zeta > 0.0:
        if noise is None:
            raise ValueError(f"noise must be given for a stochastic step (mu = {mu}, zeta = {zeta})")
        xi = noise() if callable(noise) else noise
        x_next = add_scaled(x_next, xi, zeta)
    return x_next, eps_bar


def _section5_rule(gamma: float, mu: float, gen: torch.Generator | None):
    """THEORY §5's update (:func:`sample_step`) with extrapolation ``γ`` and stochasticity ``μ``."""
    eps_prev = None

    def rule(model, x, eps, sigma, sigma_next, info):
        nonlocal eps_prev
        x_next, eps_bar = sample_step(
            x, eps, sigma, sigma_next, eps_prev=eps_prev, gamma=gamma, mu=mu, noise=lambda: _noise(x, gen)
        )
        eps_prev = eps
        return x_next, eps_bar, None

    return rule


def _heun_rule(model, x, eps, sigma, sigma_next, info):
    """EDM's Heun step: Euler predictor, trapezoidal corrector (Euler on a step to 0)."""
    dt = sigma_next - sigma
    if sigma_next == 0.0:
        eps_bar = eps
    else:
        eps_bar = torch.lerp(eps, model(add_scaled(x, eps, dt), sigma_next), 0.5)
    return add_scaled(x, eps_bar, dt), eps_bar, None


def _dpmpp_2m_rule():
    """DPM-Solver++(2M)'s multistep update on the denoised estimates ``x̂0``."""
    x0_prev = sigma_prev = None

    def rule(model, x, eps, sigma, sigma_next, info):
        nonlocal x0_prev, sigma_prev
        x0_hat = add_scaled(x, eps, -sigma)
        if x0_prev is None or sigma_next == 0.0:
            d = x0_hat
        else:
            h = math.log(sigma / sigma_next)
            h_last = math.log(sigma_prev / sigma)
            c = 1.0 / (2.0 * (h_last / h))
            # (1 + c) x̂0_t − c x̂0_{t+1} = lerp(x̂0_{t+1}, x̂0_t, 1 + c)
            d = torch.lerp(x0_prev, x0_hat, 1.0 + c)
        x0_prev, sigma_prev = x0_hat, sigma
        if sigma_next == 0.0:
            x_next = d
        else:
            # e^{−h} = σ_{t−1}/σ_t: x_{t−1} = e^{−h} x_t + (1 − e^{−h}) D_t.
            ratio = sigma_next / sigma
            x_next = torch.add(ratio * x, d, alpha=1.0 - ratio)
        return x_next, (x - d) / sigma if info else None, x0_hat

    return rule


# --------------------------------------------------------------------------- samplers


def sample(
    denoiser: Callable,
    sigmas: Any,
    x: Any,
    *,
    gamma: float = 1.0,
    mu: float = 0.0,
    generator: torch.Generator | int | None = None,
    callback: Callable[[StepInfo], Any] | None = None,
    return_trajectory: bool = False,
):
    """Run THEORY §5's sampler from ``x = x_N`` along ``sigmas``.

    Parameters
    ----------
    denoiser : callable
        ``denoiser(x, sigma) -> eps`` with ``sigma`` a Python float; returns a tensor
        of ``x``'s shape on ``x``'s device (any ``tm.Denoiser``, a wrapped network, a
        lambda).
    sigmas : 1-D tensor, array or list, length ``N + 1``
        ``σ_N > … > σ_0 ≥ 0``: strictly decreasing, finite, non-negative. ``σ_0 = 0``
        makes the last step return ``x_1 − σ_1 ε̄_1`` without a model call.
    x : tensor ``(B, *shape)``
        The starting point ``x_N`` (typically ``σ_N ξ``). Floating point; its dtype
        and device are kept.
    gamma : float > 0
        Extrapolation ``ε̄_t = γ ε_t + (1 − γ) ε_{t+1}`` (not applied on the first
        step). 1 is DDIM/DDPM, 2 the paper's gradient estimation.
    mu : float in [0, 1)
        Stochasticity: 0 is deterministic (DDIM), ½ is DDPM's ancestral step.
    generator : torch.Generator, list of torch.Generator, int or None
        Source of the noise ``ξ``, used only when ``mu > 0`` and ``ζ > 0``: one
        ``randn(x.shape)`` per such step, drawn on the generator's device. A list holds
        one generator per sample (``len = B``, one device): row ``b`` of every ``ξ`` is
        drawn from ``generator[b]``, so a sample's noise does not depend on its batch
        (as diffusers' lists of generators). An int is a seed for a CPU generator;
        ``None`` with ``mu > 0`` draws from a fresh, randomly seeded generator (not
        reproducible). Ignored when ``mu = 0``.
    callback : callable, optional
        Called after each model evaluation with a :class:`StepInfo`.
    return_trajectory : bool
        Return a :class:`Trajectory` instead of the final ``x``.

    Returns
    -------
    torch.Tensor or Trajectory
        ``x_0`` (shape, dtype and device of ``x``), or the whole run.

    Raises
    ------
    ValueError
        For bad arguments, an empty batch ``x`` (``B = 0``), and — after the run — when a
        model output or an iterate was not finite: the message names the first step and
        its σ. The check costs one reduction per model evaluation and a single device
        synchronisation at the end of the run (none inside the loop).

    Notes
    -----
    Exactly ``N = len(sigmas) − 1`` model evaluations. With ``μ = 0`` the step is
    ``x_{t−1} = x_t − (σ_t − σ_{t−1}) ε̄_t``; with ``γ = 1`` this is gradient descent
    on ``½ dist_K²`` with step ``β_t = 1 − σ_{t−1}/σ_t`` when ``x̂0`` is the
    projection (THEORY §3). With ``μ = ½``, ``σ' = σ_{t−1}²/σ_t`` and
    ``ζ² = σ_{t−1}²(σ_t² − σ_{t−1}²)/σ_t²``: the mean and variance of the Gaussian
    posterior ``q(x_{t−1} | x_t, x̂0)``.

    Examples
    --------
    >>> import torch, toymanifold as tm
    >>> sig = tm.schedules.loglinear(10.0, 0.01, 20)
    >>> x = sig[0].item() * torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    >>> out = tm.gradient_estimation(tm.ProjectionDenoiser(tm.Circle()), sig, x)
    """
    gamma, mu = _check_gamma_mu(gamma, mu)
    _check_generator(generator, x)
    gen = None if mu == 0 else list(generator) if isinstance(generator, (list, tuple)) else make_generator(generator)
    return _drive(denoiser, sigmas, x, _section5_rule(gamma, mu, gen), callback, return_trajectory)


def ddim(denoiser: Callable, sigmas: Any, x: Any, **kw):
    """DDIM (= Euler on the probability-flow ODE in σ-space): :func:`sample` with γ = 1, μ = 0.

    Gradient descent on ``½ dist_K²`` with step ``β_t = 1 − σ_{t−1}/σ_t`` when the
    denoiser is a projection (THEORY §3). ``N`` model evaluations.
    """
    return sample(denoiser, sigmas, x, gamma=1.0, mu=0.0, **kw)


def ddpm(denoiser: Callable, sigmas: Any, x: Any, **kw):
    """DDPM ancestral sampling: :func:`sample` with γ = 1, μ = ½ (THEORY §5).

    Pass ``generator=`` (a ``torch.Generator`` or an int seed) for reproducible noise.
    ``N`` model evaluations.
    """
    return sample(denoiser, sigmas, x, gamma=1.0, mu=0.5, **kw)


def gradient_estimation(denoiser: Callable, sigmas: Any, x: Any, gamma: float = 2.0, **kw):
    """Gradient-estimation sampler: :func:`sample` with γ = 2 (default), μ = 0 (THEORY §5).

    ``ε̄_t = ε_t + (γ − 1)(ε_t − ε_{t+1})`` extrapolates the slowly rotating denoiser
    output at no extra model cost; ``gamma=1`` is DDIM bit for bit. Pass ``mu=`` for
    the stochastic variant. ``N`` model evaluations.
    """
    return sample(denoiser, sigmas, x, gamma=gamma, **kw)


def heun(
    denoiser: Callable,
    sigmas: Any,
    x: Any,
    *,
    generator: torch.Generator | int | None = None,
    callback: Callable[[StepInfo], Any] | None = None,
    return_trajectory: bool = False,
):
    """EDM's deterministic second-order Heun sampler (Karras et al. 2022, Alg. 1, no churn).

    In σ-space the probability-flow ODE is ``dx/dσ = ε(x, σ)`` (THEORY §5 with μ = 0).
    Each step takes an Euler predictor ``x' = x_t + (σ_{t−1} − σ_t) ε_t`` and the
    trapezoidal corrector ``x_{t−1} = x_t + (σ_{t−1} − σ_t)(ε_t + ε(x', σ_{t−1}))/2``;
    a last step to ``σ = 0`` is plain Euler (no model call at σ = 0), as in
    k-diffusion's ``sample_heun``. Cost: ``2N`` evaluations, ``2N − 1`` when the
    schedule ends in 0 (see :func:`nfe`). Same calling convention as :func:`sample`;
    ``generator`` is accepted for interchangeability and unused.
    """
    _check_generator(generator)
    return _drive(denoiser, sigmas, x, _heun_rule, callback, return_trajectory)


def dpmpp_2m(
    denoiser: Callable,
    sigmas: Any,
    x: Any,
    *,
    generator: torch.Generator | int | None = None,
    callback: Callable[[StepInfo], Any] | None = None,
    return_trajectory: bool = False,
):
    """DPM-Solver++(2M) (Lu et al. 2022), step for step as k-diffusion's ``sample_dpmpp_2m``.

    With ``λ = −log σ``, ``h = λ_{t−1} − λ_t`` and ``x̂0_t = x_t − σ_t ε_t``:
    ``x_{t−1} = (σ_{t−1}/σ_t) x_t + (1 − e^{−h}) D_t`` where ``D_t = x̂0_t`` on the
    first step and on a last step to ``σ = 0`` (which then returns ``x̂0_1``), else
    ``D_t = (1 + 1/(2r)) x̂0_t − 1/(2r) x̂0_{t+1}``, ``r = h_{prev}/h``. ``N`` model
    evaluations, one per step. The trajectory's ``eps_bar`` is the effective direction
    ``(x_t − D_t)/σ_t``. ``generator`` is accepted for interchangeability and unused.
    """
    _check_generator(generator)
    return _drive(denoiser, sigmas, x, _dpmpp_2m_rule(), callback, return_trajectory)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class SamplerInfo:
    """One entry of :data:`SAMPLERS`: a sampler, its cost and how figures and tables show it.

    ``run(denoiser, sigmas, x, **kw)`` is the sampler with this entry's fixed settings
    (e.g. ``gamma = 2`` for gradient estimation); ``evals_per_step`` model evaluations
    per step, one fewer on a last step to ``σ = 0`` when ``saves_final_eval`` (Heun's
    last step is plain Euler); ``stochastic`` samplers take a ``generator``. ``label``
    and ``color`` are the one name and colour this sampler has in every figure, table
    and notebook.
    """

    name: str
    label: str
    color: str
    run: Callable
    evals_per_step: int = 1
    saves_final_eval: bool = False
    stochastic: bool = False

    def nfe(self, n_steps: int, final_zero: bool = False) -> int:
        """Model evaluations of an ``n_steps``-step run (``final_zero``: the schedule ends at ``σ = 0``)."""
        return self.evals_per_step * n_steps - (1 if final_zero and self.saves_final_eval else 0)

    def steps_for_nfe(self, nfe: int) -> int:
        """The most steps this sampler can take within ``nfe`` model evaluations (schedule ending above 0)."""
        return nfe // self.evals_per_step


#: The samplers of this module by name, in table order: DDIM, DDPM, gradient estimation
#: (γ = 2) and the peers Heun and DPM-Solver++(2M).
SAMPLERS: dict[str, SamplerInfo] = {
    info.name: info
    for info in (
        SamplerInfo("ddim", "DDIM", "#1f77b4", ddim),
        SamplerInfo("ddpm", "DDPM", "#7f7f7f", ddpm, stochastic=True),
        SamplerInfo("gradient_estimation", "GE (γ=2)", "#d62728", gradient_estimation),
        SamplerInfo("heun", "Heun", "#2ca02c", heun, evals_per_step=2, saves_final_eval=True),
        SamplerInfo("dpmpp_2m", "DPM++(2M)", "#9467bd", dpmpp_2m),
    )
}

# Other names of the same cost: "ge" for gradient estimation; Euler is DDIM in σ-space
# (THEORY §5); ``sample`` makes one evaluation per step like DDIM.
_COST_ALIASES = {"ge": "gradient_estimation", "euler": "ddim", "sample": "ddim"}


def sampler_info(sampler: str | Callable) -> SamplerInfo:
    """The :data:`SAMPLERS` entry of ``sampler``: a name, an alias (``"ge"``, ``"euler"``, ``"sample"``), a function."""
    name = sampler if isinstance(sampler, str) else getattr(sampler, "__name__", None)
    name = _COST_ALIASES.get(name, name)
    if name not in SAMPLERS:
        names = sorted(set(SAMPLERS) | set(_COST_ALIASES))
        raise ValueError(f"sampler must be one of {names} or such a function, got {sampler!r}")
    return SAMPLERS[name]


def nfe(sampler: str | Callable, sigmas: Any, *, final_zero: bool | None = None) -> int:
    """Number of model evaluations ``sampler`` makes on a schedule, to compare at equal cost.

    Parameters
    ----------
    sampler : str or callable
        A name of :data:`SAMPLERS` (``"ddim"``, ``"ddpm"``, ``"gradient_estimation"``,
        ``"heun"``, ``"dpmpp_2m"``), an alias (``"ge"``, ``"euler"``, ``"sample"``), or one
        of this module's functions.
    sigmas : schedule or int
        A schedule (its length and last entry decide), or the number of steps ``N``.
    final_zero : bool, optional
        With an int ``sigmas``: whether the schedule ends in ``σ = 0`` (only Heun's cost
        depends on it). Required for ``"heun"`` with an int.

    Returns
    -------
    int
        ``N`` for the one-evaluation-per-step samplers; ``2N`` for Heun, ``2N − 1`` when
        its last step goes to 0.
    """
    info = sampler_info(sampler)
    if isinstance(sigmas, numbers.Integral) and not isinstance(sigmas, bool):
        n = int(sigmas)
        if n < 1:
            raise ValueError(f"sigmas (as a number of steps) must be >= 1, got {n}")
        if info.saves_final_eval and final_zero is None:
            raise ValueError(f"final_zero must be given for {info.name!r} when sigmas is a number of steps")
        return info.nfe(n, bool(final_zero))
    if final_zero is not None:
        raise ValueError("final_zero is only used when sigmas is a number of steps")
    s = check_schedule(sigmas)
    return info.nfe(s.shape[0] - 1, float(s[-1]) == 0.0)
