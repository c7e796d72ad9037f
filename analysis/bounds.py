"""Theorem 1 and its corollaries as computable bounds; Lemma 1 checked on trajectories (THEORY §3).

Index conventions. THEORY numbers a schedule ``σ_N > … > σ_0`` from the top; the
toolkit stores schedules in *sampler order*, ``sigmas[i] = σ_{N−i}`` (``sigmas[0] = σ_N``
is where sampling starts, ``sigmas[-1] = σ_0`` where it ends). Every per-step array
returned here is in sampler order as well: entry ``i`` of an ``(N+1,)`` array belongs
to ``σ_{N−i}``, entry ``i`` of an ``(N,)`` array to the step from ``sigmas[i]`` to
``sigmas[i+1]`` (THEORY's step ``t = N − i``). So ``L[0] = L_N = 1`` and ``L[-1] = L_0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from toymanifold.validation import (
    as_manifold,
    as_tensor,
    check_eta,
    check_int,
    check_nu,
    check_positive,
    check_schedule,
)

from ._common import dataclass_to_dict, trajectory_iterates

__all__ = [
    "InitialDistanceBounds",
    "Lemma1Violation",
    "LogLinearGuarantee",
    "SuggestedSchedule",
    "Theorem1Bounds",
    "TrajectoryCheck",
    "check_trajectory",
    "corollary1_bound",
    "corollary2_loglinear",
    "corollary3_initial_distance",
    "suggest_schedule",
    "theorem1_bounds",
]

_F64 = torch.float64


def _positive_tensor(value: Any, name: str, *, allow_zero: bool = False) -> torch.Tensor:
    """A float64 scalar or 1-D tensor of finite values ``> 0`` (or ``>= 0``)."""
    t = as_tensor(value, name, dtype=_F64).cpu()
    if t.ndim > 1:
        raise ValueError(f"{name} must be a number or a 1-D tensor, got shape {tuple(t.shape)}")
    bad = (t < 0) if allow_zero else (t <= 0)
    if t.numel() and bool(bad.any()):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got min {float(t.min())}")
    return t


# --------------------------------------------------------------------------------------
# Theorem 1
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Theorem1Bounds:
    """The quantities of THEORY §3, Theorem 1 (and Corollary 1 for a last step to ``σ = 0``).

    All per-step arrays are in sampler order (module docstring). ``r_N`` may be a number
    or a batch ``(B,)``; fields marked "like r_N" have its shape (``()`` or ``(B,)``) and
    the envelopes are ``(N+1,)`` or ``(N+1, B)``.

    Fields
    ------
    sigmas : (N+1,) float64, the schedule.
    eta, nu : the constants of the (η, ν)-approximate projection.
    r_N : like r_N, ``r(x_N, σ_N) = dist_K(x_N)/(√n σ_N)``.
    dist_N : like r_N, the distance scale of the envelopes: ``dist_K(x_N)`` when given
        (or ``√n σ_N r_N`` from ``ambient_dim``), else 1 (envelopes relative to ``dist_K(x_N)``).
    relative : True when ``dist_N`` was not given (envelopes in units of ``dist_K(x_N)``).
    rho : (N,), ``ρ_t = σ_t/σ_{t−1}`` (``inf`` for a last step to 0).
    beta : (N,), ``β_t = 1 − σ_{t−1}/σ_t`` (``1`` for a last step to 0).
    L, U : (N+1,), ``L_t = ∏_{s>t}(1 − η(ρ_s − 1))``, ``U_t = ∏_{s>t}(1 + η(ρ_s − 1))``;
        ``NaN`` at ``σ = 0`` where the ratio ``r_t`` is undefined.
    lower, upper : the per-step distance envelope ``√n σ_t r_N L_t ≤ dist_K(x_t) ≤ √n σ_t r_N U_t``,
        computed as ``dist_N ∏_{s>t} (1 − β_s(1 ± η))`` (identical, since ``√n σ_N r_N = dist_N``;
        the product form stays finite at ``σ_0 = 0``, where it gives Corollary 1's bound
        ``η dist_K(x_1)`` and the lower bound ``0``).
    step_condition : bool, ``η(ρ_s − 1) < 1`` for every step with ``σ_{s−1} > 0``.
    initial_admissible, lower_condition, upper_condition : bool tensors like r_N:
        ``1/ν ≤ r_N ≤ ν``, ``r_N L_0 ≥ 1/ν``, ``r_N U_0 ≤ ν`` (with ``L_1, U_1`` in place of
        ``L_0, U_0`` when ``σ_0 = 0``, since the last step is then covered by Corollary 1).
    conditions_hold : bool tensor like r_N, all of the above: then the envelope and the
        final bound are guaranteed for every (η, ν)-approximate projection.
    final_bound : like r_N, ``dist_K(x_N) ∏_{s=1}^{N}(1 − β_s(1 − η))`` (= ``upper[-1]``).
    final_step_to_zero : bool, ``σ_0 = 0`` (Corollary 1 used for the last step).
    """

    sigmas: torch.Tensor
    eta: float
    nu: float
    r_N: torch.Tensor
    dist_N: torch.Tensor
    relative: bool
    rho: torch.Tensor
    beta: torch.Tensor
    L: torch.Tensor
    U: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    step_condition: bool
    initial_admissible: torch.Tensor
    lower_condition: torch.Tensor
    upper_condition: torch.Tensor
    conditions_hold: torch.Tensor
    final_bound: torch.Tensor
    final_step_to_zero: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (lists of floats, NaN/inf → ``None``)."""
        return dataclass_to_dict(self)

    def smallest_nu(self) -> torch.Tensor:
        """The smallest ``ν`` for which Theorem 1's conditions hold at this ``r_N`` (like r_N).

        ``max(r_N, 1/r_N, r_N U_0, 1/(r_N L_0))`` (``L_1, U_1`` when ``σ_0 = 0``): the initial
        admissibility and the two conditions at ``t = 0`` rearranged for ``ν``; ``inf`` where
        no ``ν`` works (the step condition fails, or ``L_0 ≤ 0``).
        """
        last = -2 if self.final_step_to_zero else -1
        L0, U0, r = float(self.L[last]), float(self.U[last]), self.r_N
        if not self.step_condition or L0 <= 0.0:
            return torch.full_like(r, math.inf)
        return torch.maximum(torch.maximum(r, 1.0 / r), torch.maximum(r * U0, 1.0 / (r * L0)))

    def conditions(self) -> dict[str, Any]:
        """Which of Theorem 1's conditions hold, counted over the runs (JSON-able; THEORY §3).

        ``{"eta", "nu", "runs": number of r_N values, "hold": how many satisfy all conditions,
        "step_condition": bool, "initial", "lower", "upper": how many satisfy
        1/ν ≤ r_N ≤ ν, r_N L_0 ≥ 1/ν, r_N U_0 ≤ ν, "smallest_nu": the smallest ν that works
        for every run (None if none does)}``.
        """

        def count(ok: torch.Tensor) -> int:
            return int(ok.reshape(-1).sum())

        nu_min = float(self.smallest_nu().max())
        return {
            "eta": self.eta,
            "nu": self.nu,
            "runs": self.r_N.numel(),
            "hold": count(self.conditions_hold),
            "step_condition": self.step_condition,
            "initial": count(self.initial_admissible),
            "lower": count(self.lower_condition),
            "upper": count(self.upper_condition),
            "smallest_nu": nu_min if math.isfinite(nu_min) else None,
        }


