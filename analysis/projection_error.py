"""How far is a denoiser from projection? ``r`` and ``η(x, σ)`` on noisy samples and trajectories (THEORY §2).

For a pair ``(x, σ)`` with ``x ∉ K``:

- distance-to-noise ratio ``r(x, σ) = dist_K(x) / (√n σ)``;
- relative projection error ``η(x, σ) = ‖x̂0(x, σ) − proj_K(x)‖ / dist_K(x)``, with
  ``x̂0 = x − σ ε_θ(x, σ)``;
- ``(x, σ)`` is ν-admissible if ``1/ν ≤ r ≤ ν``; the empirical curve
  ``η̂(ν)`` is the maximum (or a quantile) of ``η`` over the sampled ν-admissible pairs.

Non-finite denoiser output counts against the denoiser, never for it: a pair whose
``ε_θ(x, σ)`` holds NaN or inf (at a finite ``x``) gets ``err = η = inf``, so it
dominates ``η̂(ν)`` wherever it is admissible (``η̂ = inf``: no (η, ν) guarantee, and
``analysis.suggest_schedule`` refuses ``eta = inf``). Dropping such pairs would report
a *smaller* η than the denoiser has. A trajectory whose iterates are not finite cannot
be measured at all (no distance exists) and raises a ``ValueError`` naming the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from toymanifold.validation import as_manifold, as_tensor, check_int, check_nu, make_generator

from ._common import dataclass_to_dict, trajectory_iterates

__all__ = ["EtaNuCurve", "ProjectionErrors", "eta_nu_curve", "projection_error", "trajectory_error"]

_F64 = torch.float64


@dataclass(frozen=True)
class ProjectionErrors:
    """Per-pair measurements of THEORY §2; every tensor field has the same shape.

    ``projection_error`` returns flat ``(M,)`` fields, ``M = len(sigmas) · num_samples``,
    ordered σ-major (all samples of ``sigmas[0]`` first). ``trajectory_error`` returns
    ``(N, B)`` fields: row ``i`` is the model evaluation at ``(xs[i], sigmas[i])``.

    Fields
    ------
    sigma : noise level ``σ`` of the pair.
    dist : ``dist_K(x)``.
    err : ``‖x̂0(x, σ) − proj_K(x)‖`` (the ``e_t`` of Lemma 1).
    r : ``dist_K(x) / (√n σ)`` (0 where ``x ∈ K``).
    eta : ``err / dist`` — ``NaN`` where ``dist = 0`` (η is defined only for ``x ∉ K``;
        such pairs have ``r = 0`` and are never ν-admissible); ``inf`` (with ``err = inf``)
        where the denoiser's output was not finite (module docstring).
    ambient_dim : ``n``.
    """

    sigma: torch.Tensor
    dist: torch.Tensor
    err: torch.Tensor
    r: torch.Tensor
    eta: torch.Tensor
    ambient_dim: int

    def __len__(self) -> int:
        return self.r.numel()

    @property
    def nonfinite(self) -> torch.Tensor:
        """Boolean mask of the pairs where the denoiser's output was not finite (``err = inf``)."""
        return torch.isinf(self.err)

    def flatten(self) -> ProjectionErrors:
        """The same measurements with every field flattened to ``(M,)``."""
        return ProjectionErrors(
            self.sigma.reshape(-1),
            self.dist.reshape(-1),
            self.err.reshape(-1),
            self.r.reshape(-1),
            self.eta.reshape(-1),
            self.ambient_dim,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (lists of floats, NaN → ``None``)."""
        return dataclass_to_dict(self)


def _finish(sigma, dist, err, n) -> ProjectionErrors:
    # A non-finite denoiser output makes ‖x̂0 − p‖ NaN or inf: count it as err = inf.
    err = torch.where(torch.isfinite(err), err, torch.inf)
    r = dist / (math.sqrt(n) * sigma)
    eta = torch.where(dist > 0, err / torch.where(dist > 0, dist, torch.ones_like(dist)), torch.nan)
    return ProjectionErrors(sigma=sigma, dist=dist, err=err, r=r, eta=eta, ambient_dim=n)


def projection_error(
    denoiser,
    manifold,
    sigmas,
    num_samples: int,
    generator: torch.Generator | int | None = None,
    *,
    chunk_size: int = 65536,
    dtype: torch.dtype = _F64,
) -> ProjectionErrors:
    """Measure ``r`` and ``η(x, σ)`` of ``denoiser`` on noisy samples ``x = x0 + σ ε`` (THEORY §2).

    For each noise level in ``sigmas`` draws ``num_samples`` pairs ``x0 ~ p`` on ``K``
    (``manifold.sample``) and ``ε ~ N(0, I_n)``, then per chunk of at most ``chunk_size``
    pairs calls the oracle once (``manifold.project_with_distance(x)``) and the denoiser
    once (``denoiser(x, σ)``), and computes ``x̂0 = x − σ ε_θ``, ``err = ‖x̂0 − proj_K(x)‖``,
    ``r = dist/(√n σ)`` and ``η = err/dist``. Nothing else touches the data, so the cost is
    that of the two calls plus a few elementwise passes (see ``benchmarks/analysis.py``).

    Parameters
    ----------
    denoiser : callable ``(x, sigma) -> eps``
        A toymanifold denoiser (or any callable with the same convention) for points in ``R^n``.
    manifold : toymanifold.Manifold
        The data set ``K``: sampling distribution and exact oracle.
    sigmas : float or sequence of floats (> 0)
        Noise level(s); ``num_samples`` pairs are drawn *per* value. The result is
        σ-major: entries ``[k·num_samples, (k+1)·num_samples)`` belong to ``sigmas[k]``.
        The values need not be ordered (this is a sweep, not a schedule).
    num_samples : int ≥ 1
        Pairs per noise level.
    generator : torch.Generator, int seed or None
        The only source of randomness: ``x0`` is drawn with it (``manifold.sample``) and
        ``ε`` with a NumPy ``Generator`` (PCG64, float64 ziggurat) seeded by one draw from
        it. The same seed gives the same pairs on every run for the same ``chunk_size``
        (chunks draw ``x0`` and ``ε`` in turn).
    chunk_size : int, default 65536
        Pairs per denoiser/oracle call (bounds memory at about ``8 · chunk_size · n`` bytes per tensor).
    dtype : torch.dtype, default float64
        Dtype of ``x`` fed to the denoiser and oracle (geometry's default is float64).

    Returns
    -------
    ProjectionErrors
        Flat ``(M,)`` fields, ``M = len(sigmas) · num_samples``, float64 on the CPU. Pairs
        where the denoiser returned NaN or inf have ``err = eta = inf`` (see ``nonfinite``).

    Examples
    --------
    >>> import toymanifold as tm, analysis
    >>> K = tm.Circle()
    >>> m = analysis.projection_error(tm.ProjectionDenoiser(K), K, [0.1, 0.2], 100, generator=0)
    >>> m.r.shape, bool(m.eta.max() < 1e-15)  # the exact projection: η = 0 up to rounding
    (torch.Size([200]), True)
    """
    manifold = as_manifold(manifold)
    if not callable(denoiser):
        raise TypeError(f"denoiser must be callable as denoiser(x, sigma), got {type(denoiser).__name__}")
    s = as_tensor(sigmas, "sigmas", dtype=_F64)
    if s.ndim > 1:
        raise ValueError(f"sigmas must be a number or a 1-D sequence of noise levels, got shape {tuple(s.shape)}")
    s = s.reshape(-1)
    if s.numel() == 0:
        raise ValueError("sigmas must hold at least one noise level, got none")
    if bool((s <= 0).any()):
        raise ValueError(f"sigmas must be > 0 (the denoiser is evaluated there), got min {float(s.min())}")
    num = check_int(num_samples, "num_samples", minimum=1)
    chunk = check_int(chunk_size, "chunk_size", minimum=1)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    g = make_generator(generator)
    # ε comes from NumPy's float64 ziggurat sampler, seeded from `generator` (so the seed
    # still determines everything): on the CPU it is 2–3× faster than torch's float64
    # randn, which would otherwise dominate the cost for cheap denoisers (benchmarks/analysis.py).
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=g)))
    n = manifold.ambient_dim

    total = s.numel() * num
    dist = torch.empty(total, dtype=_F64)
    err = torch.empty(total, dtype=_F64)
    sig = s.repeat_interleave(num)
    pos = 0
    for sigma in s.tolist():
        done = 0
        while done < num:
            b = min(chunk, num - done)
            x = manifold.sample(b, g, dtype=dtype)
            noise = torch.from_numpy(rng.standard_normal((b, n))).to(dtype)
            x.add_(noise, alpha=sigma)  # x = x0 + σ ε, in place: x0 is not needed again
            del noise
            p, dk = manifold.project_with_distance(x)
            if not bool(torch.isfinite(dk).all()):
                raise ValueError(f"{manifold!r} returned a non-finite distance for finite points at sigma = {sigma}")
            eps = denoiser(x, sigma)
            if p.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
                p = p.clone()  # an oracle may return (a view of) its input; we write into p below
            # p − x̂0 = p − x + σ ε_θ, accumulated in the oracle's output buffer (ours to
            # overwrite, unlike the denoiser's output, which may be cached or aliased).
            diff = p.sub_(x).add_(eps, alpha=sigma)
            err[pos : pos + b] = torch.linalg.vector_norm(diff, dim=1)
            dist[pos : pos + b] = dk
            pos += b
            done += b
    return _finish(sig, dist, err, n)


def trajectory_error(traj, manifold) -> ProjectionErrors:
    """``r`` and ``η(x_t, σ_t)`` at every model evaluation of a sampler trajectory (THEORY §2).

    Row ``i`` measures the pair ``(xs[i], sigmas[i])`` with ``x̂0 = x0_hats[i]`` (or
    ``xs[i] − sigmas[i] · eps[i]`` when the trajectory does not record ``x0_hats``), i.e.
    the denoiser's own output, not the sampler's extrapolated ``ε̄``.

    Parameters
    ----------
    traj : toymanifold.Trajectory
        ``xs`` (N+1, B, *shape), ``eps`` (N, B, *shape), optional ``x0_hats``, ``sigmas`` (N+1,).
    manifold : toymanifold.Manifold with ``ambient_dim = prod(shape)``.

    Returns
    -------
    ProjectionErrors
        ``(N, B)`` fields in float64. Where the recorded model output is not finite
        (at a finite iterate) ``err = eta = inf``, as in :func:`projection_error`.

    Raises
    ------
    ValueError
        If an iterate ``xs[i]`` is not finite (its distance to ``K`` does not exist); the
        message names the first such step and its σ.
    """
    manifold = as_manifold(manifold)
    s, xs = trajectory_iterates(traj, manifold.ambient_dim, allow_nonfinite=True)
    N, B, n = xs.shape[0] - 1, xs.shape[1], xs.shape[2]
    bad = ~torch.isfinite(xs).all(dim=(1, 2))
    if bool(bad.any()):
        i = int(torch.nonzero(bad)[0, 0])
        raise ValueError(
            f"traj.xs[{i}] (sigma = {float(s[i]):.6g}) is not finite: the run diverged before step {i}, "
            "so its distances to K do not exist"
        )
    x = xs[:-1].to(_F64)
    sig = s[:-1, None].expand(N, B).contiguous()
    x0h = getattr(traj, "x0_hats", None)
    if x0h is None:
        eps = as_tensor(traj.eps, "traj.eps", allow_nonfinite=True)
        if eps.shape[:2] != (N, B):
            raise ValueError(f"traj.eps must have shape ({N}, {B}, ...), got {tuple(eps.shape)}")
        x0h = x - sig[..., None] * eps.reshape(N, B, -1).to(_F64)
    else:
        x0h = as_tensor(x0h, "traj.x0_hats", allow_nonfinite=True)
        if x0h.shape[:2] != (N, B):
            raise ValueError(f"traj.x0_hats must have shape ({N}, {B}, ...), got {tuple(x0h.shape)}")
        x0h = x0h.reshape(N, B, -1).to(_F64)
    p, d = manifold.project_with_distance(x.reshape(-1, n))
    err = torch.linalg.vector_norm(x0h.reshape(-1, n) - p, dim=1)
    return _finish(sig, d.reshape(N, B), err.reshape(N, B), n)


@dataclass(frozen=True)
class EtaNuCurve:
    """The empirical ``η̂(ν)`` of THEORY §2.

    Fields: ``nus`` (K,) float64; ``eta_hat`` (K,) the maximum (``quantile=None``) or the
    given quantile of ``η`` over the ν-admissible pairs, ``NaN`` where none is admissible;
    ``count`` (K,) int64 number of admissible pairs; ``quantile`` (None for the maximum);
    ``total`` number of pairs considered.
    """

    nus: torch.Tensor
    eta_hat: torch.Tensor
    count: torch.Tensor
    quantile: float | None
    total: int

    def to_dict(self) -> dict[str, Any]:
        return dataclass_to_dict(self)


def eta_nu_curve(errors: ProjectionErrors, nus, quantile: float | None = None) -> EtaNuCurve:
    """The empirical curve ``η̂(ν) = max`` (or a quantile) ``of η(x, σ)`` over ν-admissible pairs (THEORY §2).

    A pair is ν-admissible when ``1/ν ≤ r ≤ ν``. Pairs with ``x ∈ K`` (``η = NaN``) have
    ``r = 0`` and never count. Pairs where the denoiser's output was not finite
    (``η = inf``) count as the largest errors: ``η̂(ν) = inf`` wherever one is admissible
    (for a quantile, where they reach it). An estimate from samples: the true ``sup`` can
    only be larger.

    Parameters
    ----------
    errors : ProjectionErrors
        From :func:`projection_error` or :func:`trajectory_error` (any shape).
    nus : float or 1-D array of values ≥ 1
    quantile : float in [0, 1], optional
        ``None`` (default) takes the maximum; otherwise ``torch.quantile`` with linear interpolation.

    Returns
    -------
    EtaNuCurve
        ``eta_hat[k] = NaN`` and ``count[k] = 0`` where no pair is ``nus[k]``-admissible.
    """
    if not isinstance(errors, ProjectionErrors):
        raise TypeError(f"errors must be a ProjectionErrors (from projection_error), got {type(errors).__name__}")
    nu_t = as_tensor(nus, "nus", dtype=_F64).reshape(-1)
    if nu_t.numel() == 0:
        raise ValueError("nus must hold at least one value, got none")
    for v in nu_t.tolist():
        check_nu(v, "nus")
    if quantile is not None:
        q = float(quantile)
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must lie in [0, 1] or be None, got {quantile}")
        quantile = q
    r = errors.r.reshape(-1).to(_F64)
    eta = errors.eta.reshape(-1).to(_F64)
    # NaN η (x ∈ K) is undefined and has r = 0; η = inf (non-finite output) is kept.
    valid = ~torch.isnan(eta) & torch.isfinite(r)
    r, eta = r[valid], eta[valid]
    out = torch.full((nu_t.numel(),), math.nan, dtype=_F64)
    count = torch.zeros(nu_t.numel(), dtype=torch.int64)
    for k, nu in enumerate(nu_t.tolist()):
        mask = (r >= 1.0 / nu) & (r <= nu)
        c = int(mask.sum())
        count[k] = c
        if c:
            sel = eta[mask]
            out[k] = sel.max() if quantile is None else _quantile(sel, quantile)
    return EtaNuCurve(nus=nu_t, eta_hat=out, count=count, quantile=quantile, total=int(errors.r.numel()))


def _quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    """``torch.quantile`` (linear interpolation) that also takes ``inf`` entries.

    ``torch.quantile`` interpolates ``inf − inf = NaN`` between two infinite order
    statistics; here the interpolation between ``a ≤ b`` is ``a + w (b − a)`` only when
    ``b`` is finite, and ``b`` itself (``inf``) when it is not and ``w > 0``.
    """
    v, _ = torch.sort(values)
    pos = q * (v.numel() - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, v.numel() - 1)
    w = pos - lo
    a, b = v[lo], v[hi]
    if w == 0:
        return a
    if not bool(torch.isfinite(b)):
        return b
    return a + w * (b - a)
