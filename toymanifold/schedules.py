"""σ schedules for the samplers (THEORY §5).

Every schedule is a 1-D float64 CPU tensor ``σ_N > … > σ_0 ≥ 0`` of length
``n_steps + 1`` (``n_steps`` model evaluations for the one-evaluation-per-step
samplers), strictly decreasing, optionally ending in 0. The exception is
:func:`ddpm_sigmas`, the table ``σ_t`` of a discrete-time model indexed by the
training timestep ``t = 0..T−1`` (increasing in ``t``).

- :func:`loglinear`: ``σ_t = σ_min ρ^t``, gradient descent with constant step
  ``β = 1 − 1/ρ`` (THEORY §3, Corollary 2); the paper's choice.
- :func:`karras`: EDM's ``ρ``-spacing (Karras et al. 2022, eq. 5), as k-diffusion's
  ``get_sigmas_karras``.
- :func:`betas`, :func:`alphas_cumprod`, :func:`ddpm_sigmas`: a DDPM model's noise
  table with diffusers' beta schedules; ``σ_t = √((1 − ᾱ_t)/ᾱ_t)`` (THEORY §1).
- :func:`timesteps`, :func:`discrete`: diffusers' inference timestep spacings
  ("leading", "trailing", "linspace") and the σ sequence a DDIM scheduler steps through.
- :func:`paper`, :func:`paper_timesteps`: the schedule and ``γ`` of Permenter & Yuan's
  experiments (THEORY §5), continuous or at the integer timesteps of their image sampler.

All arithmetic is float64 except where :func:`paper` follows the paper's float32 code.
diffusers computes its betas and ``ᾱ`` in float32, so
its tables agree with these to float32 rounding (about ``T · 2⁻²⁴`` relative for
the cumulative product), not bit for bit.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from .validation import check_int, check_positive

__all__ = [
    "PAPER_CELEBA",
    "PAPER_CIFAR10_SIGMA_MAX",
    "alphas_cumprod",
    "betas",
    "ddpm_sigmas",
    "discrete",
    "karras",
    "loglinear",
    "paper",
    "paper_timesteps",
    "timesteps",
]

BETA_SCHEDULES = ("linear", "scaled_linear", "cosine", "squaredcos_cap_v2")
SPACINGS = ("leading", "trailing", "linspace")

#: CelebA settings reported by the paper, ``N -> (γ, σ_max)`` (THEORY §5).
PAPER_CELEBA: dict[int, tuple[float, float]] = {5: (2.0, 40.0), 10: (2.0, 80.0), 20: (2.4, 100.0), 50: (2.8, 120.0)}
#: CIFAR-10: ``σ_max = 40``, ``γ = 2`` for every ``N`` (THEORY §5).
PAPER_CIFAR10_SIGMA_MAX = 40.0
PAPER_CIFAR10_GAMMA = 2.0
#: The paper's DDPM model: linear betas from 1e-4 to 0.02 over ``T = 1000`` steps.
PAPER_BETAS = (1e-4, 0.02)
PAPER_T = 1000


def _check_range(sigma_max: Any, sigma_min: Any) -> tuple[float, float]:
    hi = check_positive(sigma_max, "sigma_max")
    lo = check_positive(sigma_min, "sigma_min")
    if not lo < hi:
        raise ValueError(f"sigma_min must be < sigma_max, got sigma_min = {lo}, sigma_max = {hi}")
    return hi, lo


def _points(n_steps: Any, final_zero: Any) -> int:
    """How many positive sigmas a schedule of ``n_steps`` steps holds."""
    n = check_int(n_steps, "n_steps", minimum=1)
    if not isinstance(final_zero, bool):
        raise TypeError(f"final_zero must be a bool, got {type(final_zero).__name__}")
    if final_zero and n < 2:
        raise ValueError("n_steps must be >= 2 with final_zero=True (sigma_min would not appear), got 1")
    return n if final_zero else n + 1


def _finish(positive: np.ndarray, final_zero: bool) -> torch.Tensor:
    s = np.append(positive, 0.0) if final_zero else positive
    out = torch.from_numpy(np.ascontiguousarray(s, dtype=np.float64))
    if not bool((out[1:] < out[:-1]).all()):
        # Only reachable when the range is too narrow for float64 to separate the points.
        raise ValueError(f"the schedule is not strictly decreasing in float64: {out.tolist()}")
    return out


def loglinear(sigma_max: float, sigma_min: float, n_steps: int, *, final_zero: bool = False) -> torch.Tensor:
    """Log-linear (geometric) schedule from ``sigma_max`` down to ``sigma_min``.

    ``σ_k = σ_max (σ_min/σ_max)^{k/(m−1)}`` for ``k = 0..m−1`` with ``m = n_steps + 1``
    points, or ``m = n_steps`` points followed by 0 when ``final_zero`` (the last step
    then returns ``x̂0``; THEORY §3, Corollary 1). The ratio ``ρ = σ_{t}/σ_{t−1}`` is
    constant, so DDIM with an exact projection is gradient descent with constant step
    ``β = 1 − 1/ρ`` (THEORY §3, Corollary 2). The endpoints are exact.

    Returns
    -------
    torch.Tensor
        float64, shape ``(n_steps + 1,)``, strictly decreasing.

    Examples
    --------
    >>> loglinear(10.0, 0.1, 2)
    tensor([10.0000,  1.0000,  0.1000], dtype=torch.float64)
    """
    hi, lo = _check_range(sigma_max, sigma_min)
    m = _points(n_steps, final_zero)
    k = np.arange(m, dtype=np.float64) / (m - 1)
    s = np.exp(math.log(hi) + k * (math.log(lo) - math.log(hi)))
    s[0], s[-1] = hi, lo
    return _finish(s, final_zero)


def karras(
    sigma_max: float, sigma_min: float, n_steps: int, rho: float = 7.0, *, final_zero: bool = False
) -> torch.Tensor:
    """EDM schedule ``σ_k = (σ_max^{1/ρ} + k/(m−1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ``.

    Karras et al. 2022, eq. 5, as k-diffusion's ``get_sigmas_karras`` (which always
    appends 0: that is ``final_zero=True`` here). ``m = n_steps + 1`` points, or
    ``n_steps`` points and a final 0. ``ρ = 7`` is EDM's default (THEORY §5, peers).
    The endpoints are exact.
    """
    hi, lo = _check_range(sigma_max, sigma_min)
    r = check_positive(rho, "rho")
    m = _points(n_steps, final_zero)
    ramp = np.arange(m, dtype=np.float64) / (m - 1)
    # The same formula divided by σ_max^{1/ρ}: (lo/hi)^{1/ρ} ∈ (0, 1], so no power overflows
    # for any ρ, σ_max (σ_max^{1/ρ} alone overflows at σ_max = 1e300, ρ = 0.5).
    c = (lo / hi) ** (1.0 / r)
    s = hi * (1.0 + ramp * (c - 1.0)) ** r
    s[0], s[-1] = hi, lo
    if not bool((s[1:] < s[:-1]).all()):
        raise ValueError(
            f"rho = {r} is too extreme for float64 to separate {m} points between sigma_min = {lo} "
            f"and sigma_max = {hi}: the points collapse; use a moderate rho (EDM: 7)"
        )
    return _finish(s, final_zero)


# --------------------------------------------------------------------------- discrete time


def _check_betas_args(num_train_timesteps, beta_schedule, beta_start, beta_end):
    T = check_int(num_train_timesteps, "num_train_timesteps", minimum=2)
    if beta_schedule not in BETA_SCHEDULES:
        raise ValueError(f"beta_schedule must be one of {BETA_SCHEDULES}, got {beta_schedule!r}")
    b0 = check_positive(beta_start, "beta_start")
    b1 = check_positive(beta_end, "beta_end")
    if beta_schedule in ("linear", "scaled_linear") and not (b0 <= b1 < 1.0):
        raise ValueError(f"need beta_start <= beta_end < 1, got beta_start = {b0}, beta_end = {b1}")
    return T, b0, b1


def betas(
    num_train_timesteps: int = 1000,
    beta_schedule: str = "linear",
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
) -> torch.Tensor:
    """The ``β_t``, ``t = 0..T−1``, of diffusers' beta schedules, in float64.

    - ``"linear"``: ``linspace(β_start, β_end, T)`` (DDPM; the defaults).
    - ``"scaled_linear"``: ``linspace(√β_start, √β_end, T)²`` (latent diffusion).
    - ``"cosine"`` (alias ``"squaredcos_cap_v2"``): Nichol & Dhariwal's
      ``ᾱ(s) = cos²((s + 0.008)/1.008 · π/2)``, ``β_t = min(1 − ᾱ((t+1)/T)/ᾱ(t/T), 0.999)``
      exactly as diffusers' ``betas_for_alpha_bar``; ``beta_start``/``beta_end`` unused.
    """
    T, b0, b1 = _check_betas_args(num_train_timesteps, beta_schedule, beta_start, beta_end)
    if beta_schedule == "linear":
        b = np.linspace(b0, b1, T, dtype=np.float64)
    elif beta_schedule == "scaled_linear":
        b = np.linspace(b0**0.5, b1**0.5, T, dtype=np.float64) ** 2
    else:

        def abar(s: float) -> float:
            return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

        b = np.array([min(1 - abar((i + 1) / T) / abar(i / T), 0.999) for i in range(T)], dtype=np.float64)
    return torch.from_numpy(b)


def alphas_cumprod(
    num_train_timesteps: int = 1000,
    beta_schedule: str = "linear",
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
) -> torch.Tensor:
    """``ᾱ_t = ∏_{s ≤ t} (1 − β_s)``, ``t = 0..T−1``, float64 (see :func:`betas`)."""
    return torch.cumprod(1.0 - betas(num_train_timesteps, beta_schedule, beta_start, beta_end), dim=0)


def ddpm_sigmas(
    num_train_timesteps: int = 1000,
    beta_schedule: str = "linear",
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
) -> torch.Tensor:
    """``σ_t = √((1 − ᾱ_t)/ᾱ_t)`` for ``t = 0..T−1`` (THEORY §1), float64, increasing in ``t``.

    A DDPM model's ``z_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε`` is ``x = z/√ᾱ_t = x0 + σ_t ε``.
    With the default linear betas σ runs from about 0.01 (t = 0) to about 157 (t = 999).
    """
    a = alphas_cumprod(num_train_timesteps, beta_schedule, beta_start, beta_end)
    return ((1.0 - a) / a).sqrt()


def timesteps(
    n_steps: int,
    *,
    spacing: str = "trailing",
    num_train_timesteps: int = 1000,
    steps_offset: int = 0,
) -> torch.Tensor:
    """Inference timesteps (int64, decreasing) exactly as diffusers' ``DDIMScheduler.set_timesteps``.

    - ``"leading"``: ``arange(N) · ⌊T/N⌋ + steps_offset``, reversed;
    - ``"trailing"``: ``round(arange(T, 0, −T/N)) − 1`` (Lin et al. 2023, Table 2);
    - ``"linspace"``: ``round(linspace(0, T − 1, N))``, reversed.

    ``steps_offset`` applies to "leading" only (as in diffusers). Raises ``ValueError``
    where diffusers' own definition degenerates: "trailing" for the ``N`` at which
    NumPy's floating-point ``arange`` yields an extra timestep ``−1`` (e.g. ``N = 61``
    with ``T = 1000``), and repeated timesteps (``N > T``).
    """
    T = check_int(num_train_timesteps, "num_train_timesteps", minimum=2)
    n = check_int(n_steps, "n_steps", minimum=1)
    off = check_int(steps_offset, "steps_offset", minimum=0)
    if n > T:
        raise ValueError(f"n_steps must be <= num_train_timesteps = {T}, got {n}")
    if spacing == "leading":
        ratio = T // n
        t = (np.arange(0, n) * ratio).round()[::-1].copy().astype(np.int64) + off
    elif spacing == "trailing":
        ratio = T / n
        t = np.round(np.arange(T, 0, -ratio)).astype(np.int64) - 1
    elif spacing == "linspace":
        t = np.linspace(0, T - 1, n).round()[::-1].copy().astype(np.int64)
    else:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    if len(t) != n or t.min() < 0 or t.max() > T - 1 or not (np.diff(t) < 0).all():
        raise ValueError(
            f"diffusers' {spacing!r} spacing is degenerate for n_steps = {n}, num_train_timesteps = {T}"
            f"{', steps_offset = ' + str(off) if off else ''}: got timesteps {t.tolist()}"
        )
    return torch.from_numpy(t)


def discrete(
    n_steps: int,
    *,
    spacing: str = "trailing",
    num_train_timesteps: int = 1000,
    beta_schedule: str = "linear",
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    steps_offset: int = 0,
    set_alpha_to_one: bool = True,
) -> torch.Tensor:
    """σ sequence of a DDPM model sampled at diffusers' inference timesteps (length ``n_steps + 1``).

    ``σ(t_0) > … > σ(t_{N−1})`` at :func:`timesteps`, then the final value as
    diffusers' ``DDIMScheduler`` takes it: ``ᾱ = 1`` (σ = 0) with
    ``set_alpha_to_one=True``, else ``ᾱ_0`` (σ = σ(0)). THEORY §5 lists DDPM-discrete
    with "trailing" spacing among the peers' schedules.

    Note: diffusers' DDIM step uses ``t − ⌊T/N⌋`` as the previous timestep, which is
    the next listed timestep for "leading" always and for "trailing" when ``N``
    divides ``T``; for other combinations diffusers' own steps do not follow its
    timestep list, and this function follows the list.
    """
    if not isinstance(set_alpha_to_one, bool):
        raise TypeError(f"set_alpha_to_one must be a bool, got {type(set_alpha_to_one).__name__}")
    t = timesteps(n_steps, spacing=spacing, num_train_timesteps=num_train_timesteps, steps_offset=steps_offset)
    table = ddpm_sigmas(num_train_timesteps, beta_schedule, beta_start, beta_end)
    final = 0.0 if set_alpha_to_one else float(table[0])
    if not set_alpha_to_one and int(t[-1]) == 0:
        raise ValueError(
            f"set_alpha_to_one=False with {spacing!r} spacing ends at t = 0, so the last step would go from "
            "sigma(0) to sigma(0) (no progress); use set_alpha_to_one=True"
        )
    return torch.cat([table[t], torch.tensor([final], dtype=torch.float64)])


# --------------------------------------------------------------------------- the paper


def _linear_alphas_cumprod_float32() -> torch.Tensor:
    """``ᾱ_t`` of the paper's model as diffusers and the paper's code compute it (float32 throughout)."""
    betas32 = torch.linspace(PAPER_BETAS[0], PAPER_BETAS[1], PAPER_T, dtype=torch.float32)
    return torch.cumprod(1.0 - betas32, dim=0)


def _paper_sigma_end(alphas_cumprod32: torch.Tensor, n_steps: int) -> float:
    """Step 1 of THEORY §5: ``σ_end = √(σ(⌊T/N⌋) σ(0))``, evaluated as the paper's code does.

    That code's DDIM grid is ``⌊linspace(T, 0, N + 1)⌋``, whose last two timesteps are
    ``⌊T/N⌋`` and 0; it computes ``σ(t) = √(1/ᾱ_t − 1)`` and the geometric mean (as
    ``exp`` of the mean of the logs) in float32, and so does this function. (The float32
    ``σ(0)`` is ≈ 5e-5 relative off the float64 value because ``1/ᾱ_0 − 1`` cancels;
    ``σ_end`` follows the code, not the exact value.) ``N = 1`` has no ``σ_end`` (its
    one log-linear σ is ``σ_max``); ``⌊T/N⌋`` is capped at ``T − 1`` so that it exists.
    """
    T = alphas_cumprod32.shape[0]
    sigma32 = (1.0 / alphas_cumprod32 - 1.0).sqrt()
    s_grid, s_zero = sigma32[min(T // n_steps, T - 1)], sigma32[0]  # 0-d float32, as the code's sigma(t)
    return float(((s_grid.log() + s_zero.log()) / 2).exp())


def paper_timesteps(
    n_steps: int, sigma_max: float = PAPER_CIFAR10_SIGMA_MAX, alphas_cumprod: Any = None
) -> torch.Tensor:
    """Integer timesteps ``t_N > … > t_1 > t_0 = 0`` of the paper's schedule (THEORY §5).

    With ``σ(t) = √((1 − ᾱ_t)/ᾱ_t)`` the model's table (increasing, ``t = 0 … T − 1``):

    1. ``σ_end = √(σ(⌊T/N⌋) σ(0))``, in float32 as the paper's code computes it
       (``N = 10``, linear betas: ``σ(100) ≈ 0.3423``, ``σ(0) ≈ 0.0100``,
       ``σ_end ≈ 0.058505``);
    2. ``N`` sigmas log-linear from ``min(σ_max, σ(T − 1))`` to ``σ_end`` (float64);
    3. each mapped to the smallest ``t`` with ``σ(t) ≥ σ`` (``torch.searchsorted`` on
       the table, i.e. ``σ(t − 1) < σ ≤ σ(t)``), then a final ``t = 0``.

    The table of step 3 is float64 from the model's float32 ``ᾱ`` (the table of
    :class:`toymanifold.images.DiscreteTimeEpsModel`); on it the rule gives the paper
    code's timesteps (its search runs on ``ᾱ``). For linear betas and ``σ_max = 40``:
    ``N = 5``: 853, 652, 380, 116, 22, 0; ``N = 10``: 853, 765, 665, 549, 415, 271, 149,
    73, 33, 14, 0.

    Parameters
    ----------
    n_steps : int
        ``N ≥ 1`` model evaluations, ``N < T``.
    sigma_max : float
        Largest σ before the clip to ``σ(T − 1)`` (40 on CIFAR-10; the paper's CelebA
        table is :data:`PAPER_CELEBA`).
    alphas_cumprod : array-like, optional
        The model's ``ᾱ_t``, ``t = 0 … T − 1`` (rounded to float32, as diffusers holds
        it); default: the paper's model, linear betas 1e-4 … 0.02 and ``T = 1000``, as
        diffusers' ``DDPMScheduler()`` computes it.

    Returns
    -------
    torch.Tensor
        int64, strictly decreasing, ending in 0: ``N + 1`` entries, fewer when two σ
        map to the same timestep (from ``N = 72`` with the defaults). Such repeats are
        merged with a ``UserWarning``; the paper's code instead takes a zero-length step
        there (one more model evaluation, after which ``γ``'s extrapolation uses two
        outputs at the same point).
    """
    if alphas_cumprod is None:
        abar32 = _linear_alphas_cumprod_float32()
    else:
        from .images.discrete import validate_alphas_cumprod  # torch-only; imported here to avoid a cycle

        abar32 = validate_alphas_cumprod(alphas_cumprod).to(torch.float32)
    T = abar32.shape[0]
    n = check_int(n_steps, "n_steps", minimum=1)
    if n >= T:
        raise ValueError(f"n_steps must be < num_train_timesteps = {T}, got {n}")
    hi = check_positive(sigma_max, "sigma_max")
    if float(abar32[0]) >= 1.0:
        raise ValueError("the paper's schedule needs σ(0) > 0 (ᾱ_0 < 1); this model has ᾱ_0 = 1")
    abar = abar32.to(torch.float64)
    table = ((1.0 - abar) / abar).sqrt()
    sigma_end = _paper_sigma_end(abar32, n)
    s_max = min(hi, float(table[-1]))
    if n > 1 and s_max <= sigma_end:
        raise ValueError(f"sigma_max must exceed the schedule's end sigma {sigma_end:.6g}, got {sigma_max}")
    # the σ of steps 2 and 3 of :func:`paper` (the paper's code: exp(linspace(log, log)), equal to an ulp)
    sig = loglinear(s_max, sigma_end, n - 1) if n > 1 else torch.tensor([s_max], dtype=torch.float64)
    ts = torch.cat([torch.searchsorted(table, sig).clamp(max=T - 1), torch.zeros(1, dtype=torch.int64)])
    keep = torch.ones_like(ts, dtype=torch.bool)
    keep[1:] = ts[1:] != ts[:-1]
    if not bool(keep.all()):
        warnings.warn(
            f"{int((~keep).sum())} of the paper's {n + 1} timesteps repeat the one before and were merged: "
            f"{int(keep.sum()) - 1} model evaluations instead of {n}",
            stacklevel=2,
        )
    return ts[keep]


def _paper_settings(n_steps: Any, dataset: Any) -> tuple[int, float, float]:
    n = check_int(n_steps, "n_steps", minimum=2)
    if not isinstance(dataset, str):
        raise TypeError(f"dataset must be a str, got {type(dataset).__name__}")
    key = dataset.lower()
    if key == "cifar10":
        gamma, sigma_max = PAPER_CIFAR10_GAMMA, PAPER_CIFAR10_SIGMA_MAX
    elif key == "celeba":
        if n not in PAPER_CELEBA:
            raise ValueError(f"n_steps must be one of {sorted(PAPER_CELEBA)} for 'celeba' (the paper's table), got {n}")
        gamma, sigma_max = PAPER_CELEBA[n]
    else:
        raise ValueError(f"dataset must be 'cifar10' or 'celeba', got {dataset!r}")
    if n >= PAPER_T:
        raise ValueError(f"n_steps must be < {PAPER_T} (the model's T), got {n}")
    return n, gamma, sigma_max


def paper(n_steps: int, dataset: str, *, discrete: bool = False) -> tuple[torch.Tensor, float]:
    """The σ schedule and ``γ`` of Permenter & Yuan's image experiments (THEORY §5).

    For their DDPM model (linear betas 1e-4 to 0.02, T = 1000) and ``N = n_steps``
    model evaluations:

    1. ``σ_end = √(σ(⌊T/N⌋) σ(0))``, the geometric mean of the last two σ of the DDIM
       grid ``⌊linspace(T, 0, N + 1)⌋`` of the paper's code, computed in float32 as that
       code does (``N = 10``: ``σ(100) ≈ 0.3423``, ``σ(0) ≈ 0.0100``, ``σ_end ≈ 0.058505``);
    2. ``N`` sigmas log-linear from ``σ_max`` to ``σ_end``;
    3. a final ``σ(0) ≈ 0.0100`` (not 0): the sampler returns ``x`` there.

    That is ``N + 1`` sigmas and ``N`` model evaluations. ``σ_max`` and ``γ``:
    ``"cifar10"``: 40 and 2 for every ``N ≥ 2``; ``"celeba"``: the paper's table
    ``(N, γ, σ_max) = (5, 2.0, 40), (10, 2.0, 80), (20, 2.4, 100), (50, 2.8, 120)``,
    and no other ``N`` (the paper reports none; this function does not interpolate).

    ``discrete=False`` (default) returns steps 2–3 as they are: the continuous
    log-linear values, for σ-space samplers on toy data. The image sampler instead maps
    every σ to an integer timestep and steps through the table values ``σ(t_k)`` at
    :func:`paper_timesteps`; ``discrete=True`` returns those (starting at
    ``σ(853) ≈ 40.1`` for ``σ_max = 40``), the ``sigmas`` of
    :class:`toymanifold.images.GradientEstimationScheduler` with the same ``σ_max``, so
    that ``tm.gradient_estimation(tm.images.from_diffusers(unet, config), sigmas, x)``
    takes the scheduler's steps. ``σ(t) = √((1 − ᾱ_t)/ᾱ_t)`` is evaluated in float64
    from ``ᾱ`` as diffusers holds it (float32); the final ``σ(0)`` is that value in
    both modes.

    Returns
    -------
    (torch.Tensor, float)
        float64 sigmas of shape ``(n_steps + 1,)``, strictly decreasing (with
        ``discrete=True`` shorter from ``N = 72`` on, with a warning: see
        :func:`paper_timesteps`), and ``γ`` for :func:`toymanifold.gradient_estimation`.
    """
    if not isinstance(discrete, bool):
        raise TypeError(f"discrete must be a bool, got {type(discrete).__name__}")
    n, gamma, sigma_max = _paper_settings(n_steps, dataset)
    abar32 = _linear_alphas_cumprod_float32()
    abar = abar32.to(torch.float64)
    table = ((1.0 - abar) / abar).sqrt()
    if discrete:
        return table[paper_timesteps(n, sigma_max)], gamma
    head = loglinear(sigma_max, _paper_sigma_end(abar32, n), n - 1)  # n points from σ_max to σ_end
    return torch.cat([head, table[:1].clone()]), gamma