def theorem1_bounds(sigmas, eta, nu, r_N, dist_N=None, *, ambient_dim: int | None = None) -> Theorem1Bounds:
    """Evaluate THEORY §3, Theorem 1 for a schedule: ``L_t``, ``U_t``, the distance envelope,
    whether the conditions hold, and the final distance bound.

    Parameters
    ----------
    sigmas : (N+1,) array
        Strictly decreasing schedule in sampler order (``sigmas[0] = σ_N``). The last entry
        may be 0: the last step is then bounded by Corollary 1 (``dist_K(x_0) ≤ η dist_K(x_1)``).
    eta : float in [0, 1)
        The ``η`` of the (η, ν)-approximate projection.
    nu : float ≥ 1
        The ``ν`` of the (η, ν)-approximate projection.
    r_N : float or (B,) array, > 0
        Distance-to-noise ratio of the starting points ``r(x_N, σ_N)``.
    dist_N : float or (B,) array, optional
        ``dist_K(x_N)``. With it the envelopes are absolute distances; without it (and
        without ``ambient_dim``) they are in units of ``dist_K(x_N)``.
    ambient_dim : int, optional
        ``n``; sets ``dist_N = √n σ_N r_N`` (the identity the theorem's envelope rests on).
        Give at most one of ``dist_N`` and ``ambient_dim``.

    Returns
    -------
    Theorem1Bounds
        See its docstring. The envelope is a guarantee only where ``conditions_hold``.

    Examples
    --------
    >>> import analysis
    >>> b = analysis.theorem1_bounds([8.0, 4.0, 2.0, 1.0], eta=0.1, nu=2.0, r_N=1.0)
    >>> bool(b.conditions_hold), round(float(b.U[-1]), 6)   # U_0 = 1.1^3
    (True, 1.331)
    """
    s = check_schedule(sigmas, "sigmas")
    eta = check_eta(eta, "eta")
    nu = check_nu(nu, "nu")
    r = _positive_tensor(r_N, "r_N")
    if dist_N is not None and ambient_dim is not None:
        raise ValueError("give at most one of dist_N and ambient_dim, got both")
    if dist_N is not None:
        dN = _positive_tensor(dist_N, "dist_N")
        try:
            r, dN = torch.broadcast_tensors(r, dN)
        except RuntimeError as exc:
            raise ValueError(f"dist_N of shape {tuple(dN.shape)} does not match r_N of shape {tuple(r.shape)}") from exc
        relative = False
    elif ambient_dim is not None:
        n = check_int(ambient_dim, "ambient_dim", minimum=1)
        dN = math.sqrt(n) * float(s[0]) * r
        relative = False
    else:
        dN = torch.ones_like(r)
        relative = True

    N = s.shape[0] - 1
    to_zero = float(s[-1]) == 0.0
    prev, cur = s[1:], s[:-1]
    with torch.no_grad():
        # q = σ_{t−1}/σ_t and β = 1 − q = (σ_t − σ_{t−1})/σ_t, the latter from the difference
        # of the sigmas: 1 − q would lose all relative accuracy of q when q is tiny.
        q = prev / cur
        beta = (cur - prev) / cur  # exactly 1 for a last step to 0
        pos = prev > 0  # steps with σ_{t−1} > 0, where ρ_t and the ratio argument exist
        rho = torch.where(pos, cur / torch.where(pos, prev, torch.ones_like(prev)), torch.inf)
        # η(ρ − 1) with ρ − 1 = (σ_t − σ_{t−1})/σ_{t−1}: no cancellation for ρ near 1.
        a = torch.where(pos, eta * (cur - prev) / torch.where(pos, prev, torch.ones_like(prev)), torch.zeros_like(rho))
        step_condition = bool((a[pos] < 1.0).all())

        ones = torch.ones(1, dtype=_F64)
        L = torch.cat([ones, torch.cumprod(1.0 - a, 0)])
        U = torch.cat([ones, torch.cumprod(1.0 + a, 0)])
        if to_zero:
            L[-1] = math.nan
            U[-1] = math.nan
        # Envelope by products of per-step factors (THEORY §3, proof of Theorem 1):
        # (1 − β(1 − η)) = (σ_{t−1}/σ_t)(1 + η(ρ − 1)), finite also for β = 1.
        # Written as q ± ηβ = 1 − β(1 ∓ η), accurate also for tiny q.
        up_f = q + eta * beta
        lo_f = (q - eta * beta).clamp_min(0.0)
        up_rel = torch.cat([ones, torch.cumprod(up_f, 0)])
        lo_rel = torch.cat([ones, torch.cumprod(lo_f, 0)])
        shape = (N + 1,) + (1,) * r.ndim
        upper = up_rel.reshape(shape) * dN
        lower = lo_rel.reshape(shape) * dN

        last = -2 if to_zero else -1  # the last σ_t > 0
        initial = (r >= 1.0 / nu) & (r <= nu)
        lower_c = r * L[last] >= 1.0 / nu
        upper_c = r * U[last] <= nu
        hold = initial & lower_c & upper_c & step_condition
    return Theorem1Bounds(
        sigmas=s,
        eta=eta,
        nu=nu,
        r_N=r,
        dist_N=dN,
        relative=relative,
        rho=rho,
        beta=beta,
        L=L,
        U=U,
        lower=lower,
        upper=upper,
        step_condition=step_condition,
        initial_admissible=initial,
        lower_condition=lower_c,
        upper_condition=upper_c,
        conditions_hold=hold,
        final_bound=upper[-1],
        final_step_to_zero=to_zero,
    )


