"""Sampler-quality metrics: ODE error, distance to K, sliced Wasserstein, MMD², Fréchet distance.

All metrics work in float64 on the CPU copies of their inputs (the sets compared in
toy experiments are small) and accept tensors or NumPy arrays of shape ``(B, *shape)``,
flattened to ``(B, n)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from toymanifold.validation import as_manifold, as_tensor, check_int, check_positive, check_schedule, make_generator

__all__ = [
    "frechet_distance",
    "frechet_distance_from_stats",
    "mean_distance",
    "median_bandwidth",
    "mmd_rbf",
    "ode_error",
    "ode_reference",
    "refine_schedule",
    "sliced_wasserstein",
]

_F64 = torch.float64


def _flat(x: Any, name: str, *, min_rows: int = 1) -> torch.Tensor:
    # Metrics evaluate samples; they are not differentiated (detach: no autograd through NumPy).
    t = as_tensor(x, name, dtype=_F64).detach().cpu()
    if t.ndim < 2:
        raise ValueError(f"{name} must have shape (B, *shape), got shape {tuple(t.shape)}")
    t = t.reshape(t.shape[0], math.prod(t.shape[1:]))  # not -1: ambiguous for B = 0
    if t.shape[0] < min_rows:
        raise ValueError(f"{name} must hold at least {min_rows} points, got {t.shape[0]}")
    return t


def _row_norms(t: torch.Tensor) -> torch.Tensor:
    """Euclidean norms of the rows, scaled by each row's largest entry so that no square overflows."""
    top = t.abs().amax(1, keepdim=True) if t.shape[1] else t.new_zeros(t.shape[0], 1)
    safe = torch.where(top > 0, top, torch.ones_like(top))
    return top[:, 0] * torch.linalg.vector_norm(t / safe, dim=1)


def _power_of_two_scale(*ts: torch.Tensor) -> float:
    """A power of two ``s`` with every ``|t|/s ≤ 1`` (exact to divide by), 1 for all-zero input."""
    top = max((float(t.abs().max()) for t in ts if t.numel()), default=0.0)
    return 2.0 ** math.ceil(math.log2(top)) if top > 0 else 1.0


def _same_dim(x: torch.Tensor, y: torch.Tensor, nx: str, ny: str) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{nx} and {ny} must have the same dimension, got {x.shape[1]} and {y.shape[1]}")


# --------------------------------------------------------------------------------------
# ODE error
# --------------------------------------------------------------------------------------
def refine_schedule(sigmas, refine: int) -> torch.Tensor:
    """Insert ``refine − 1`` points into every interval of ``sigmas``, keeping every original σ.

    Intervals between positive σ are split geometrically (log-linear, the natural spacing
    of the probability-flow ODE in σ, THEORY §3); a last interval down to ``σ = 0`` is split
    linearly. Returns a float64 schedule of length ``N·refine + 1``.
    """
    s = check_schedule(sigmas, "sigmas")
    k = check_int(refine, "refine", minimum=1)
    frac = torch.arange(k, dtype=_F64) / k
    parts = []
    for a, b in zip(s[:-1].tolist(), s[1:].tolist()):
        if b > 0:
            parts.append(torch.exp(math.log(a) + frac * (math.log(b) - math.log(a))))
        else:
            parts.append(a + frac * (b - a))
        parts[-1][0] = a  # exact endpoints: the reference passes through the same σ
    parts.append(s[-1:].clone())
    return torch.cat(parts)


def ode_reference(denoiser, sigmas, x, *, refine: int = 32, sampler=None) -> torch.Tensor:
    """A fine reference solution of the probability-flow ODE from the same start ``x = x_N``.

    Runs ``sampler`` (default ``toymanifold.heun``, second order) on
    :func:`refine_schedule` ``(sigmas, refine)``, which passes through every σ of the coarse
    schedule and ends at the same ``σ_0``, so ``ode_error(coarse_result, reference)``
    measures the discretisation error of the coarse run alone.

    Parameters
    ----------
    denoiser : callable ``(x, sigma) -> eps``
    sigmas : the coarse schedule (N+1,), strictly decreasing (last entry may be 0).
    x : (B, *shape) the starting point ``x_N`` (the same noise the coarse run used).
    refine : int ≥ 1, sub-steps per coarse step (default 32).
    sampler : callable ``(denoiser, sigmas, x) -> x_0``, default ``toymanifold.heun``.

    Returns
    -------
    Tensor of the shape and dtype of ``x``.
    """
    fine = refine_schedule(sigmas, refine)
    if sampler is None:
        import toymanifold as tm

        sampler = tm.heun
    return sampler(denoiser, fine, x)


