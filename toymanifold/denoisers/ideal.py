"""Closed-form ideal (MMSE) denoisers: the toolkit's oracles (THEORY §4).

For data ``x0 ~ p`` and ``x = x0 + σ ε`` the ideal denoiser is
``ε*(x, σ) = (x − E[x0 | x]) / σ`` (THEORY §1). This module computes the posterior
mean ``E[x0 | x]`` exactly for

- a finite set with uniform weights (softmax of ``−‖x − k‖²/(2σ²)``, streamed over
  chunks of the set with an online log-sum-exp: :class:`FiniteSetDenoiser`);
- a round sphere / circle with uniform data (von Mises–Fisher posterior:
  :class:`SphereDenoiser`, with :func:`bessel_ratio` for ``A_m(κ)``);
- an affine subspace with Gaussian data ``N(c, s² P)`` (:class:`GaussianSubspaceDenoiser`);
- any of these embedded isometrically in a larger space (:class:`EmbeddedDenoiser`).

``ideal_denoiser(manifold)`` picks the right one.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.polynomial import polynomial as P
from scipy import special

from ..manifolds.affine import AffineSubspace
from ..manifolds.base import Manifold
from ..manifolds.embedded import Embedded
from ..manifolds.finite import FiniteSet
from ..manifolds.sphere import Sphere
from ..validation import as_manifold, as_points, check_int, check_sigma
from .base import HALF_DTYPES, Denoiser

__all__ = [
    "EmbeddedDenoiser",
    "FiniteSetDenoiser",
    "GaussianSubspaceDenoiser",
    "IdealDenoiser",
    "SphereDenoiser",
    "bessel_ratio",
    "ideal_denoiser",
]


class IdealDenoiser(Denoiser):
    """Base of the closed-form MMSE denoisers: ``ε* = (x − E[x0 | x]) / σ`` (THEORY §1, §4).

    Subclasses implement ``_posterior_mean(x (B, n), sigma (B, 1))``. The ideal
    denoisers are evaluated without autograd (they are oracles, not models), in float32
    for float16/bfloat16 input (returned in the input's dtype), for every ``σ`` that is a
    positive normal number of the working dtype.
    """

    manifold: Manifold

    def posterior_mean(self, x, sigma) -> torch.Tensor:
        """``E[x0 | x0 + σ ε = x]`` for ``x`` of shape ``(B, n)``; the denoised estimate ``x̂0``.

        Same as ``denoise`` but without the round trip through ``ε`` (so it is exact to
        the last bits even when ``σ`` is tiny against ``‖x‖``).
        """
        x = as_points(x, "x", self.ambient_dim)
        work = x.to(torch.float32) if x.dtype in HALF_DTYPES else x
        s = check_sigma(sigma, work)
        if x.shape[0] == 0:
            return torch.empty_like(x)
        with torch.no_grad():
            return self._posterior_mean(work, s).to(x.dtype)

    def _eps(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return (x - self._posterior_mean(x, sigma)) / sigma

    def _posterior_mean(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.manifold!r})"


# --------------------------------------------------------------------------------------
# Finite set
# --------------------------------------------------------------------------------------

# Elements of one (batch × chunk) block of logits: 2^22 (16 MiB in float32, 32 MiB in
# float64). Measured with benchmarks/denoisers.py (M = 20 000, n = 784, B = 256, 2 CPU
# cores): blocks of 2^18 ran at ~2.5× the two-matmul floor because the per-chunk
# max/exp/rescale passes and the smaller matrix products cost more than the cache
# saves; at 2^22 (two chunks there) the kernel is close to the floor.
_BLOCK_ELEMENTS = 1 << 22


class FiniteSetDenoiser(IdealDenoiser):
    """The MMSE denoiser of the uniform distribution on a finite set (THEORY §4).

    ``E[x0 | x] = Σ_i w_i k_i`` with ``w = softmax_i(−‖x − k_i‖² / (2σ²))``.

    Implementation (one streaming kernel): with ``c`` the mean of the points and
    ``k̃ = k − c``, ``x̃ = x − c`` (centering only improves conditioning; softmax is
    shift-invariant), the logits are ``(⟨x̃, k̃⟩ − ½‖k̃‖²)/σ²`` up to a per-row constant.
    The points are stored once as the augmented matrix ``[k̃, ‖k̃‖², 1]`` (M, n+2) and the
    batch as ``[x̃/σ², −1/(2σ²), 0]`` (B, n+2), so one matrix product per chunk gives the
    logits, and one product ``W @ [k̃, ‖k̃‖², 1]`` gives both ``Σ w k̃`` and the
    normaliser ``Σ w`` (the last column). Over chunks an online max with rescaling keeps
    every exponent ≤ 0 (log-sum-exp), so nothing overflows for any σ; memory is
    ``O(B × chunk)``.

    Accuracy: float64 agrees with a full float64 softmax to rounding. In float32 the
    logits carry an absolute error ≈ ``ε_mach ‖x̃‖ ‖k̃‖ / σ²`` (the price of the
    matrix-product form); at small σ this only matters between near-equidistant points.

    Parameters
    ----------
    points : FiniteSet or array-like of shape (M, n)
        The set ``K``.
    chunk_size : int, optional
        Points per chunk; by default ``max(256, 2^22 // B)``.
    """

    def __init__(self, points, chunk_size: int | None = None):
        self.manifold = points if isinstance(points, FiniteSet) else FiniteSet(points)
        self.ambient_dim = self.manifold.ambient_dim
        self.chunk_size = None if chunk_size is None else check_int(chunk_size, "chunk_size", minimum=1)
        pts = self.manifold.points  # float64 (M, n)
        self._center = pts.mean(0)
        centered = pts - self._center
        self._aug64 = torch.cat([centered, (centered * centered).sum(-1, keepdim=True), torch.ones_like(pts[:, :1])], 1)
        self._cache: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def _prepared(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (x.dtype, x.device)
        if key not in self._cache:
            self._cache[key] = (
                self._aug64.to(dtype=x.dtype, device=x.device).contiguous(),
                self._center.to(dtype=x.dtype, device=x.device),
            )
        return self._cache[key]

    def _posterior_mean(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        aug, center = self._prepared(x)
        b, n = x.shape
        m = aug.shape[0]
        chunk = self.chunk_size or max(256, _BLOCK_ELEMENTS // max(1, b))
        if self.chunk_size is None:
            chunk = -(-m // -(-m // chunk))  # equal chunks: no small remainder product
        inv_var = _inverse_variance(sigma)  # (B, 1)
        xa = torch.cat([x - center, torch.full_like(sigma, -0.5), torch.zeros_like(sigma)], 1)
        run_max = torch.full((b, 1), -math.inf, dtype=x.dtype, device=x.device)
        floor = math.log(torch.finfo(x.dtype).tiny) + 2.0
        acc = torch.zeros((b, n + 2), dtype=x.dtype, device=x.device)
        for start in range(0, m, chunk):
            k = aug[start : start + chunk]
            # σ-free logits ⟨x̃, k̃⟩ − ½‖k̃‖² (one product per chunk); the max is taken before
            # the scaling by 1/σ², so the largest scaled logit is exactly 0 and nothing
            # overflows for any σ (1/σ² itself overflows float32 below σ ≈ 1e−19).
            logits = xa @ k.T  # (B, C)
            new_max = torch.maximum(run_max, logits.amax(1, keepdim=True))
            # In place: weights relative to the running max, ≤ 1. The clamp keeps exp's
            # argument where the result is a normal number: exponents that would underflow
            # to subnormals take a slow path on x86 CPUs (about 15× slower), which
            # dominated the kernel at small σ. Those weights become exp(floor) ≈ 1e−37
            # (float32) instead of ~0: a relative change of at most M·1e−37 in Σw.
            logits.sub_(new_max).mul_(inv_var).clamp_(min=floor).exp_()
            # Rescale what was accumulated against the old max (nothing yet on the first
            # chunk, where run_max = −inf and (−inf)·(1/σ²) would be NaN for 1/σ² = 0).
            acc.mul_(torch.where(run_max > -math.inf, torch.exp((run_max - new_max) * inv_var), 0.0))
            acc.addmm_(logits, k)  # Σ w [k̃, ‖k̃‖², 1]
            run_max = new_max
        # acc[:, -1] = Σ w ≥ 1 (the maximising point contributes exp(0)).
        return acc[:, :n] / acc[:, -1:] + center

    def posterior_weights(self, x, sigma) -> torch.Tensor:
        """The full ``(B, M)`` softmax weights ``w`` (for inspection; memory ``O(B × M)``)."""
        x = as_points(x, "x", self.ambient_dim)
        work = x.to(torch.float32) if x.dtype in HALF_DTYPES else x
        s = check_sigma(sigma, work)
        aug, center = self._prepared(work)
        logits = torch.cat([work - center, torch.full_like(s, -0.5), torch.zeros_like(s)], 1) @ aug.T
        # As in the kernel: shift by the row max before scaling by 1/σ², so no σ overflows.
        logits = (logits - logits.amax(1, keepdim=True)) * _inverse_variance(s)
        return torch.softmax(logits, dim=1).to(x.dtype)


def _inverse_variance(sigma: torch.Tensor) -> torch.Tensor:
    """``1/σ²``, saturated at the dtype's largest finite value instead of overflowing.

    Saturation happens only for σ below ``1/√max`` (≈ 5e−20 in float32). The factor
    multiplies logit gaps ``≤ 0``: a gap of exactly 0 (the nearest point) stays 0 instead
    of ``0 · inf = NaN``, and any other gap representable next to logits of order one is
    sent far below ``exp``'s underflow by the saturated factor, as by the exact one.
    """
    return sigma.reciprocal().square().clamp_(max=torch.finfo(sigma.dtype).max)


# --------------------------------------------------------------------------------------
# Sphere: von Mises–Fisher posterior
# --------------------------------------------------------------------------------------


# Below this κ the power series is summed (positive terms: relative error a few ulps,
# largest term ≈ e^κ stays far from overflow); above it the ive ratio is accurate.
_SERIES_MAX_KAPPA = 500.0


def _series_ratio(nu: float, kappa: np.ndarray) -> np.ndarray:
    """``I_ν(κ)/I_{ν−1}(κ) = κ/(2ν) · ₀F₁(;ν+1;κ²/4) / ₀F₁(;ν;κ²/4)`` by the power series.

    ``I_ν(κ) = (κ/2)^ν / Γ(ν+1) · ₀F₁(;ν+1;κ²/4)``. All terms are positive, so the sum
    has no cancellation; the terms peak near ``k ≈ κ/2`` and then fall off faster than
    geometrically, so about ``κ/2 + 10√κ + 40`` terms reach float64. Partial sums are
    rescaled together when they grow large, so nothing overflows for any κ.
    """
    z = 0.25 * kappa * kappa
    num = np.ones_like(kappa)
    den = np.ones_like(kappa)
    tn = np.ones_like(kappa)
    td = np.ones_like(kappa)
    max_terms = int(np.max(kappa, initial=0.0)) + 1000
    for k in range(1, max_terms):
        tn = tn * z / (k * (nu + k))
        td = td * z / (k * (nu - 1.0 + k))
        num += tn
        den += td
        if np.all(td <= 1e-18 * den):
            break
        big = den > 1e200
        if big.any():
            f = np.where(big, 1e-200, 1.0)
            tn, td, num, den = tn * f, td * f, num * f, den * f
    return kappa / (2.0 * nu) * num / den


# Above this κ scipy's ive (AMOS) returns NaN (from about 1e10); the Hankel expansion is used.
_HANKEL_MIN_KAPPA = 1e8


def _hankel_ratio(nu: float, kappa: np.ndarray) -> np.ndarray:
    """``I_ν(κ)/I_{ν−1}(κ)`` from the large-κ (Hankel) expansion of both functions.

    ``I_ν(κ) ≈ e^κ/√(2πκ) Σ_k (−1)^k a_k(ν) κ^{−k}``,
    ``a_k(ν) = a_{k−1}(ν) (4ν² − (2k−1)²)/(8k)``; the prefactors cancel in the ratio.
    For ``κ ≥ 1e8`` and ``ν² ≤ 1e5`` the terms fall by ``≲ ν²/(2κ) ≤ 1e−3`` each, so 12
    terms are far below float64 rounding.
    """

    def series(v: float) -> np.ndarray:
        total = np.ones_like(kappa)
        term = np.ones_like(kappa)
        for k in range(1, 13):
            term = -term * (4 * v * v - (2 * k - 1) ** 2) / (8 * k * kappa)
            total = total + term
        return total

    return series(nu) / series(nu - 1.0)


def _debye_polynomials(k_max: int) -> list[np.ndarray]:
    """Coefficients of Debye's polynomials ``U_0 … U_{k_max}`` (DLMF 10.41.9).

    ``U_0 = 1``, ``U_{k+1}(p) = ½ p²(1 − p²) U_k'(p) + ⅛ ∫_0^p (1 − 5t²) U_k(t) dt``.
    """
    us = [np.array([1.0])]
    for _ in range(k_max):
        u = us[-1]
        derivative_part = P.polymul([0.0, 0.0, 0.5, 0.0, -0.5], P.polyder(u))
        integral_part = P.polyint(P.polymul([1.0, 0.0, -5.0], u)) / 8.0
        us.append(P.polyadd(derivative_part, integral_part))
    return us


_DEBYE_TERMS = 10
_DEBYE_U = _debye_polynomials(_DEBYE_TERMS)


def _debye_log_series(nu: float, p: np.ndarray) -> np.ndarray:
    """``log Σ_{k ≤ 10} U_k(p)/ν^k`` (Horner's rule in ``1/ν``)."""
    total = np.zeros_like(p)
    for u in reversed(_DEBYE_U):
        total = total / nu + P.polyval(p, u)
    return np.log(total)


def _debye_ratio(nu: float, kappa: np.ndarray) -> np.ndarray:
    """``I_ν(κ)/I_{ν−1}(κ)`` from the uniform asymptotic (Debye) expansion of both (DLMF 10.41.3).

    ``I_ν(νz) ≈ e^{νη(z)} / (√(2πν) (1 + z²)^{1/4}) Σ_k U_k(p)/ν^k`` with
    ``η(z) = √(1 + z²) + log(z/(1 + √(1 + z²)))`` and ``p = 1/√(1 + z²)``, uniformly in
    ``z > 0`` as ``ν → ∞``. With ``a = ν``, ``b = ν − 1``, ``R_a = √(a² + κ²)``,
    ``R_b = √(b² + κ²)`` the logarithm of the ratio is written without cancellation:

    ``log A = −¼ log1p((a+b)/R_b²) + (a+b)/(R_a+R_b) + log(κ/(a+R_a))
    − b log1p((1 + (a+b)/(R_a+R_b))/(b+R_b)) + log S_a(a/R_a) − log S_b(b/R_b)``

    (using ``R_a − R_b = (a + b)/(R_a + R_b)``). Every term is of order one or smaller for
    every κ, so nothing over- or underflows between ``κ = 1e−300`` and ``1e300``. With
    ten terms the relative error is ≤ 3e−15 against 40-digit mpmath for ``2ν ≥ 633``.
    """
    a, b = nu, nu - 1.0
    ra, rb = np.hypot(a, kappa), np.hypot(b, kappa)
    gap = (a + b) / (ra + rb)
    log_a = (
        -0.25 * np.log1p((a + b) / rb / rb)
        + gap
        + np.log(kappa / (a + ra))
        - b * np.log1p((1.0 + gap) / (b + rb))
        + _debye_log_series(a, a / ra)
        - _debye_log_series(b, b / rb)
    )
    return np.exp(log_a)


# Hankel's large-κ expansion converges to float64 in 12 terms for ν² ≤ 1e5 at κ > 1e8
# (m ≤ 632); larger orders use Debye's expansion for every κ > 500.
_HANKEL_MAX_NU2 = 1e5


def bessel_ratio(m: int, kappa) -> np.ndarray:
    """``A_m(κ) = I_{m/2}(κ) / I_{m/2−1}(κ)`` in float64, for ``κ ∈ [0, ∞]`` (THEORY §4).

    ``A_m`` is the mean resultant length of the von Mises–Fisher distribution on
    ``S^{m−1}``. For ``κ ≤ 500`` it is the ratio of the two power series of ``I``
    (:func:`_series_ratio`; relative error ≤ 3e−15 against 40-digit mpmath for
    ``2 ≤ m ≤ 1001``, including κ = 1e−8 where ``I_ν`` itself underflows for large
    orders). For ``κ > 500`` it is the ratio of exponentially scaled Bessel functions
    ``scipy.special.ive`` (the ``e^{−κ}`` factors cancel; relative error ≤ 4e−16 for
    ``m ≤ 65``, growing to about 1e−13 for ``m`` in the hundreds) up to ``κ = 1e8``;
    above, where ``ive`` returns NaN (from about κ = 1e10), the Hankel large-κ expansion.
    Both serve ``m ≤ 632``. For ``m > 632`` (where Hankel's 12 terms no longer converge
    at ``κ > 1e8`` and ``ive`` loses accuracy or underflows) every ``κ > 500`` uses the
    uniform asymptotic (Debye) expansion (:func:`_debye_ratio`: relative error ≤ 3e−15
    against 40-digit mpmath for ``633 ≤ m ≤ 2001``, κ from 1e−3 to 1e14). So every ``m``
    works at every κ: ``Sphere(700)`` at small σ included.
    Limits: ``A_m(0) = 0``, ``A_m(κ) ≈ κ/m`` for small κ,
    ``A_m(κ) ≈ 1 − (m−1)/(2κ)`` for large κ, ``A_m(∞) = 1``.

    Parameters
    ----------
    m : int
        ``m ≥ 2``: the dimension of the subspace holding the sphere (``d + 1``).
    kappa : array-like
        Concentrations ``κ ≥ 0``.

    Examples
    --------
    >>> float(bessel_ratio(3, 1e-8) * 3)  # A_3(κ) ≈ κ/3
    1e-08
    """
    m = check_int(m, "m", minimum=2)
    k = np.asarray(kappa, dtype=np.float64)
    if np.isnan(k).any() or (k < 0).any():
        raise ValueError("kappa must be >= 0 and not NaN")
    nu = 0.5 * m
    out = np.empty_like(k)
    small = k <= _SERIES_MAX_KAPPA
    if small.any():
        out[small] = _series_ratio(nu, k[small])
    rest = ~small & np.isfinite(k)
    if nu * nu > _HANKEL_MAX_NU2:  # m > 632: Debye's expansion, uniform in κ
        if rest.any():
            out[rest] = _debye_ratio(nu, k[rest])
    else:
        mid = rest & (k <= _HANKEL_MIN_KAPPA)
        if mid.any():
            kl = k[mid]
            with np.errstate(all="ignore"):
                num = special.ive(nu, kl)
                den = special.ive(nu - 1.0, kl)
                r = num / den
            # ive underflows only for orders ν ≳ √(1300 κ); not expected for ν ≤ 316 at κ > 500.
            bad = ~((num > 1e-290) & (den > 1e-290) & np.isfinite(r))
            if bad.any():
                r[bad] = _debye_ratio(nu, kl[bad])
            out[mid] = r
        huge = rest & (k > _HANKEL_MIN_KAPPA)
        if huge.any():
            out[huge] = _hankel_ratio(nu, k[huge])
    out[k == 0] = 0.0
    out[np.isinf(k)] = 1.0
    return out


class SphereDenoiser(IdealDenoiser):
    """The MMSE denoiser of the uniform distribution on a sphere ``S^d`` of radius ``R`` (THEORY §4).

    With ``u = x − c`` and ``κ = R‖u‖/σ²`` the posterior of ``x0`` is von Mises–Fisher
    with mean direction ``u/‖u‖``, so ``E[x0 | x] = c + R A_{d+1}(κ) u/‖u‖`` with
    ``A_m = I_{m/2}/I_{m/2−1}`` (:func:`bessel_ratio`, float64 on the CPU). At the centre
    (``u = 0``) the posterior is uniform and the mean is ``c``. The circle is ``d = 1``
    (``A_2 = I_1/I_0``). A sphere in a ``(d+1)``-dimensional subspace of ``R^n`` is
    ``Embedded(Sphere(d), n)``, handled by :class:`EmbeddedDenoiser` with ``u = P_V x``.
    """

    def __init__(self, sphere: Sphere):
        if not isinstance(sphere, Sphere):
            raise TypeError(f"sphere must be a Sphere, got {type(sphere).__name__}")
        self.manifold = sphere
        self.ambient_dim = sphere.ambient_dim

    def _posterior_mean(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sph = self.manifold
        c = sph.center.to(dtype=x.dtype, device=x.device)
        u = x - c
        # The direction u/‖u‖ from u scaled by its largest entry, so ‖u‖² never overflows.
        top = u.abs().amax(1, keepdim=True)
        v = u / torch.where(top > 0, top, torch.ones_like(top))
        vnorm = torch.linalg.vector_norm(v, dim=1, keepdim=True)
        direction = v / torch.where(vnorm > 0, vnorm, torch.ones_like(vnorm))
        # κ = R‖u‖/σ² in float64 whatever x's dtype: it overflows float32 long before float64.
        kappa = sph.radius * (top.double() * vnorm.double()) / sigma.double().square()
        a = bessel_ratio(sph.ambient_dim, kappa.cpu().numpy())
        a = torch.from_numpy(a).to(dtype=x.dtype, device=x.device)
        return c + (sph.radius * a) * direction


# --------------------------------------------------------------------------------------
# Affine subspace with Gaussian data
# --------------------------------------------------------------------------------------


class GaussianSubspaceDenoiser(IdealDenoiser):
    """The MMSE denoiser of ``N(c, s² P)`` on an affine subspace (THEORY §4).

    ``E[x0 | x] = c + s²/(s² + σ²) · P(x − c)`` with ``P = BᵀB`` (``B`` the orthonormal
    basis rows): along the subspace the posterior is the Gaussian conjugate update,
    and the orthogonal part of ``x`` carries no information about ``x0``.
    """

    def __init__(self, subspace: AffineSubspace):
        if not isinstance(subspace, AffineSubspace):
            raise TypeError(f"subspace must be an AffineSubspace, got {type(subspace).__name__}")
        self.manifold = subspace
        self.ambient_dim = subspace.ambient_dim

    def _posterior_mean(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sub = self.manifold
        b = sub.basis.to(dtype=x.dtype, device=x.device)
        c = sub.offset.to(dtype=x.dtype, device=x.device)
        s2 = sub.scale**2
        shrink = s2 / (s2 + sigma * sigma)  # (B, 1)
        return c + (shrink * ((x - c) @ b.T)) @ b


# --------------------------------------------------------------------------------------
# Embedded copies
# --------------------------------------------------------------------------------------


class EmbeddedDenoiser(IdealDenoiser):
    """The MMSE denoiser of ``K = Q K_base`` lifted from the base's (THEORY §4).

    With the frame ``Q`` (``n × m``, orthonormal columns) and ``x = Q y0 + σ ε``, the
    likelihood factorises: ``‖x − Q y‖² = ‖Qᵀx − y‖² + ‖(I − QQᵀ)x‖²`` and the second
    term does not depend on ``y``. So the posterior of ``y0`` given ``x`` is the base
    posterior given ``Qᵀx`` at the same σ, and ``E[x0 | x] = Q E_base[y0 | Qᵀx]``.
    """

    def __init__(self, embedded: Embedded, **kwargs):
        if not isinstance(embedded, Embedded):
            raise TypeError(f"embedded must be an Embedded manifold, got {type(embedded).__name__}")
        self.manifold = embedded
        self.ambient_dim = embedded.ambient_dim
        self.base = ideal_denoiser(embedded.base, **kwargs)

    def _posterior_mean(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        q = self.manifold.frame.to(dtype=x.dtype, device=x.device)
        return self.base._posterior_mean(x @ q, sigma) @ q.T


_CLOSED_FORMS = "FiniteSet, Sphere/Circle, AffineSubspace (Gaussian data), and Embedded copies of these"


def ideal_denoiser(manifold: Manifold, **kwargs) -> IdealDenoiser:
    """The closed-form ideal (MMSE) denoiser of a manifold's data distribution (THEORY §4).

    Parameters
    ----------
    manifold : Manifold
        ``FiniteSet`` (uniform), ``Sphere``/``Circle`` (uniform), ``AffineSubspace``
        (Gaussian ``N(c, s² P)``), or ``Embedded`` of one of these.
    **kwargs
        Passed to the denoiser (``chunk_size`` for a finite set).

    Returns
    -------
    IdealDenoiser
        ``den(x, sigma)`` gives ``ε*``; ``den.posterior_mean(x, sigma)`` gives ``E[x0 | x]``.

    Raises
    ------
    TypeError
        For a family without a closed form (torus, spiral, Swiss roll, ...). Its data
        can still be handled by the finite-set formula on samples, which is the ideal
        denoiser of the empirical distribution (it memorises the samples):
        ``ideal_denoiser(FiniteSet(manifold.sample(M)))``.

    Examples
    --------
    >>> import toymanifold as tm
    >>> den = tm.ideal_denoiser(tm.Sphere(2))
    >>> den.posterior_mean([[0.0, 0.0, 2.0]], 1e-4)  # nearest point at small σ
    tensor([[0.0000, 0.0000, 1.0000]], dtype=torch.float64)
    """
    as_manifold(manifold)
    if isinstance(manifold, FiniteSet):
        return FiniteSetDenoiser(manifold, **kwargs)
    if isinstance(manifold, Embedded):
        return EmbeddedDenoiser(manifold, **kwargs)
    if kwargs:
        raise TypeError(f"unexpected keyword arguments {sorted(kwargs)} for {manifold!r}")
    if isinstance(manifold, Sphere):
        return SphereDenoiser(manifold)
    if isinstance(manifold, AffineSubspace):
        return GaussianSubspaceDenoiser(manifold)
    raise TypeError(
        f"no closed-form ideal denoiser for {manifold!r}: closed forms exist for {_CLOSED_FORMS}. "
        "For other families use the finite-set formula on samples (the ideal denoiser of the "
        "empirical distribution): ideal_denoiser(FiniteSet(manifold.sample(M)))"
    )