# --------------------------------------------------------------------------------------
# Corollaries
# --------------------------------------------------------------------------------------
def corollary1_bound(eta, dist_1) -> torch.Tensor:
    """THEORY §3, Corollary 1: a last DDIM step to ``σ_0 = 0`` lands at ``x_0 = x̂0(x_1, σ_1)`` and
    ``dist_K(x_0) ≤ η dist_K(x_1)`` whenever ``(x_1, σ_1)`` is ν-admissible.

    Parameters
    ----------
    eta : float in [0, 1)
    dist_1 : float or array of ``dist_K(x_1)`` (≥ 0)

    Returns
    -------
    Tensor (float64) of the shape of ``dist_1``: ``η dist_K(x_1)``.
    """
    eta = check_eta(eta, "eta")
    d = as_tensor(dist_1, "dist_1", dtype=_F64)
    if d.numel() and bool((d < 0).any()):
        raise ValueError(f"dist_1 must be >= 0, got min {float(d.min())}")
    return eta * d


@dataclass(frozen=True)
class LogLinearGuarantee:
    """THEORY §3, Corollary 2 for ``σ_t = σ_0 ρ^t``, ``t = 0..N``.

    Fields: ``eta, nu, r_N, n_steps`` (N), ``sigma_max`` (σ_N), ``sigma_min`` (σ_0), ``rho``;
    ``U0 = (1 + η(ρ−1))^N``, ``L0 = (1 − η(ρ−1))^N`` (``L0 = 0`` if ``η(ρ−1) ≥ 1``);
    ``nu_floor = r_N (σ_N/σ_0)^η`` (Bernoulli: ``r_N U0 ≥ nu_floor`` for every N, with
    equality as ``N → ∞``, so no refinement tracks with a smaller ν);
    ``nu_required = max(1, r_N U0, 1/(r_N L0))``, the smallest ν for which Theorem 1's
    conditions hold (``inf`` if the step condition fails);
    ``tracking``: Theorem 1's conditions hold for the given ``nu``;
    ``rate = 1 − (1 − 1/ρ)(1 − η)``, the per-step contraction of the distance bound;
    ``final_ratio = rate^N``, the bound on ``dist_K(x_0)/dist_K(x_N)``.
    """

    eta: float
    nu: float
    r_N: float
    n_steps: int
    sigma_max: float
    sigma_min: float
    rho: float
    U0: float
    L0: float
    nu_floor: float
    nu_required: float
    tracking: bool
    rate: float
    final_ratio: float

    def to_dict(self) -> dict[str, Any]:
        return dataclass_to_dict(self)