def ode_error(x, reference, *, relative: bool = False) -> torch.Tensor:
    """Per-sample ODE error ``‖x_b − x_ref,b‖`` (or divided by ``‖x_ref,b‖``); shape ``(B,)`` float64.

    ``x`` is a sampler's result and ``reference`` the fine solution from the same start
    (:func:`ode_reference`); take ``.mean()`` for the usual scalar.
    """
    a = _flat(x, "x")
    b = _flat(reference, "reference")
    if a.shape != b.shape:
        raise ValueError(f"x and reference must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    e = _row_norms(a - b)
    if not bool(torch.isfinite(e).all()):  # x − reference itself overflows float64
        raise ValueError("x and reference differ by more than float64 can hold (|x − reference| overflows)")
    if relative:
        e = e / _row_norms(b)
    return e


def mean_distance(samples, manifold) -> torch.Tensor:
    """Mean ``dist_K`` of ``samples`` (B, *shape) to the manifold (THEORY §1), a 0-d float64 tensor."""
    as_manifold(manifold)
    x = _flat(samples, "samples")
    if x.shape[1] != manifold.ambient_dim:
        raise ValueError(f"samples flatten to n = {x.shape[1]} but manifold.ambient_dim = {manifold.ambient_dim}")
    return manifold.distance(x).mean()


# --------------------------------------------------------------------------------------
# Sliced Wasserstein
# --------------------------------------------------------------------------------------
def _wasserstein_1d_pow(u: torch.Tensor, v: torch.Tensor, p: float) -> torch.Tensor:
    """Exact ``W_p^p`` between the empirical measures of the columns of ``u`` (m, K) and ``v`` (k, K).

    ``W_p^p = ∫_0^1 |F^{-1}(q) − G^{-1}(q)|^p dq`` with piecewise-constant quantile
    functions; their breakpoints ``i/m`` and ``j/k`` are merged, so unequal sizes are exact.
    """
    us, _ = torch.sort(u, dim=0)
    vs, _ = torch.sort(v, dim=0)
    m, k = us.shape[0], vs.shape[0]
    if m == k:
        return (us - vs).abs().pow(p).mean(0)
    qs = torch.unique(torch.cat([torch.arange(1, m + 1, dtype=_F64) / m, torch.arange(1, k + 1, dtype=_F64) / k]))
    qs[-1] = 1.0
    widths = torch.diff(torch.cat([torch.zeros(1, dtype=_F64), qs]))
    mid = qs - widths / 2  # the quantile index is constant on each (q_{j−1}, q_j]
    iu = torch.clamp((mid * m).floor().long(), max=m - 1)
    iv = torch.clamp((mid * k).floor().long(), max=k - 1)
    return (widths[:, None] * (us[iu] - vs[iv]).abs().pow(p)).sum(0)


def sliced_wasserstein(
    x,
    y,
    num_projections: int = 256,
    p: float = 2.0,
    generator: torch.Generator | int | None = None,
    *,
    projections=None,
) -> torch.Tensor:
    """Sliced Wasserstein distance ``SW_p(x, y) = (mean_θ W_p^p(⟨θ, x⟩, ⟨θ, y⟩))^{1/p}``, 0-d float64.

    ``θ`` are ``num_projections`` directions uniform on the unit sphere (drawn from
    ``generator``), or the rows of ``projections`` (normalised) when given. The 1-D
    distances between the projected empirical measures are exact, also for sets of
    different sizes. For ``y = x + v``: ``W_p(⟨θ,x⟩, ⟨θ,y⟩) = |⟨θ, v⟩|`` and, for uniform
    ``θ``, ``E⟨θ, v⟩² = ‖v‖²/n``.
    """
    a = _flat(x, "x")
    b = _flat(y, "y")
    _same_dim(a, b, "x", "y")
    p = check_positive(p, "p")
    if p < 1:
        raise ValueError(f"p must be >= 1, got {p}")
    if projections is None:
        k = check_int(num_projections, "num_projections", minimum=1)
        g = make_generator(generator)
        theta = torch.randn(k, a.shape[1], generator=g, dtype=_F64)
    else:
        theta = _flat(projections, "projections")
        _same_dim(a, theta, "x", "projections")
    nrm = _row_norms(theta)[:, None]
    if bool((nrm == 0).any()):
        raise ValueError("projections must be nonzero vectors")
    theta = theta / nrm
    # SW_p is positively homogeneous: SW_p(a/s, b/s) = SW_p(a, b)/s. Dividing by a power of
    # two ≥ max |a|, |b| is exact and keeps |⟨θ, ·⟩|^p from overflowing for any finite input.
    s = _power_of_two_scale(a, b)
    w = _wasserstein_1d_pow((a / s) @ theta.T, (b / s) @ theta.T, p)
    return w.mean().pow(1.0 / p) * s


# --------------------------------------------------------------------------------------
# MMD
# --------------------------------------------------------------------------------------
def _sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # Direct differences, not ‖a‖² − 2⟨a,b⟩ + ‖b‖²: exact zeros on the diagonal and no
    # cancellation for nearby points (sets here are small enough for (m, k, n) chunks).
    out = torch.empty(a.shape[0], b.shape[0], dtype=_F64)
    step = max(1, 2**22 // max(1, b.shape[0] * a.shape[1]))
    for i in range(0, a.shape[0], step):
        out[i : i + step] = (a[i : i + step, None, :] - b[None, :, :]).pow(2).sum(-1)
    return out


def median_bandwidth(x, y=None, *, max_points: int = 2000) -> float:
    """Median heuristic: the median Euclidean distance between distinct points of ``x`` (and ``y``) pooled.

    With more than ``max_points`` pooled points, an evenly spaced deterministic subset of
    ``max_points`` is used.
    """
    z = _flat(x, "x")
    if y is not None:
        b = _flat(y, "y")
        _same_dim(z, b, "x", "y")
        z = torch.cat([z, b])
    if z.shape[0] < 2:
        raise ValueError("the median heuristic needs at least 2 points")
    mp = check_int(max_points, "max_points", minimum=2)
    if z.shape[0] > mp:
        z = z[torch.linspace(0, z.shape[0] - 1, mp).round().long()]
    d2 = _sqdist(z, z)
    if not bool(torch.isfinite(d2).all()):
        raise ValueError("x (and y) are too far apart for float64: squared distances |a − b|^2 overflow")
    iu = torch.triu_indices(z.shape[0], z.shape[0], offset=1)
    h = float(np.median(d2[iu[0], iu[1]].sqrt().numpy()))  # np.median: mean of the middle two
    if h == 0:
        raise ValueError("median heuristic bandwidth is 0 (more than half of the pairs coincide); pass a bandwidth")
    return h


def mmd_rbf(x, y, bandwidth: float | str = "median", *, unbiased: bool = True) -> torch.Tensor:
    """Squared maximum mean discrepancy with the RBF kernel ``k(a, b) = exp(−‖a − b‖²/(2h²))``, 0-d float64.

    ``unbiased=True`` (default) is the U-statistic
    ``MMD²_u = Σ_{i≠j} k(x_i,x_j)/(m(m−1)) + Σ_{i≠j} k(y_i,y_j)/(k(k−1)) − 2 Σ_{i,j} k(x_i,y_j)/(mk)``:
    its expectation is the population MMD² (0 for equal distributions), so it can be
    negative, and for ``y = x`` it equals ``−(2/m)(1 − mean_{i≠j} k(x_i, x_j))``, not 0.
    ``unbiased=False`` is the V-statistic (diagonals included), ``≥ 0`` and 0 for ``y = x``.

    ``bandwidth``: ``h > 0``, or ``"median"`` for :func:`median_bandwidth` of the pooled sets.
    A bandwidth so small that ``2h²`` underflows, or that every kernel value between
    distinct points underflows to 0 (the estimate would then read "no discrepancy"
    whatever the sets), is refused with a ``ValueError`` naming the smallest usable ``h``.
    """
    a = _flat(x, "x", min_rows=2 if unbiased else 1)
    b = _flat(y, "y", min_rows=2 if unbiased else 1)
    _same_dim(a, b, "x", "y")
    if isinstance(bandwidth, str):
        if bandwidth != "median":
            raise ValueError(f"bandwidth must be a positive number or 'median', got {bandwidth!r}")
        h = median_bandwidth(a, b)
    else:
        h = check_positive(bandwidth, "bandwidth")
    if 2.0 * h * h == 0.0:
        raise ValueError(f"bandwidth = {h} underflows: 2 h^2 is 0 in float64")
    c = -1.0 / (2.0 * h * h)
    dxx, dyy, dxy = _sqdist(a, a), _sqdist(b, b), _sqdist(a, b)
    if not all(bool(torch.isfinite(d).all()) for d in (dxx, dyy, dxy)):
        raise ValueError("x and y are too far apart for float64: squared distances |a − b|^2 overflow")
    kxx, kyy, kxy = torch.exp(c * dxx), torch.exp(c * dyy), torch.exp(c * dxy)
    m, k = a.shape[0], b.shape[0]
    off = ~torch.eye(m, dtype=torch.bool), ~torch.eye(k, dtype=torch.bool)
    if not (bool((kxy > 0).any()) or bool((kxx[off[0]] > 0).any()) or bool((kyy[off[1]] > 0).any())):
        # exp underflows below −745: h must reach √(d²_min / (2·745)) for the nearest pair.
        d2 = torch.cat([dxy.reshape(-1), dxx[off[0]], dyy[off[1]]])
        h_min = math.sqrt(float(d2.min()) / (2.0 * 745.0))
        raise ValueError(
            f"bandwidth = {h} is too small for these points: every kernel value exp(-|a-b|^2/(2 h^2)) between "
            f"distinct points underflows to 0, so MMD would read 0 whatever the sets; use a bandwidth >= {h_min:.3g}"
        )
    if unbiased:
        sxx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
        syy = (kyy.sum() - kyy.diagonal().sum()) / (k * (k - 1))
    else:
        sxx = kxx.mean()
        syy = kyy.mean()
    return sxx + syy - 2.0 * kxy.mean()


# --------------------------------------------------------------------------------------
# Fréchet distance
# --------------------------------------------------------------------------------------
def _sym_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet (2-Wasserstein²) distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``‖μ1 − μ2‖² + tr(Σ1) + tr(Σ2) − 2 tr((Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2})``, in float64. The
    trace term is computed from symmetric eigendecompositions (``eigh``; negative
    round-off eigenvalues clipped to 0), so it is real and stable also for singular
    covariances (unlike a general ``sqrtm`` of the non-symmetric ``Σ1 Σ2``).

    A covariance must be positive semi-definite: an eigenvalue below
    ``−n · ε_float32 · max|λ|`` (more negative than the round-off of a covariance
    accumulated in float32, as feature statistics often are) is a ``ValueError``, not
    clipped — a distance computed from it would be meaningless.
    """
    m1 = as_tensor(mu1, "mu1", dtype=_F64).cpu().numpy().reshape(-1)
    m2 = as_tensor(mu2, "mu2", dtype=_F64).cpu().numpy().reshape(-1)
    s1 = as_tensor(sigma1, "sigma1", dtype=_F64).cpu().numpy()
    s2 = as_tensor(sigma2, "sigma2", dtype=_F64).cpu().numpy()
    n = m1.shape[0]
    if m2.shape != (n,):
        raise ValueError(f"mu2 must have shape ({n},) like mu1, got {m2.shape}")
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if s.shape != (n, n):
            raise ValueError(f"{name} must have shape ({n}, {n}), got {s.shape}")
        if not np.allclose(s, s.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(s).max()))):
            raise ValueError(f"{name} must be symmetric")
        w = np.linalg.eigvalsh((s + s.T) / 2)
        tol = n * float(np.finfo(np.float32).eps) * float(np.abs(w).max())
        if w.min() < -tol:
            raise ValueError(
                f"{name} must be positive semi-definite (a covariance), got an eigenvalue {w.min():.6g} "
                f"below -{tol:.3g} (round-off allowance)"
            )
    r1 = _sym_sqrt(s1)
    mid = r1 @ s2 @ r1
    w = np.linalg.eigvalsh((mid + mid.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(w, 0.0, None)).sum())
    diff = m1 - m2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)


def frechet_distance(x, y) -> float:
    """Fréchet distance between feature sets ``x`` (m, n) and ``y`` (k, n) (as in FID).

    Fits a Gaussian to each set (mean, covariance with ``ddof = 1``) and returns
    :func:`frechet_distance_from_stats`. Each set needs at least 2 rows.
    """
    a = _flat(x, "x", min_rows=2)
    b = _flat(y, "y", min_rows=2)
    _same_dim(a, b, "x", "y")
    stats = []
    for name, t in (("x", a), ("y", b)):
        with np.errstate(over="ignore", invalid="ignore"):
            mu, cov = t.numpy().mean(0), np.atleast_2d(np.cov(t.numpy(), rowvar=False))
        if not (np.isfinite(mu).all() and np.isfinite(cov).all()):
            raise ValueError(f"{name} is too large for float64: its mean or covariance overflows")
        stats += [mu, cov]
    return frechet_distance_from_stats(*stats)
