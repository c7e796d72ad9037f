"""Lemma 1 (THEORY §3) checked at every step of a sampler's trajectory.

Index conventions as in :mod:`analysis.bounds`: schedules and per-step arrays in sampler
order (entry ``i`` of an ``(N,)`` array is the step from ``sigmas[i]`` to ``sigmas[i+1]``,
THEORY's step ``t = N − i``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from toymanifold.validation import (
    as_manifold,
    as_tensor,
    check_eta,
    check_positive,
)

from ._common import dataclass_to_dict, trajectory_iterates

__all__ = ["Lemma1Violation", "TrajectoryCheck", "check_trajectory"]

_F64 = torch.float64


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