def corollary2_loglinear(eta, nu, n_steps, sigma_max, sigma_min, r_N=1.0) -> LogLinearGuarantee:
    """THEORY §3, Corollary 2: Theorem 1 on a log-linear schedule from ``sigma_max`` to ``sigma_min``
    in ``n_steps`` steps (``ρ = (σ_max/σ_min)^{1/N}``).

    Returns a :class:`LogLinearGuarantee` with ``U0``, ``L0``, the Bernoulli floor on ν,
    the smallest ν that tracks, whether the given ``nu`` tracks, and the linear rate.
    """
    eta = check_eta(eta, "eta")
    nu = check_nu(nu, "nu")
    N = check_int(n_steps, "n_steps", minimum=1)
    smax = check_positive(sigma_max, "sigma_max")
    smin = check_positive(sigma_min, "sigma_min")
    if not smax > smin:
        raise ValueError(f"sigma_max must be > sigma_min, got sigma_max={smax}, sigma_min={smin}")
    r = check_positive(r_N, "r_N")
    log_ratio = math.log(smax / smin)
    rho = math.exp(log_ratio / N)
    a = eta * math.expm1(log_ratio / N)  # η(ρ − 1) without cancellation
    U0 = math.exp(N * math.log1p(a))
    L0 = math.exp(N * math.log1p(-a)) if a < 1 else 0.0
    nu_required = max(1.0, r * U0, 1.0 / (r * L0)) if L0 > 0 else math.inf
    tracking = a < 1 and (1.0 / nu <= r <= nu) and r * U0 <= nu and r * L0 >= 1.0 / nu
    rate = 1.0 - (1.0 - 1.0 / rho) * (1.0 - eta)
    return LogLinearGuarantee(
        eta=eta,
        nu=nu,
        r_N=r,
        n_steps=N,
        sigma_max=smax,
        sigma_min=smin,
        rho=rho,
        U0=U0,
        L0=L0,
        nu_floor=r * math.exp(eta * log_ratio),
        nu_required=nu_required,
        tracking=bool(tracking),
        rate=rate,
        final_ratio=rate**N,
    )


@dataclass(frozen=True)
class InitialDistanceBounds:
    """THEORY §3, Corollary 3: ``max(0, σ_N‖ξ‖ − R) ≤ dist_K(σ_N ξ) ≤ σ_N‖ξ‖ + R``.

    ``dist_lower``, ``dist_upper`` have the shape of ``xi_norm``; ``r_lower``, ``r_upper`` are
    the same divided by ``√n σ_N`` (``None`` without ``ambient_dim``).
    """

    dist_lower: torch.Tensor
    dist_upper: torch.Tensor
    r_lower: torch.Tensor | None
    r_upper: torch.Tensor | None

    def to_dict(self) -> dict[str, Any]:
        return dataclass_to_dict(self)


