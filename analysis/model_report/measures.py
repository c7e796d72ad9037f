"""A trained denoiser measured against its training set ``K`` (THEORY §2–§4 on image models).

Every function here works on any σ-space denoiser ``ε(x, σ)`` whose inputs have shape
``(B, *shape)`` (a UNet wrapped by :func:`toymanifold.images.from_diffusers`, an MLP, a
lambda) and any :class:`toymanifold.FiniteSet` ``K`` with ``n = prod(shape)`` points:
the projection onto ``K`` is the nearest training image and the ideal denoiser of the
uniform distribution on ``K`` is exact (THEORY §4), so ``η`` can be measured without
approximation. Nothing here needs the command line; the model report
(:mod:`analysis.model_report`) is these functions plus figures.

- :func:`sampler_trajectory` — a whole sampler run, in batches, with a progress bar;
- :func:`ideal_norm_band` — the band that ``‖ε*‖/√n`` of ``K``'s ideal denoiser must lie in
  along DDIM from pure noise (derived in its docstring);
- :func:`errors_along_trajectory` — ``r``, ``η`` against projection onto ``K`` and the
  error against the ideal denoiser at every iterate (THEORY §2);
- :func:`theorem1_tracking` — ``r_t`` against Theorem 1's envelope for a measured
  ``(η̂, ν)`` (THEORY §3): the certified stretch, and where each run leaves the envelope;
- :func:`nearest_training_images`, :func:`near_copies`, :func:`training_set_neighbours` —
  generalisation against memorisation;
- :func:`sampler_sweep` — samplers of :data:`toymanifold.samplers.SAMPLERS` at equal model
  evaluations, scored against one fine ODE reference on the same σ range.

Geometry runs in float64 on ``device`` (the CPU by default), in row batches and in
chunks of ``K`` (memory ``O(batch × chunk)``), so ``device="cuda"`` puts the
nearest-neighbour search and the ideal denoiser on a GPU with bounded memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

import toymanifold as tm
from toymanifold.manifolds.finite import _score_blocks  # FiniteSet's own blocked search (THEORY §4)
from toymanifold.samplers import SAMPLERS, SamplerInfo, Trajectory, sampler_info
from toymanifold.validation import as_tensor, check_int, check_nu, check_schedule, make_generator

from .._common import dataclass_to_dict
from ..bounds import theorem1_bounds
from ..metrics import ode_error, ode_reference
from ..projection_error import ProjectionErrors, eta_nu_curve
from ..projection_error import _finish as _errors  # r and η from distances and errors (THEORY §2)

__all__ = [
    "NEAR_COPY_RATIO",
    "NearCopies",
    "Theorem1Tracking",
    "TrainingSetErrors",
    "errors_along_trajectory",
    "ideal_norm_band",
    "near_copies",
    "nearest_training_images",
    "sampler_sweep",
    "sampler_trajectory",
    "theorem1_tracking",
    "training_set_neighbours",
]

_F64 = torch.float64

#: A sample is a near copy of its nearest training image when it is more than three times
#: closer to it than to the second-nearest one (the ratio test of Gu et al. 2023, "On
#: memorization in diffusion models"; Yoon et al. 2023 use the same threshold).
NEAR_COPY_RATIO = 1.0 / 3.0


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


def _finite_set(K: Any, name: str = "K") -> tm.FiniteSet:
    if not isinstance(K, tm.FiniteSet):
        raise TypeError(f"{name} must be a toymanifold.FiniteSet (the training set), got {type(K).__name__}")
    return K


def _flat(x: Any, n: int, name: str) -> torch.Tensor:
    t = as_tensor(x, name)
    if t.ndim < 2:
        raise ValueError(f"{name} must have shape (B, *shape), got shape {tuple(t.shape)}")
    t = t.reshape(t.shape[0], -1)
    if t.shape[1] != n:
        raise ValueError(f"{name} flattens to n = {t.shape[1]} but the training set has n = {n}")
    return t


# --------------------------------------------------------------------------- sampler runs


def sampler_trajectory(
    denoiser: Callable,
    sigmas: Any,
    x_start: Any,
    *,
    sampler: str | Callable = "ddim",
    batch_size: int | None = None,
    generator: torch.Generator | int | None = 0,
    progress: bool = False,
    desc: str | None = None,
) -> Trajectory:
    """A whole run of ``sampler`` from ``x_start`` along ``sigmas``, in batches, kept on the CPU.

    The run is the registry sampler itself (``toymanifold.samplers.SAMPLERS[sampler].run``,
    e.g. DDIM, THEORY §3); batching only bounds memory and drives the progress bar (one tick
    per step of a batch). Iterates stay in ``x_start``'s dtype. A stochastic sampler draws
    its noise from ``generator`` (one stream through all batches).

    Returns
    -------
    toymanifold.samplers.Trajectory
        ``xs`` (N+1, B, *shape), ``eps``, ``eps_bar``, ``x0_hats`` (N, B, *shape) on the CPU.
    """
    info = sampler_info(sampler)
    s = check_schedule(sigmas, "sigmas")
    x = as_tensor(x_start, "x_start")
    if x.ndim < 2:
        raise ValueError(f"x_start must have shape (B, *shape), got shape {tuple(x.shape)}")
    B, N = x.shape[0], s.shape[0] - 1
    bs = B if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
    parts: dict[str, list[torch.Tensor]] = {"xs": [], "eps": [], "eps_bar": [], "x0_hats": []}
    bar = _progress(-(-B // bs) * N, desc or info.label, progress)  # one tick per step of a batch
    nfe = 0
    kw = {"generator": make_generator(generator)} if info.stochastic else {}
    for b in range(0, B, bs):
        traj = info.run(denoiser, s, x[b : b + bs], return_trajectory=True, callback=lambda _: bar.update(1), **kw)
        for k in parts:
            parts[k].append(getattr(traj, k).cpu())
        nfe = traj.nfe
    bar.close()
    return Trajectory(**{k: torch.cat(v, dim=1) for k, v in parts.items()}, sigmas=s, nfe=nfe)


# --------------------------------------------------------------------------- THEORY §2: ‖ε‖/√n


def _chi_quantiles(n: int, quantiles: Sequence[float]) -> list[float]:
    from scipy.stats import chi

    return [float(chi.ppf(q, n)) for q in quantiles]


def _chi_mean(n: int) -> float:
    return math.sqrt(2.0) * math.exp(math.lgamma((n + 1) / 2) - math.lgamma(n / 2))


def ideal_norm_band(K: tm.FiniteSet, sigmas: Any, quantiles: Sequence[float] = (0.1, 0.9)) -> dict[str, Any]:
    """Where ``‖ε*(x_t, σ_t)‖/√n`` of ``K``'s ideal denoiser must lie along DDIM from ``x_N = σ_N ξ``.

    Derivation (THEORY §2–§4). The ideal denoiser's estimate ``x̂0*`` is a convex
    combination of training images, so it lies in ``B(k̄, R)`` with ``k̄`` the mean of
    ``K`` and ``R = max_k ‖k − k̄‖``. A DDIM step is
    ``x_{t−1} = (σ_{t−1}/σ_t) x_t + (1 − σ_{t−1}/σ_t) x̂0*`` (THEORY §3), so by induction
    ``x_t = (σ_t/σ_N) x_N + (1 − a_t) c_t`` with ``a_t = σ_t/σ_N`` and ``c_t`` in the
    convex hull of ``K``. With ``x_N = σ_N ξ``:
    ``σ_t ε*_t = x_t − x̂0* = σ_t ξ + (1 − a_t)(c_t − k̄) − (x̂0* − k̄) − a_t k̄``, hence for
    every sample and step

        |‖ε*_t‖ − ‖ξ‖| ≤ Δ_t = ((2 − a_t) R + a_t ‖k̄‖) / σ_t.

    ``‖ξ‖`` is χ-distributed with ``n`` degrees of freedom, so ``‖ε*_t‖/√n`` lies in the
    χ_n/√n quantile band widened by ``Δ_t/√n`` on each side: close to the χ band
    (mean ≈ 1, spread ≈ 1/√(2n)) where ``σ_t ≫ R/√n``, and uninformative at small σ.

    Returns
    -------
    dict
        ``sigma`` (N,) the noise levels of the model calls; ``quantiles``; ``chi_lo``,
        ``chi_hi``, ``chi_mean``: the χ_n/√n quantiles and mean; ``delta`` (N,) ``Δ_t/√n``;
        ``lo``, ``hi`` (N,) the widened band; ``R``, ``mean_norm`` (``‖k̄‖``), ``n``.
    """
    K = _finite_set(K)
    s = check_schedule(sigmas, "sigmas")
    sig = s[:-1]
    n = K.ambient_dim
    center = K.points.mean(0)
    R = float(torch.linalg.vector_norm(K.points - center, dim=1).max())
    mean_norm = float(torch.linalg.vector_norm(center))
    a = sig / s[0]
    delta = ((2.0 - a) * R + a * mean_norm) / sig / math.sqrt(n)
    lo, hi = (q / math.sqrt(n) for q in _chi_quantiles(n, quantiles))
    return {
        "sigma": sig.tolist(),
        "quantiles": list(quantiles),
        "chi_lo": lo,
        "chi_hi": hi,
        "chi_mean": _chi_mean(n) / math.sqrt(n),
        "delta": delta.tolist(),
        "lo": (lo - delta).tolist(),
        "hi": (hi + delta).tolist(),
        "R": R,
        "mean_norm": mean_norm,
        "n": n,
    }


# --------------------------------------------------------------------------- nearest training images


def nearest_training_images(
    x: Any,
    K: tm.FiniteSet,
    k: int = 1,
    *,
    exclude: Any = None,
    device: str | torch.device | None = None,
    batch_size: int = 1024,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest training images of every row of ``x``: distances and indices, nearest first.

    A blocked search over chunks of ``K`` (one matrix product per block,
    the one ``tm.FiniteSet.project`` uses; memory one block of scores ``‖k‖² − 2⟨x, k⟩``, which
    order ``K`` as the squared distances do), then the winners' distances recomputed as
    ``‖x − k‖`` so they are exact to rounding.
    ``exclude`` (B,) gives for each row one index of ``K`` not to count (its own, for
    leave-one-out distances within ``K``).

    Returns
    -------
    (dist, idx)
        float64 ``(B, k)`` and int64 ``(B, k)`` on the CPU, sorted by distance.
    """
    K = _finite_set(K)
    k = check_int(k, "k", minimum=1)
    flat = _flat(x, K.ambient_dim, "x")
    if k > len(K) - (exclude is not None):
        raise ValueError(f"k = {k} exceeds the {len(K) - (exclude is not None)} training images available")
    dev = torch.device(device) if device is not None else flat.device
    excl = None if exclude is None else torch.as_tensor(exclude, dtype=torch.long).reshape(-1)
    if excl is not None and excl.shape[0] != flat.shape[0]:
        raise ValueError(f"exclude must hold one index per row of x ({flat.shape[0]}), got {excl.shape[0]}")
    B = flat.shape[0]
    out_d = torch.empty((B, k), dtype=_F64)
    out_i = torch.empty((B, k), dtype=torch.long)
    bs = check_int(batch_size, "batch_size", minimum=1)
    bar = _progress(-(-B // bs), "nearest training images", progress)
    for r0 in range(0, B, bs):
        xb = flat[r0 : r0 + bs].to(device=dev, dtype=_F64)
        pts, sq = K.points_like(xb)
        b = xb.shape[0]
        best_v = torch.full((b, k), math.inf, dtype=_F64, device=dev)
        best_i = torch.zeros((b, k), dtype=torch.long, device=dev)
        eb = None if excl is None else excl[r0 : r0 + bs].to(dev)
        for rows, start, score in _score_blocks(xb, pts, sq):
            if eb is not None:
                col = eb[rows] - start
                own = torch.nonzero((col >= 0) & (col < score.shape[1])).reshape(-1)
                score[own, col[own]] = math.inf
            v, i = score.topk(min(k, score.shape[1]), dim=1, largest=False)
            best_v[rows], order = torch.cat([best_v[rows], v], 1).topk(k, dim=1, largest=False)
            best_i[rows] = torch.cat([best_i[rows], i + start], 1).gather(1, order)
        exact = torch.linalg.vector_norm(xb[:, None, :] - pts[best_i], dim=-1)
        exact, order = exact.sort(dim=1)
        out_d[r0 : r0 + b] = exact.cpu()
        out_i[r0 : r0 + b] = best_i.gather(1, order).cpu()
        bar.update(1)
    bar.close()
    return out_d, out_i


# --------------------------------------------------------------------------- THEORY §2: η along runs


@dataclass(frozen=True)
class TrainingSetErrors:
    """THEORY §2's measurements at every model call of a sampler run, with ``K`` the training set.

    Fields (``(N, B)`` unless stated; row ``i`` is the pair ``(xs[i], sigmas[i])``)
    ------
    network : ProjectionErrors
        ``dist = dist_K(x)`` (the nearest training image), ``err = ‖x̂0 − proj_K(x)‖``,
        ``r``, ``η = err/dist`` of the run's own denoiser (``x̂0 = x − σ ε``).
    versus_ideal : ProjectionErrors or None
        The same ``dist`` and ``r``, with ``err = ‖x̂0 − x̂0*‖``: the denoiser's distance from
        the ideal denoiser of ``K`` relative to ``dist_K(x)`` (triangle inequality:
        ``η_network ≤ η_versus_ideal + η_ideal``).
    ideal : ProjectionErrors or None
        The ideal denoiser's own ``η`` at the same points.
    eps_norm : ‖ε‖/√n of the run's denoiser.
    eps_norm_ideal : ‖ε*‖/√n at the same points, or None.
    nearest : (N+1, B) index of the nearest training image of every iterate (the last
        row: the output).
    final_dist : (B,) ``dist_K`` of the output ``x_0``.
    final_r : (B,) ``r(x_0, σ_0)`` (NaN when ``σ_0 = 0``).
    """

    network: ProjectionErrors
    versus_ideal: ProjectionErrors | None
    ideal: ProjectionErrors | None
    eps_norm: torch.Tensor
    eps_norm_ideal: torch.Tensor | None
    nearest: torch.Tensor
    final_dist: torch.Tensor
    final_r: torch.Tensor

    @property
    def r_all(self) -> torch.Tensor:
        """``r_t`` at every iterate including the output: ``(N+1, B)``."""
        return torch.cat([self.network.r, self.final_r[None]])

    def to_dict(self) -> dict[str, Any]:
        return dataclass_to_dict(self)


@torch.no_grad()
def errors_along_trajectory(
    traj: Trajectory,
    K: tm.FiniteSet,
    ideal: Callable | None = None,
    *,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> TrainingSetErrors:
    """``r``, ``η`` and the error against ``K``'s ideal denoiser at every iterate of a run (THEORY §2, §4).

    ``proj_K(x_t)`` is the nearest training image (exact, :func:`nearest_training_images`);
    ``x̂0`` is the run's own estimate ``traj.x0_hats`` (the denoiser's output, not the
    sampler's extrapolation). With ``ideal`` (e.g. ``tm.ideal_denoiser(K)``), the ideal
    denoiser is evaluated at the same points. Everything in float64 on ``device``, one
    sampler step at a time.
    """
    K = _finite_set(K)
    s = check_schedule(traj.sigmas, "traj.sigmas")
    n = K.ambient_dim
    N = s.shape[0] - 1
    xs = traj.xs.reshape(N + 1, traj.xs.shape[1], -1)
    if xs.shape[-1] != n:
        raise ValueError(f"traj.xs flattens to n = {xs.shape[-1]} but the training set has n = {n}")
    B = xs.shape[1]
    x0h = traj.x0_hats.reshape(N, B, n)
    eps = traj.eps.reshape(N, B, n)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    dist = torch.empty((N + 1, B), dtype=_F64)
    nearest = torch.empty((N + 1, B), dtype=torch.long)
    err = torch.empty((N, B), dtype=_F64)
    err_vs = torch.empty((N, B), dtype=_F64) if ideal is not None else None
    err_ideal = torch.empty((N, B), dtype=_F64) if ideal is not None else None
    norm_ideal = torch.empty((N, B), dtype=_F64) if ideal is not None else None
    bar = _progress(N + 1, "η along the run", progress)
    for t in range(N + 1):
        x = xs[t].to(device=dev, dtype=_F64)
        d, idx = nearest_training_images(x, K, 1, device=dev)
        dist[t], nearest[t] = d[:, 0], idx[:, 0]
        if t < N:
            p = K.points[idx[:, 0]].to(dev)
            xh = x0h[t].to(device=dev, dtype=_F64)
            err[t] = torch.linalg.vector_norm(xh - p, dim=1).cpu()
            if ideal is not None:
                sigma = float(s[t])
                e_star = ideal(x, sigma).to(_F64)
                xh_star = x - sigma * e_star
                err_vs[t] = torch.linalg.vector_norm(xh - xh_star, dim=1).cpu()
                err_ideal[t] = torch.linalg.vector_norm(xh_star - p, dim=1).cpu()
                norm_ideal[t] = (torch.linalg.vector_norm(e_star, dim=1) / math.sqrt(n)).cpu()
        bar.update(1)
    bar.close()
    sig = s[:-1, None].expand(N, B).contiguous()
    network = _errors(sig, dist[:-1], err, n)
    versus = ideal_errs = None
    if ideal is not None:
        versus = _errors(sig, dist[:-1], err_vs, n)
        ideal_errs = _errors(sig, dist[:-1], err_ideal, n)
    s0 = float(s[-1])
    final_r = dist[-1] / (math.sqrt(n) * s0) if s0 > 0 else torch.full((B,), math.nan, dtype=_F64)
    return TrainingSetErrors(
        network=network,
        versus_ideal=versus,
        ideal=ideal_errs,
        eps_norm=torch.linalg.vector_norm(eps.to(_F64), dim=-1) / math.sqrt(n),
        eps_norm_ideal=norm_ideal,
        nearest=nearest,
        final_dist=dist[-1],
        final_r=final_r,
    )


# --------------------------------------------------------------------------- THEORY §3: Theorem 1


@dataclass(frozen=True)
class Theorem1Tracking:
    """``r_t`` along sampler runs against Theorem 1's envelope for the measured ``η̂`` (THEORY §3).

    Iterate ``i`` (sampler order, ``xs[i]`` at ``sigmas[i]``) is reached after the model
    calls at iterates ``0 … i−1``. Theorem 1 applied to the schedule cut at ``i`` needs
    an η for those calls only, so ``eta_hat[i]`` is the maximum of ``η`` over the
    ν-admissible pairs among them (THEORY §2; an estimate from these pairs: the true sup
    can only be larger).

    Fields
    ------
    nu : the admissibility level.
    sigmas : (N+1,) the schedule.
    eta_hat : (N+1,) ``η̂`` of the cut schedules (NaN at ``i = 0``; from the first ``i``
        with ``η̂ ≥ 1`` on, Theorem 1 does not apply and the envelope is NaN).
    L, U : (N+1,) ``L_i``, ``U_i`` of the cut schedule with ``eta_hat[i]``: the envelope
        ``L_i ≤ r_i/r_N ≤ U_i``.
    certified : (N+1,) bool, Theorem 1's conditions hold for the cut schedule and every run
        (``1/ν ≤ r_N ≤ ν``, ``r_N L_i ≥ 1/ν``, ``r_N U_i ≤ ν``, ``η̂(ρ − 1) < 1``): a prefix.
    r : (N+1, B) ``r_t`` of every run; ``r_N`` (B,) its first row.
    inside : (N+1, B) ``L_i ≤ r_i/r_N ≤ U_i`` (relative allowance ``tol``; False where the
        envelope is undefined).
    admissible : (N+1, B) ``1/ν ≤ r_i ≤ ν``.
    first_inadmissible : (B,) the first iterate with ``r`` outside ``[1/ν, ν]`` (``N + 1``: never).
    """

    nu: float
    sigmas: torch.Tensor
    eta_hat: torch.Tensor
    L: torch.Tensor
    U: torch.Tensor
    certified: torch.Tensor
    r: torch.Tensor
    r_N: torch.Tensor
    inside: torch.Tensor
    admissible: torch.Tensor
    first_inadmissible: torch.Tensor

    @property
    def certified_steps(self) -> int:
        """How many steps after the start Theorem 1 certifies for every run (0 if not even the start)."""
        return max(int(self.certified.sum()) - 1, 0)

    def to_dict(self) -> dict[str, Any]:
        return dataclass_to_dict(self)


def _rows(e: ProjectionErrors, stop: int) -> ProjectionErrors:
    """The pairs of the first ``stop`` model calls of an ``(N, B)`` :class:`ProjectionErrors`."""
    return ProjectionErrors(e.sigma[:stop], e.dist[:stop], e.err[:stop], e.r[:stop], e.eta[:stop], e.ambient_dim)


def theorem1_tracking(errors: TrainingSetErrors, sigmas: Any, nu: float, *, tol: float = 1e-9) -> Theorem1Tracking:
    """Theorem 1 (THEORY §3) on the measured errors of a sampler run: how far it certifies the run, and the run itself.

    For every cut ``i`` of the schedule, :func:`analysis.theorem1_bounds` with
    ``η̂_i`` (the maximum η over the ν-admissible pairs of the first ``i`` model calls,
    :func:`analysis.eta_nu_curve`) and every run's ``r_N``. Where the conditions hold,
    every pair up to ``i`` is ν-admissible, hence has ``η ≤ η̂_i``, and Lemma 1 keeps
    ``r_i/r_N`` inside ``[L_i, U_i]``: inside the certified stretch the runs are inside by
    construction. What is measured is how far the certificate reaches, and where each
    run's ``r_t`` leaves the admissible band ``[1/ν, ν]`` (beyond which the theorem says
    nothing). ``tol`` is the relative floating-point allowance of the inside test.
    """
    s = check_schedule(sigmas, "sigmas")
    nu = check_nu(nu, "nu")
    if float(s[-1]) <= 0.0:
        raise ValueError("sigmas must end above 0: r_t = dist_K(x_t)/(√n σ_t) is undefined at σ = 0")
    r = errors.r_all
    N = s.shape[0] - 1
    if r.shape[0] != N + 1:
        raise ValueError(f"errors cover {r.shape[0] - 1} steps but sigmas has {N}")
    r_N = r[0]
    eta_hat = torch.full((N + 1,), math.nan, dtype=_F64)
    L = torch.full((N + 1,), math.nan, dtype=_F64)
    U = torch.full((N + 1,), math.nan, dtype=_F64)
    certified = torch.zeros(N + 1, dtype=torch.bool)
    L[0] = U[0] = 1.0
    certified[0] = bool(((r_N >= 1.0 / nu) & (r_N <= nu)).all())
    for i in range(1, N + 1):
        eta = float(eta_nu_curve(_rows(errors.network, i), [nu]).eta_hat[0])
        eta_hat[i] = eta
        if not (math.isfinite(eta) and eta < 1.0):
            break  # η̂ only grows with i: Theorem 1 does not apply from here on
        b = theorem1_bounds(s[: i + 1], eta, nu, r_N)
        L[i], U[i] = b.L[-1], b.U[-1]
        certified[i] = bool(b.conditions_hold.all()) and bool(certified[i - 1])
    rel = r / r_N
    inside = (rel >= L[:, None] * (1 - tol)) & (rel <= U[:, None] * (1 + tol))
    admissible = (r >= 1.0 / nu) & (r <= nu)
    out = ~admissible
    first = torch.where(out.any(0), out.long().argmax(0), torch.tensor(N + 1))
    return Theorem1Tracking(nu, s, eta_hat, L, U, certified, r, r_N, inside, admissible, first)


# --------------------------------------------------------------------------- memorisation


@dataclass(frozen=True)
class NearCopies:
    """Distances of samples to their two nearest training images and the near-copy test.

    ``d1``, ``d2`` (B,): distances to the nearest and second-nearest training image;
    ``nearest`` (B,): index of the nearest; ``ratio = d1/d2``; ``is_copy = ratio < threshold``;
    ``share``: the fraction of near copies.
    """

    d1: torch.Tensor
    d2: torch.Tensor
    nearest: torch.Tensor
    ratio: torch.Tensor
    threshold: float
    is_copy: torch.Tensor
    share: float

    def to_dict(self) -> dict[str, Any]:
        return dataclass_to_dict(self)


def _near_copies(d: torch.Tensor, idx: torch.Tensor, threshold: float) -> NearCopies:
    ratio = d[:, 0] / d[:, 1]
    copy = ratio < threshold
    return NearCopies(d[:, 0], d[:, 1], idx[:, 0], ratio, threshold, copy, float(copy.to(_F64).mean()))


def near_copies(
    samples: Any,
    K: tm.FiniteSet,
    *,
    threshold: float = NEAR_COPY_RATIO,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> NearCopies:
    """Which samples are near copies of a training image.

    A sample ``x`` is a near copy of its nearest training image ``k₁`` when
    ``‖x − k₁‖ < threshold · ‖x − k₂‖``, ``k₂`` the second-nearest training image
    (default ``threshold = 1/3``, :data:`NEAR_COPY_RATIO`). The test is relative, so it
    needs no absolute distance scale: a sample that sits much closer to one training
    image than to any other has copied it, while a new image, or a blend, is about as
    far from its two nearest training images.
    """
    d, idx = nearest_training_images(samples, _finite_set(K), 2, device=device, progress=progress)
    return _near_copies(d, idx, float(threshold))


def training_set_neighbours(
    K: tm.FiniteSet,
    *,
    subset: int | None = None,
    generator: torch.Generator | int | None = 0,
    threshold: float = NEAR_COPY_RATIO,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> NearCopies:
    """The training set's own nearest-neighbour distances (each image against all others).

    The reference for :func:`near_copies`: ``d1`` is how far a training image is from
    the nearest *other* one, and ``share`` is the fraction of training images that are
    already near copies of another (near-duplicates in the data). ``subset`` measures
    that many images drawn without replacement (all of ``K`` by default), each still
    against all others.
    """
    K = _finite_set(K)
    M = len(K)
    if subset is None or subset >= M:
        idx = torch.arange(M)
    else:
        g = generator if isinstance(generator, torch.Generator) else torch.Generator().manual_seed(int(generator or 0))
        idx = torch.randperm(M, generator=g)[: check_int(subset, "subset", minimum=2)].sort().values
    d, nn = nearest_training_images(K.points[idx], K, 2, exclude=idx, device=device, progress=progress)
    return _near_copies(d, nn, float(threshold))


# --------------------------------------------------------------------------- THEORY §5: samplers


def _default_samplers() -> list[SamplerInfo]:
    # ODE error compares against the deterministic flow: the stochastic samplers are left out.
    return [info for info in SAMPLERS.values() if not info.stochastic]


@torch.no_grad()
def sampler_sweep(
    denoiser: Callable,
    xi: torch.Tensor,
    schedule: Callable[[int], torch.Tensor],
    reference_grid: Any,
    *,
    nfes: Sequence[int] = (5, 10, 20, 50),
    samplers: Sequence[str] | None = None,
    score: Callable[[torch.Tensor], Mapping[str, float]] | None = None,
    ode_samples: int = 64,
    refine: int = 8,
    batch_size: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Samplers at equal model evaluations (THEORY §5), against one fine reference on the same σ range.

    Each sampler of the registry runs with the most steps its cost allows at each budget
    (``info.steps_for_nfe``, at least 2) on ``schedule(steps)`` from ``x_N = σ_N ξ``. The
    ODE error of a run is ``‖x_0 − x_0^ref‖/√n`` (RMS per coordinate) averaged over the
    first ``ode_samples`` starts, against Heun on ``reference_grid`` refined ``refine``
    times (:func:`analysis.ode_reference`). The reference must span the schedules' σ range
    and uses the same denoiser, hence the same σ → timestep mapping, so the error of a
    convergent sampler falls with the budget. Its own error is estimated by Richardson
    extrapolation from a run with half the sub-steps (Heun is second order: error/3).

    Parameters
    ----------
    denoiser : σ-space denoiser on ``(B, *shape)``.
    xi : (B, *shape) standard normal starts (the same for every sampler).
    schedule : ``schedule(n_steps) -> sigmas`` (``n_steps + 1`` values, the same ``σ_N`` and ``σ_0`` for all).
    reference_grid : a coarse schedule over the same range, refined for the reference.
    samplers : registry names (default: the deterministic samplers of ``SAMPLERS``).
    score : optional ``score(samples) -> {metric: value}`` (e.g. a Fréchet distance).

    Returns
    -------
    dict
        ``nfe``, ``samplers`` (label → {``name``, ``color``, ``nfe_actual``, ``steps``,
        ``ode_error``, and every ``score`` metric, one value per budget}), ``reference``
        (``steps``, ``nfe``, ``error_estimate``, ``sigma_range``), ``ode_samples``, ``batch``.
    """
    infos = _default_samplers() if samplers is None else [sampler_info(s) for s in samplers]
    grid = check_schedule(reference_grid, "reference_grid")
    B = xi.shape[0]
    n = xi[0].numel()
    m = min(check_int(ode_samples, "ode_samples", minimum=1), B)
    bs = B if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
    k = check_int(refine, "refine", minimum=2)
    steps = {info.name: [max(info.steps_for_nfe(v), 2) for v in nfes] for info in infos}
    # one tick per sampler step of a batch; the two reference runs take G·k and G·⌊k/2⌋ steps
    total = sum(-(-B // bs) * st for info in infos for st in steps[info.name])
    G = grid.shape[0] - 1
    bar = _progress(total + G * k + G * (k // 2), "samplers", progress)

    def run(info, sig, x):
        kw = {"generator": make_generator(0)} if info.stochastic else {}  # one noise stream through all batches
        outs = []
        for b in range(0, x.shape[0], bs):
            outs.append(info.run(denoiser, sig, x[b : b + bs], callback=lambda _: bar.update(1), **kw))
        return torch.cat(outs)

    def rms(a, b):
        return float((ode_error(a, b) / math.sqrt(n)).mean())

    x_ode = float(grid[0]) * xi[:m]
    heun = SAMPLERS["heun"].run

    def counted_heun(den, sig, x):
        return heun(den, sig, x, callback=lambda _: bar.update(1))

    ref = ode_reference(denoiser, grid, x_ode, refine=k, sampler=counted_heun)
    ref_half = ode_reference(denoiser, grid, x_ode, refine=k // 2, sampler=counted_heun)
    out: dict[str, Any] = {
        "nfe": list(nfes),
        "samplers": {},
        "ode_samples": m,
        "batch": B,
        "reference": {
            "sampler": SAMPLERS["heun"].label,
            "steps": (grid.shape[0] - 1) * k,
            "nfe": SAMPLERS["heun"].nfe((grid.shape[0] - 1) * k, float(grid[-1]) == 0.0),
            "error_estimate": rms(ref_half, ref) / 3.0,
            "sigma_range": [float(grid[-1]), float(grid[0])],
        },
    }
    for info in infos:
        row: dict[str, Any] = {"name": info.name, "color": info.color, "steps": steps[info.name], "nfe_actual": []}
        row["ode_error"] = []
        for st in steps[info.name]:
            sig = check_schedule(schedule(st), "schedule(n_steps)")
            if abs(float(sig[0]) - float(grid[0])) > 1e-9 * float(grid[0]) or abs(
                float(sig[-1]) - float(grid[-1])
            ) > 1e-9 * max(float(grid[-1]), 1e-300):
                raise ValueError(
                    f"schedule({st}) spans [{float(sig[-1])}, {float(sig[0])}] but the reference grid spans "
                    f"[{float(grid[-1])}, {float(grid[0])}]: the ODE error needs the same σ range"
                )
            y = run(info, sig, float(sig[0]) * xi)
            row["nfe_actual"].append(info.nfe(st, float(sig[-1]) == 0.0))
            row["ode_error"].append(rms(y[:m], ref))
            for key, v in (score(y) if score is not None else {}).items():
                row.setdefault(key, []).append(float(v))
        out["samplers"][info.label] = row
    bar.close()
    return out