def corollary3_initial_distance(sigma_N, xi_norm, radius, ambient_dim: int | None = None) -> InitialDistanceBounds:
    """THEORY §3, Corollary 3: bounds on ``dist_K(x_N)`` for ``x_N = σ_N ξ`` and ``K ⊂ B(0, R)``.

    Parameters
    ----------
    sigma_N : float > 0
    xi_norm : float or array of ``‖ξ‖`` (≥ 0); ``‖ξ‖ ≈ √n`` for ``ξ ~ N(0, I_n)``.
    radius : float ≥ 0, ``R`` (e.g. ``manifold.diameter_bound``; must be finite).
    ambient_dim : int, optional; with it the bounds on ``r_N = dist_K(x_N)/(√n σ_N)`` are returned too.
    """
    sN = check_positive(sigma_N, "sigma_N")
    R = as_tensor(radius, "radius", dtype=_F64)
    if R.ndim != 0 or float(R) < 0:
        raise ValueError(f"radius must be a finite number >= 0, got {radius!r}")
    xi = as_tensor(xi_norm, "xi_norm", dtype=_F64)
    if xi.numel() and bool((xi < 0).any()):
        raise ValueError(f"xi_norm must be >= 0, got min {float(xi.min())}")
    lo = (sN * xi - R).clamp_min(0.0)
    hi = sN * xi + R
    if ambient_dim is None:
        return InitialDistanceBounds(lo, hi, None, None)
    n = check_int(ambient_dim, "ambient_dim", minimum=1)
    scale = math.sqrt(n) * sN
    return InitialDistanceBounds(lo, hi, lo / scale, hi / scale)


# --------------------------------------------------------------------------------------
# suggest_schedule (the project's own use of Corollary 2)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SuggestedSchedule:
    """The widest log-linear schedule for which Theorem 1 guarantees tracking.

    Fields: ``sigmas`` (N+1,) float64 in sampler order, ``σ_max = σ_min ρ^N`` down to
    ``σ_min``; ``rho``; ``sigma_max``; ``sigma_min``; ``n_steps``; ``eta``; ``nu``; ``r_N``;
    ``U0``, ``L0`` (Theorem 1's products on this schedule); ``binding``: which condition
    is active, ``"upper"`` (``r_N U0 = ν``) or ``"lower"`` (``r_N L0 = 1/ν``);
    ``final_ratio``: guaranteed ``dist_K(x_0)/dist_K(x_N) ≤ ∏(1 − β(1 − η))``;
    ``final_distance_per_sqrt_n``: guaranteed ``dist_K(x_0)/√n ≤ σ_min r_N U0`` (≤ ``σ_min ν``).
    """

    sigmas: torch.Tensor
    rho: float
    sigma_max: float
    sigma_min: float
    n_steps: int
    eta: float
    nu: float
    r_N: float
    U0: float
    L0: float
    binding: str
    final_ratio: float
    final_distance_per_sqrt_n: float

    def final_distance(self, ambient_dim: int) -> float:
        """Guaranteed ``dist_K(x_0) ≤ √n σ_min r_N U0`` for ambient dimension ``n``."""
        n = check_int(ambient_dim, "ambient_dim", minimum=1)
        return math.sqrt(n) * self.final_distance_per_sqrt_n

    def to_dict(self) -> dict[str, Any]:
        return dataclass_to_dict(self)


def suggest_schedule(eta, nu, n_steps, sigma_min, r_N=1.0) -> SuggestedSchedule:
    """The widest log-linear schedule whose DDIM run Theorem 1 guarantees to track (THEORY §3, Corollary 2).

    This is the toolkit's own contribution, not a peer library's nor the paper's
    recipe: the paper picks ``σ_max`` empirically, this picks it from a measured ``η``.

    With ``σ_t = σ_min ρ^t`` and ``a = η(ρ − 1)``, Theorem 1's conditions read
    ``(1 + a)^N r_N ≤ ν`` and ``(1 − a)^N r_N ≥ 1/ν`` (the step condition ``a < 1``
    follows from the second). Both are monotone in ``a``, so the largest admissible
    ``a`` is ``a* = min((ν/r_N)^{1/N} − 1, 1 − (ν r_N)^{−1/N})`` and the widest schedule
    has ``ρ = 1 + a*/η``, ``σ_max = σ_min ρ^N``. On it every (η, ν)-approximate
    projection keeps ``(x_t, σ_t)`` ν-admissible and
    ``dist_K(x_0) ≤ dist_K(x_N)(1 − (1 − 1/ρ)(1 − η))^N = √n σ_min r_N U0``.

    ``r_N`` is the starting ratio ``dist_K(x_N)/(√n σ_N)``; by Corollary 3 it is close to 1
    once ``σ_max ≫ R/√n``, so the default 1 fits the usual start ``x_N = σ_max ξ`` (pass a
    measured value, or a conservative one, otherwise). ``ρ`` is then lowered by a few ulps
    if needed so that :func:`theorem1_bounds` confirms the conditions in floating point.

    Parameters
    ----------
    eta : float in (0, 1)
        Measured relative projection error (e.g. ``eta_nu_curve(...).eta_hat`` at ``nu``).
        ``eta = 0`` is refused: an exact projection tracks on every schedule, so none is widest.
        ``eta = inf`` (a denoiser that returned NaN/inf at admissible pairs, which
        ``projection_error`` counts as ``η = inf``) and ``eta = NaN`` (no admissible pair
        measured) are refused with that reason: no schedule is certified for them.
    nu : float ≥ 1
    n_steps : int ≥ 1
    sigma_min : float > 0, the last noise level ``σ_0`` (Theorem 1 needs ``σ_0 > 0``; a final
        step to 0 adds a factor ``η`` by Corollary 1).
    r_N : float in [1/ν, ν], default 1.

    Returns
    -------
    SuggestedSchedule

    Examples
    --------
    >>> import analysis
    >>> s = analysis.suggest_schedule(eta=0.1, nu=2.0, n_steps=10, sigma_min=0.01)
    >>> s.binding, round(s.sigma_max, 3)
    ('lower', 1.684)
    """
    _refuse_unmeasured_eta(eta)
    eta = check_eta(eta, "eta")
    if eta == 0:
        raise ValueError(
            "eta must be > 0 for suggest_schedule, got 0: an exact projection (eta = 0) tracks on every "
            "schedule (THEORY §3), so there is no widest one"
        )
    nu = check_nu(nu, "nu")
    N = check_int(n_steps, "n_steps", minimum=1)
    smin = check_positive(sigma_min, "sigma_min")
    r = check_positive(r_N, "r_N")
    if not 1.0 / nu <= r <= nu:
        raise ValueError(f"r_N must lie in [1/nu, nu] = [{1.0 / nu}, {nu}] for Theorem 1 to apply, got {r}")
    a_up = math.expm1(math.log(nu / r) / N)  # (ν/r_N)^{1/N} − 1
    a_lo = -math.expm1(-math.log(nu * r) / N)  # 1 − (ν r_N)^{−1/N}
    a = min(a_up, a_lo)
    binding = "upper" if a_up <= a_lo else "lower"
    if a <= 0:
        raise ValueError(
            f"nu={nu} leaves no room for any step with r_N={r} (Theorem 1 needs r_N U_0 <= nu and r_N L_0 >= 1/nu)"
        )
    # ρ is rounded and theorem1_bounds recomputes η(ρ − 1) from the rounded sigmas, which
    # moves a by about an ulp of ρ relative to ρ − 1; shrink a by a doubling relative step
    # until the conditions hold in floating point (a handful of iterations at most).
    shrink = 4 * N * 2.0**-52
    for _ in range(100):
        rho = 1.0 + a / eta
        powers, rho_t = torch.arange(N, -1, -1, dtype=_F64), torch.tensor(rho, dtype=_F64)
        sigmas = smin * rho_t**powers
        if not bool(torch.isfinite(sigmas).all()):  # ρ^N alone may overflow where σ_min ρ^N does not
            sigmas = smin * rho_t ** (powers / 2) * rho_t ** (powers / 2)
        if not bool(torch.isfinite(sigmas).all()):
            # σ_max/σ_min = (1 + a*/η)^N grows as η shrinks (towards ν^{1/η} for many steps):
            # a smaller η makes it worse; a smaller ν, fewer steps or a smaller σ_min help.
            raise ValueError(
                f"the widest schedule overflows float64: sigma_max = sigma_min * {rho:.6g}^{N} is not finite, "
                f"because eta = {eta:g} is so small that Theorem 1 allows a range of about nu^(1/eta). "
                "Every log-linear schedule within float64 is then covered: choose sigma_max yourself and "
                "check it with corollary2_loglinear, or pass a smaller nu, n_steps or sigma_min"
            )
        b = theorem1_bounds(sigmas, eta, nu, r)
        if bool(b.conditions_hold):
            break
        a *= 1.0 - shrink
        shrink *= 2.0
    else:  # pragma: no cover - the nudge converges within a few iterations
        raise RuntimeError("suggest_schedule could not confirm Theorem 1's conditions in floating point")
    return SuggestedSchedule(
        sigmas=sigmas,
        rho=rho,
        sigma_max=float(sigmas[0]),
        sigma_min=smin,
        n_steps=N,
        eta=eta,
        nu=nu,
        r_N=r,
        U0=float(b.U[-1]),
        L0=float(b.L[-1]),
        binding=binding,
        final_ratio=float(b.final_bound),
        final_distance_per_sqrt_n=smin * r * float(b.U[-1]),
    )


def _refuse_unmeasured_eta(eta: Any) -> None:
    """Say why an infinite or NaN measured ``η̂`` certifies nothing (before ``check_eta``'s generic message)."""
    try:
        v = float(eta)
    except (TypeError, ValueError, RuntimeError):
        return  # check_eta names the type
    if math.isinf(v) and v > 0:
        raise ValueError(
            "eta = inf: the denoiser returned non-finite outputs (NaN or inf) at admissible pairs, which "
            "analysis.projection_error counts as eta = inf; Theorem 1 certifies no schedule for it"
        )
    if math.isnan(v):
        raise ValueError(
            "eta = NaN: no measured pair was nu-admissible (eta_nu_curve reports NaN there); "
            "measure at more noise levels before asking for a schedule"
        )


# --------------------------------------------------------------------------------------
# Lemma 1 on trajectories
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lemma1Violation:
    """One failed inequality: ``step`` i (from ``sigmas[i]`` to ``sigmas[i+1]``, THEORY's
    ``t = N − i``), ``sample`` b, ``kind`` (``"lower"``/``"upper"`` for Lemma 1 with the
    measured ``e_t``; ``"eta_lower"``/``"eta_upper"`` for its η-form), the measured
    ``dist_K(x_{t−1})`` (``value``), the ``bound``, and ``excess`` beyond it (> slack)."""

    step: int
    sample: int
    kind: str
    value: float
    bound: float
    excess: float


@dataclass(frozen=True)
class TrajectoryCheck:
    """Lemma 1 (THEORY §3) evaluated at every step of a trajectory, sampler order.

    Fields: ``sigmas`` (N+1,); ``beta`` (N,); ``dist`` (N+1, B) ``d_t = dist_K(x_t)``;
    ``err`` (N, B) measured ``e_t = ‖x_t − σ_t ε̄_t − p_t‖``; ``ratio`` (N, B) ``e_t/d_t``
    (NaN where ``d_t = 0``); ``lower``, ``upper`` (N, B) Lemma 1's bounds on ``d_{t−1}``;
    ``eta_lower``, ``eta_upper`` (N, B) the η-form bounds (``None`` without ``eta``);
    ``slack`` (N, B) the floating-point allowance used; ``violations`` (list of
    :class:`Lemma1Violation`); ``ok`` is True when there are none.
    """

    sigmas: torch.Tensor
    beta: torch.Tensor
    dist: torch.Tensor
    err: torch.Tensor
    ratio: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    eta_lower: torch.Tensor | None
    eta_upper: torch.Tensor | None
    slack: torch.Tensor
    violations: list[Lemma1Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        d = dataclass_to_dict(self)
        d["ok"] = self.ok
        return d


def _flat_steps(t: torch.Tensor, name: str, lead: int, B: int) -> torch.Tensor:
    if t.ndim < 2 or t.shape[0] != lead or t.shape[1] != B:
        raise ValueError(f"traj.{name} must have shape ({lead}, {B}, ...), got {tuple(t.shape)}")
    return t.reshape(lead, B, -1)


def check_trajectory(traj, manifold, eta=None, *, rtol: float | None = None) -> TrajectoryCheck:
    """Check THEORY §3, Lemma 1 at every step of a deterministic first-order trajectory.

    Lemma 1 applies to any update ``x_{t−1} = x_t + (σ_{t−1} − σ_t) ε̄_t``: DDIM
    (``ε̄ = ε``), and the gradient-estimation sampler with its ``ε̄`` (THEORY §5, ``μ = 0``),
    with ``x̂ = x_t − σ_t ε̄_t`` in place of ``x̂0``. For each step it measures
    ``d_t``, ``d_{t−1}`` and ``e_t = ‖x̂ − proj_K(x_t)‖`` with the manifold's exact oracle
    (in float64) and checks ``(1 − β_t) d_t − β_t e_t ≤ d_{t−1} ≤ (1 − β_t) d_t + β_t e_t``,
    which holds for *every* closed ``K`` and every denoiser, so a violation means a bug
    (in the sampler, the oracle or the trajectory record). With ``eta`` it also checks
    the η-form ``(1 − β_t(1 + η)) d_t ≤ d_{t−1} ≤ (1 − β_t(1 − η)) d_t``, which holds
    where the denoiser meets ``e_t ≤ η d_t``; a violation there says the denoiser is
    not an η-approximate projection at that point (see ``ratio``).

    Floating-point allowance. The stored iterate is ``x_{t−1} = fl(x_t + Δσ ε̄)``, i.e.
    an exact step perturbed by at most a few unit roundoffs of ``‖x_{t−1}‖`` and
    ``|Δσ| ‖ε̄‖`` (componentwise bounds carry over to norms without a factor of n);
    measuring ``x̂`` and the distances adds a few roundoffs of ``‖x‖``, ``σ‖ε̄‖`` and
    ``‖p‖``, the float64 oracle's length-n dot products up to ``n`` float64 roundoffs.
    So each inequality is tested with the slack
    ``rtol · (‖x_t‖ + ‖x_{t−1}‖ + σ_t ‖ε̄_t‖ + ‖p_t‖ + ‖p_{t−1}‖)`` with default
    ``rtol = 8 eps(traj dtype) + n eps(float64)``. A real violation of Lemma 1 is of the
    size of the terms it bounds, far above this.

    Parameters
    ----------
    traj : toymanifold.Trajectory
        With ``xs`` (N+1, B, *shape), ``eps`` (N, B, *shape), ``eps_bar`` (or None) and
        ``sigmas`` (N+1,). The step relation is verified (same slack) and a
        ``ValueError`` names ``traj`` if it fails (e.g. DDPM, whose step adds noise).
        The peers ``heun``/``dpmpp_2m`` record their effective direction as ``eps_bar``,
        so they pass, and Lemma 1 holds for them with their effective ``x̂``; only the
        η-form is then not implied by the denoiser's η.
    manifold : toymanifold.Manifold
    eta : float in [0, 1), optional
    rtol : float, optional; see above.

    Returns
    -------
    TrajectoryCheck
    """
    # The one implementation of the bounds, shared with toymanifold.testing.check_denoiser
    # (imported here: toymanifold.testing loads Hypothesis, which analysis need not pay for).
    from toymanifold.testing import lemma1_bounds

    as_manifold(manifold)
    if eta is not None:
        eta = check_eta(eta, "eta")
    s, xs_raw = trajectory_iterates(traj, manifold.ambient_dim)
    N, B, n = xs_raw.shape[0] - 1, xs_raw.shape[1], xs_raw.shape[2]
    dtype = xs_raw.dtype
    xs = xs_raw.to(_F64)
    eb = getattr(traj, "eps_bar", None)
    eb = traj.eps if eb is None else eb
    ebar = _flat_steps(as_tensor(eb, "traj.eps_bar"), "eps_bar", N, B).to(_F64)
    if rtol is None:
        rtol = 8 * torch.finfo(dtype).eps + n * torch.finfo(_F64).eps
    rtol = check_positive(rtol, "rtol")

    norm = torch.linalg.vector_norm
    p, d = manifold.project_with_distance(xs.reshape(-1, n))
    p = p.reshape(N + 1, B, n)
    d = d.reshape(N + 1, B)
    cur, nxt = s[:-1, None], s[1:, None]
    beta = (1.0 - s[1:] / s[:-1])[:, None]
    xnorm = norm(xs, dim=-1)
    enorm = norm(ebar, dim=-1)
    slack = rtol * (xnorm[:-1] + xnorm[1:] + cur * enorm + norm(p[:-1], dim=-1) + norm(p[1:], dim=-1))

    # The recorded step must be the first-order update Lemma 1 is about.
    step_err = norm(xs[1:] - xs[:-1] - (nxt - cur)[..., None] * ebar, dim=-1)
    if bool((step_err > slack).any()):
        i, b = (int(v) for v in torch.nonzero(step_err > slack)[0])
        raise ValueError(
            "traj is not a deterministic first-order trajectory x_{t-1} = x_t + (sigma_{t-1} - sigma_t) eps_bar_t "
            f"(Lemma 1 needs DDIM or gradient estimation with mu = 0): step {i}, sample {b} is off by "
            f"{float(step_err[i, b]):.3e} > {float(slack[i, b]):.3e}"
        )
    xhat = xs[:-1] - cur[..., None] * ebar
    e = norm(xhat - p[:-1], dim=-1)
    dt, dn = d[:-1], d[1:]
    bounds = lemma1_bounds(dt, e, beta, eta)
    ratio = torch.where(dt > 0, e / torch.where(dt > 0, dt, torch.ones_like(dt)), torch.nan)
    violations = []
    for kind, bound in bounds.items():
        excess = bound - dn if kind.endswith("lower") else dn - bound
        for i, b in torch.nonzero(excess > slack).tolist():
            violations.append(Lemma1Violation(i, b, kind, float(dn[i, b]), float(bound[i, b]), float(excess[i, b])))
    return TrajectoryCheck(
        sigmas=s,
        beta=beta[:, 0],
        dist=d,
        err=e,
        ratio=ratio,
        lower=bounds["lower"],
        upper=bounds["upper"],
        eta_lower=bounds.get("eta_lower"),
        eta_upper=bounds.get("eta_upper"),
        slack=slack,
        violations=violations,
    )
