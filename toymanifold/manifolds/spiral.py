"""The Archimedean spiral (planar Swiss-roll curve) and the Swiss-roll surface (THEORY §1).

Both sets are built on the curve

    γ(θ) = b θ (cos θ, sin θ),   θ ∈ [θ₀, θ₁],   0 < θ₀ < θ₁,

whose radius ``‖γ(θ)‖ = b θ`` grows by ``2π b`` per winding. The defaults
(``θ₀ = 1.5π``, ``θ₁ = 4.5π``, ``b = 1``, height 21) are the curve and strip of
scikit-learn's ``make_swiss_roll``; unlike scikit-learn, the data here are uniform in
arc length (area for the surface), not uniform in ``θ``.

Global projection onto the curve
--------------------------------
For a point ``x ≠ 0`` with polar angle ``φ`` and radius ``ρ``, write ``ψ = θ − φ`` and
``g(θ) = ‖x − γ(θ)‖²``. Up to the factor ``2b``, ``g'(θ) = h(θ)`` with

    h(θ) = b θ − u − θ v,   h'(θ) = b − 2v + θ u,   h''(θ) = 3u + θ v,
    u = ⟨x, (cos θ, sin θ)⟩ = ρ cos ψ,   v = ⟨x, (−sin θ, cos θ)⟩ = −ρ sin ψ.

The nearest point is an endpoint ``θ₀``/``θ₁`` or an interior local minimum
(``h = 0``, ``h' ≥ 0``). Facts used (all for ``θ > 0``):

1. *Front half-windows* ``ψ ∈ [−π/2, π/2] (mod 2π)``: ``h'`` is increasing on
   ``[−π/2, 0]`` (``d h'/dψ = ρ (3 cos ψ − θ sin ψ) ≥ 0`` there) and ``h' ≥ b > 0`` on
   ``[0, π/2]``, so ``h`` decreases then increases: ``g`` has at most one interior
   local minimum per half-window. It is found by safeguarded Halley iteration on ``h``
   in a sign bracket; if ``h ≥ 0`` at the left end, the bracket starts at the minimiser of ``h``
   (the root of the monotone ``h'``, found the same way).
2. ``ψ ∈ [π/2, π]``: ``h ≥ b θ > 0``, no critical point.
3. ``ψ ∈ [π, 3π/2]``: an interior critical point ``θ*`` there is never the global
   minimiser if ``θ* − π ≥ θ₀`` (``g(θ* − π) ≤ ρ² + b²(θ* − π)² < g(θ*)``), and, if
   ``θ₁ − θ₀ ≥ 3π/2``, not when ``ρ > ρ_f = b (π/2)(1 + π/(4θ₀))`` either (compare with
   the point of the same winding at ``ψ = 3π/2``, using ``sin δ ≥ 2δ/π``). Only the
   remaining points (a disc of radius ``ρ_f`` about the centre, or every point for a
   spiral shorter than ``3π/2``) are searched on the first half-turn
   ``[θ₀, θ₀ + π]`` by a 129-point grid refined by safeguarded Halley iteration (a
   safety net: in checks on 2·10⁵ random points per spiral it never changed a result).
4. Pruning: ``g(θ) ≥ (bθ − ρ)²`` since ``‖γ(θ)‖ = bθ``. The half-window whose centre
   is nearest ``ρ/b`` is solved first for every point, in bulk (Halley from the ray
   ``ψ = 0`` without safeguards; an iterate that converged inside the window is its
   unique root, anything else is redone by the safeguarded solver). Then every other
   half-window whose ``θ``-range meets ``[ρ/b − w, ρ/b + w]``, ``w = √(best g)/b``, is
   solved for the points concerned: no other window can hold a better point. This
   keeps the work at about one solve per point.

Every candidate is compared by ``‖x − γ(θ)‖²`` evaluated directly (not through the
cancellation-prone ``ρ² − 2bρθ cos ψ + b²θ²``), in float64.

Reach
-----
No closed form exists, so the reach is computed numerically from Federer's
characterisation (Federer 1959, Thm 4.18), valid for any closed set::

    reach(K) = inf_{a ≠ c ∈ K} ‖c − a‖² / (2 dist(c − a, Tan(K, a))),

where ``Tan(K, a)`` is the tangent line at an interior point and the inward tangent
half-line at an endpoint. The infimum is taken over (i) the curvature limit ``c → a``,
``1/κ(θ) = b (θ² + 1)^{3/2} / (θ² + 2)``, increasing in ``θ`` so minimal at ``θ₀``;
(ii) an interior point ``a`` against every point ``c`` (the bottleneck between
windings), on a grid of spacing at most 0.04 rad refined by bounded Nelder–Mead from
the three best grid pairs; (iii) the two endpoints against every point, on the same
grid refined by bounded scalar minimisation. The
result is ``b`` times the value for ``b = 1`` (the curve scales linearly). The
minimising pair is kept as ``_reach_witness`` so tests can check that the value is
attained (a point just beyond it along the normal has another nearest point).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy import optimize

from .._validation import check_positive
from .base import Manifold

__all__ = ["Spiral", "SwissRoll"]

_TWO_PI = 2.0 * math.pi
_HALF_PI = 0.5 * math.pi
_BACK_GRID = 129
_CHUNK = 1 << 16


# --------------------------------------------------------------------------------------
# Curve helpers (float64, planar coordinates x1, x2 as 1-D tensors)
# --------------------------------------------------------------------------------------


def _uv(theta, x1, x2):
    """``cos θ, sin θ`` and the coordinates ``u, v`` of ``x`` in the frame at ``θ``."""
    c, s = torch.cos(theta), torch.sin(theta)
    return c, s, x1 * c + x2 * s, x2 * c - x1 * s


def _h3(theta, x1, x2, b):
    """``(h, h′, h″)`` of the module docstring (``h = g′/(2b)``)."""
    _, _, u, v = _uv(theta, x1, x2)
    return b * theta - u - theta * v, b - 2.0 * v + theta * u, 3.0 * u + theta * v


def _hp3(theta, x1, x2, b):
    """``(h′, h″, h‴)``: to find the minimiser of ``h`` on a front half-window."""
    _, _, u, v = _uv(theta, x1, x2)
    return b - 2.0 * v + theta * u, 3.0 * u + theta * v, 4.0 * v - theta * u


def _safe_halley(fun, lo: torch.Tensor, hi: torch.Tensor, t: torch.Tensor, args: tuple, max_iter: int = 200):
    """Root of ``fun`` in ``[lo, hi]`` given ``fun(lo) < 0 < fun(hi)``, elementwise.

    Halley steps (cubic convergence; ``fun`` returns the value and two derivatives)
    that leave the current sign bracket are replaced by bisection, so the iteration
    always converges, to the unique root when there is one. An element stops when a
    Halley step is below ``1e-8·max(1, |t|)`` (the error after it is then of order
    the cube of that, far below rounding), when the bracket has collapsed to a few
    ulps, or when ``fun`` is exactly 0. Converged elements leave the working set once
    they are the majority (gathers cost as much as a step).
    """
    n = t.shape[0]
    out = t
    idx = None  # None: still working on the full set
    for _ in range(max_iter):
        f, d1, d2 = fun(t, *args)
        neg = f < 0
        lo = torch.where(neg, t, lo)
        hi = torch.where(neg, hi, t)
        step = 2.0 * f * d1 / (2.0 * d1 * d1 - f * d2)
        tn = t - step
        scale = torch.clamp(t.abs(), min=1.0)
        small = step.abs() <= 1e-8 * scale
        # A converged step may round onto the bracket end it came from: accept it.
        ok = ((tn >= lo) & (tn <= hi)) | small  # False for NaN
        tn = torch.where(ok, tn, 0.5 * (lo + hi))
        zero = f == 0
        tn = torch.where(zero, t, tn)
        done = (ok & small) | (hi - lo <= 4e-16 * scale) | zero
        if idx is None:
            out = tn
        else:
            out[idx] = tn
        keep = ~done
        n_keep = int(keep.sum())
        if n_keep == 0:
            return out
        if idx is None and 2 * n_keep > n:
            t = tn  # converged elements take harmless extra steps
            continue
        sel = torch.nonzero(keep).squeeze(1)
        idx = sel if idx is None else idx[sel]
        t, lo, hi = tn[sel], lo[sel], hi[sel]
        args = tuple(a[sel] if isinstance(a, torch.Tensor) else a for a in args)
    return out


def _front_window_min(x1, x2, rho, lo, hi, centre, b):
    """Interior local minimum of ``g`` on front half-windows ``[lo, hi]`` (fact 1).

    Returns ``(theta, found, cos theta, sin theta)``; where ``found`` is False the window has no interior
    local minimum (its minimum is at an end, which is either an endpoint of the curve,
    a candidate anyway, or not a local minimum of ``g``: module docstring).
    """
    # At unclipped ends h is known without trigonometry: ψ = −π/2 gives u = 0, v = ρ,
    # so h = θ(b − ρ); ψ = π/2 gives h = θ(b + ρ) > 0.
    h_lo = lo * (b - rho)
    h_hi = hi * (b + rho)
    for end, h_end, clipped in ((lo, h_lo, lo > centre - _HALF_PI), (hi, h_hi, hi < centre + _HALF_PI)):
        if bool(clipped.any()):
            j = torch.nonzero(clipped).squeeze(1)
            h_end[j] = _h3(end[j], x1[j], x2[j], b)[0]
    found = (h_lo < 0) & (h_hi > 0)
    left = lo
    # h ≥ 0 at the left end: h is valley-shaped, so a root exists only right of the
    # minimiser m of h (the root of the increasing h′), and only if h(m) < 0.
    need_m = (h_lo >= 0) & (h_hi > 0)
    if bool(need_m.any()):
        left = lo.clone()
        j = torch.nonzero(need_m).squeeze(1)
        a1, a2, l_j, h_j = x1[j], x2[j], lo[j], hi[j]
        hp_lo = _hp3(l_j, a1, a2, b)[0]
        hp_hi = _hp3(h_j, a1, a2, b)[0]
        bracket = (hp_lo < 0) & (hp_hi > 0)
        m = torch.where(hp_hi <= 0, h_j, l_j)
        if bool(bracket.any()):
            k = torch.nonzero(bracket).squeeze(1)
            m[k] = _safe_halley(_hp3, l_j[k], h_j[k], 0.5 * (l_j[k] + h_j[k]), (a1[k], a2[k], b))
        left[j] = m
        found[j] = _h3(m, a1, a2, b)[0] < 0
    theta = lo.clone()
    c = torch.empty_like(lo)
    s = torch.empty_like(lo)
    all_found = bool(found.all())
    if not all_found and not bool(found.any()):
        return theta, found, c, s
    i = None if all_found else torch.nonzero(found).squeeze(1)
    sub = (lambda a: a) if i is None else (lambda a: a[i])
    a1, a2, l_i, h_i, c_i = sub(x1), sub(x2), sub(left), sub(hi), sub(centre)
    t, ct, st, conv = _halley_from_ray(a1, a2, sub(rho), c_i, b)
    # The window holds exactly one root: an iterate that converged inside it is that root.
    ok = conv & (t >= l_i) & (t <= h_i)
    if not bool(ok.all()):
        j = torch.nonzero(~ok).squeeze(1)
        start = torch.minimum(torch.maximum(c_i[j], l_i[j]), h_i[j])
        tj = _safe_halley(_h3, l_i[j], h_i[j], start, (a1[j], a2[j], b))
        t[j], ct[j], st[j] = tj, torch.cos(tj), torch.sin(tj)
    if i is None:
        return t, found, ct, st
    theta[i], c[i], s[i] = t, ct, st
    return theta, found, c, s


def _halley_from_ray(x1, x2, rho, centre, b, active=None, max_iter: int = 8):
    """Unsafeguarded Halley on ``h`` from ``θ = centre`` (on the ray through ``x``).

    The bulk path of the projection. It iterates on the offset ``ψ = θ − centre`` from
    the ray, where ``u = ρ cos ψ`` and ``v = −ρ sin ψ``; the first step (``ψ = 0``)
    needs no trigonometry. Returns ``θ``, ``cos θ``, ``sin θ`` and a convergence flag
    (last step below 1e-6: with Halley's cubic convergence the error is then ~1e-18).
    ``cos``/``sin`` of the last iterate come from those of the previous one rotated by
    the last step (second-order Taylor, error ``|step|³/6 < 2e-19``) and then by the
    ray's angle (``cos φ = x₁/ρ``, ``sin φ = x₂/ρ``). Only elements in ``active`` count
    for the early exit. Buffers are reused in place: fresh 8 MB temporaries cost page
    faults that dominate the arithmetic.
    """
    h = b * centre - rho
    d1 = centre * rho + b
    d2 = torch.mul(rho, 1.5)
    den = torch.mul(d1, d1).addcmul_(d2, h, value=-1.0)
    psi = torch.mul(h, d1).div_(den).neg_()
    t, cp, sp, rc, rs, step = (torch.empty_like(psi) for _ in range(6))
    conv = torch.empty_like(psi, dtype=torch.bool)
    n = psi.shape[0] if active is None else int(active.sum())
    for it in range(max_iter):
        torch.add(centre, psi, out=t)
        torch.cos(psi, out=cp)
        torch.sin(psi, out=sp)
        torch.mul(rho, cp, out=rc)  # u
        torch.mul(rho, sp, out=rs)  # −v
        torch.mul(t, b, out=h).sub_(rc).addcmul_(t, rs)  # h = b t − u − t v
        torch.mul(rs, 2.0, out=d1).add_(b).addcmul_(t, rc)  # h' = b − 2v + t u
        torch.mul(rc, 3.0, out=d2).addcmul_(t, rs, value=-1.0)  # h'' = 3u + t v
        torch.mul(d1, d1, out=den).addcmul_(h, d2, value=-0.5)
        torch.mul(h, d1, out=step).div_(den)
        psi.sub_(step)
        torch.le(step.abs(), 1e-6, out=conv)
        n_conv = int(conv.sum()) if active is None else int((conv & active).sum())
        # Stragglers (a few per mille) go to the safeguarded solver instead.
        if n_conv == n or (it >= 1 and n_conv >= 0.995 * n):
            break
    step.mul_(conv)
    half = torch.mul(step, step).mul_(-0.5).add_(1.0)
    c_psi = torch.mul(cp, half).addcmul_(sp, step)
    s_psi = sp.mul_(half).addcmul_(cp, step, value=-1.0)
    # θ = φ + 2πk + ψ: rotate (cos ψ, sin ψ) by φ. Converged windows have ρ > 0.
    inv = rho.reciprocal()
    c1, s1 = x1 * inv, x2 * inv
    cos_t = torch.mul(c1, c_psi).addcmul_(s1, s_psi, value=-1.0)
    sin_t = s1.mul_(c_psi).addcmul_(c1, s_psi)
    return torch.add(centre, psi, out=t), cos_t, sin_t, conv


def _primary_window(x1, x2, rho, phi, k, b: float, t0: float, t1: float):
    """Bulk solve of the front half-window ``k`` for every point, without gathers.

    Returns ``(found, ok, θ, cos θ, sin θ)``: ``found`` where the window holds an
    interior local minimum that is the root of ``h`` in ``[lo, hi]`` (``h(lo) < 0 <
    h(hi)``), ``ok`` where the unsafeguarded solve converged to it. Points with
    ``found & ~ok`` or with ``h(lo) ≥ 0`` (valley case) must be redone by the general
    path.
    """
    centre = phi + _TWO_PI * k
    left_end = centre - _HALF_PI
    right_end = centre + _HALF_PI
    lo_clip = left_end < t0
    hi_clip = right_end > t1
    lo = torch.clamp(left_end, min=t0)
    hi = torch.clamp(right_end, max=t1)
    valid = lo < hi
    # h at the curve's endpoints is linear in x: h(θₑ) = bθₑ − x₁(cos θₑ − θₑ sin θₑ) − x₂(sin θₑ + θₑ cos θₑ).
    h_ends = []
    for te in (t0, t1):
        ce, se = math.cos(te), math.sin(te)
        h_ends.append(torch.mul(x1, -(ce - te * se)).add_(b * te).add_(x2, alpha=-(se + te * ce)))
    h_lo = torch.where(lo_clip, h_ends[0], lo * (b - rho))
    h_hi = torch.where(hi_clip, h_ends[1], hi * (b + rho))
    right_ok = valid & (h_hi > 0)
    found = right_ok & (h_lo < 0)
    valley = right_ok & (h_lo >= 0)
    theta, c, s, conv = _halley_from_ray(x1, x2, rho, centre, b, active=found)
    ok = found & conv & (theta >= lo) & (theta <= hi)
    return found, valley, ok, theta, c, s


def _interval_gap(r: torch.Tensor, lo, hi) -> torch.Tensor:
    """Distance from ``r`` to the interval ``[lo, hi]``."""
    return torch.clamp(lo - r, min=0.0) + torch.clamp(r - hi, min=0.0)


def _nearest_point(x1: torch.Tensor, x2: torch.Tensor, b: float, t0: float, t1: float):
    """A global nearest point ``(p1, p2)`` of ``γ`` for each planar point (float64).

    The full-size work (polar coordinates, endpoints, the bulk primary solve, the masks
    of fact 4) runs in chunks that keep its working vectors in cache and its
    temporaries recycled; the solves on minorities of points (redos, other windows,
    the back half-turn) are batched over all chunks, as their cost is per call.
    """
    n = x1.shape[0]
    rho, phi, best_g, best_1, best_2 = (torch.empty_like(x1) for _ in range(5))
    e0 = (b * t0 * math.cos(t0), b * t0 * math.sin(t0))
    e1 = (b * t1 * math.cos(t1), b * t1 * math.sin(t1))
    t_back = min(t1, t0 + math.pi)
    rho_f = math.inf if t1 - t0 < 1.5 * math.pi else b * _HALF_PI * (1.0 + math.pi / (4.0 * t0))
    redo_i, redo_k, other_i, other_lo, other_hi, other_k, back_i = ([] for _ in range(7))
    for i in range(0, n, _CHUNK):
        sl = slice(i, i + _CHUNK)
        a1, a2 = x1[sl], x2[sl]
        r_c = torch.sqrt(a1 * a1 + a2 * a2, out=rho[sl])
        p_c = torch.atan2(a2, a1, out=phi[sl])
        r_over_b = r_c / b
        # Endpoints are always candidates; their coordinates are constants.
        g0 = (a1 - e0[0]).square_().add_((a2 - e0[1]).square_())
        g1 = (a1 - e1[0]).square_().add_((a2 - e1[1]).square_())
        first = g0 <= g1
        bg = torch.where(first, g0, g1)
        b1 = torch.full_like(a1, e1[0]).masked_fill_(first, e0[0])  # (where(scalars) is float32)
        b2 = torch.full_like(a1, e1[1]).masked_fill_(first, e0[1])
        # Primary pass: the half-window whose centre is nearest ρ/b (fact 4), in bulk.
        k_near = torch.round((r_over_b - p_c) / _TWO_PI)
        found, valley, ok, theta, c, s = _primary_window(a1, a2, r_c, p_c, k_near, b, t0, t1)
        r = b * theta
        q1, q2 = r * c, r * s
        g = (a1 - q1).square_().add_((a2 - q2).square_())
        better = ok & (g < bg)
        torch.where(better, g, bg, out=best_g[sl])
        torch.where(better, q1, b1, out=best_1[sl])
        torch.where(better, q2, b2, out=best_2[sl])
        redo = (found & ~ok) | valley
        if bool(redo.any()):
            j = torch.nonzero(redo).squeeze(1)
            redo_i.append(j + i)
            redo_k.append(k_near[j])
        # Every other half-window whose lower bound (bθ − ρ)² < best: its θ-range must
        # meet [ρ/b − w, ρ/b + w] with w = √best / b, which bounds its index k. (best
        # is taken before the redos: a superset of windows, so still every one that
        # can hold a better point.) Windows entirely outside [θ₀, θ₁] are dropped
        # from the range up front (solve would discard them).
        w = torch.sqrt(best_g[sl]) / b
        k_lo = torch.ceil((r_over_b - w - _HALF_PI - p_c) / _TWO_PI)
        k_lo = torch.maximum(k_lo, torch.ceil((t0 - _HALF_PI - p_c) / _TWO_PI))
        k_hi = torch.floor((r_over_b + w + _HALF_PI - p_c) / _TWO_PI)
        k_hi = torch.minimum(k_hi, torch.floor((t1 + _HALF_PI - p_c) / _TWO_PI))
        other = (k_hi >= k_lo) & ((k_lo != k_near) | (k_hi != k_near))
        if bool(other.any()):
            j = torch.nonzero(other).squeeze(1)
            other_i.append(j + i)
            other_lo.append(k_lo[j])
            other_hi.append(k_hi[j])
            other_k.append(k_near[j])
        # Back half-windows (fact 3): only the first half-turn, only near the centre;
        # screened here with the current best, re-screened with the final one below.
        gap = b * _interval_gap(r_over_b, t0, t_back)
        need = (r_c <= rho_f) & (gap * gap < best_g[sl])
        if bool(need.any()):
            back_i.append(torch.nonzero(need).squeeze(1) + i)

    def consider(idx, theta, c, s):
        """Replace the best candidate of the points ``idx`` where ``γ(theta)`` is closer."""
        r = b * theta
        p1, p2 = r * c, r * s
        g = (x1[idx] - p1) ** 2 + (x2[idx] - p2) ** 2
        better = g < best_g[idx]
        if bool(better.any()):
            # One window per point per call: the indices are distinct, scatter is safe.
            sel = idx[better]
            best_g[sel], best_1[sel], best_2[sel] = g[better], p1[better], p2[better]

    def solve(idx, k):
        """Solve the front half-window ``k`` (float tensor) of the points ``idx``."""
        a1, a2, r, centre = x1[idx], x2[idx], rho[idx], phi[idx] + _TWO_PI * k
        lo = torch.clamp(centre - _HALF_PI, min=t0)
        hi = torch.clamp(centre + _HALF_PI, max=t1)
        valid = lo < hi
        if not bool(valid.all()):
            j = torch.nonzero(valid).squeeze(1)
            idx, a1, a2, r, centre, lo, hi = idx[j], a1[j], a2[j], r[j], centre[j], lo[j], hi[j]
        if lo.numel() == 0:
            return
        theta, found, c, s = _front_window_min(a1, a2, r, lo, hi, centre, b)
        if bool(found.all()):
            consider(idx, theta, c, s)
        else:
            j = torch.nonzero(found).squeeze(1)
            consider(idx[j], theta[j], c[j], s[j])

    if redo_i:
        solve(torch.cat(redo_i), torch.cat(redo_k))
    # The loop runs on the minority of points whose range holds a window other than
    # the primary one: full-size masks per window index cost more than the solves.
    if other_i:
        sub, k_lo, k_hi, k_sub = (torch.cat(v) for v in (other_i, other_lo, other_hi, other_k))
        for j in range(int((k_hi - k_lo).max()) + 1):
            k = k_lo + j
            need = (k <= k_hi) & (k != k_sub)
            if bool(need.any()):
                i = torch.nonzero(need).squeeze(1)
                solve(sub[i], k[i])
    if back_i:
        idx = torch.cat(back_i)
        gap = b * _interval_gap(rho[idx] / b, t0, t_back)
        idx = idx[gap * gap < best_g[idx]]
        if idx.numel() > 0:
            theta = _grid_search(x1[idx], x2[idx], b, t0, t_back)
            consider(idx, theta, torch.cos(theta), torch.sin(theta))
    return best_1, best_2


def _grid_search(x1, x2, b: float, lo: float, hi: float) -> torch.Tensor:
    """Minimiser of ``g`` on ``[lo, hi]``: a dense grid refined by safeguarded Halley."""
    grid = torch.linspace(lo, hi, _BACK_GRID, dtype=x1.dtype, device=x1.device)
    r = b * grid
    d1 = x1[:, None] - r * torch.cos(grid)
    d2 = x2[:, None] - r * torch.sin(grid)
    i = torch.argmin(d1 * d1 + d2 * d2, dim=1)
    theta = grid[i]
    a = grid[torch.clamp(i - 1, min=0)]
    c = grid[torch.clamp(i + 1, max=_BACK_GRID - 1)]
    ok = (_h3(a, x1, x2, b)[0] < 0) & (_h3(c, x1, x2, b)[0] > 0)
    if bool(ok.any()):
        j = torch.nonzero(ok).squeeze(1)
        theta[j] = _safe_halley(_h3, a[j], c[j], theta[j], (x1[j], x2[j], b))
    return theta


# --------------------------------------------------------------------------------------
# Arc length and reach
# --------------------------------------------------------------------------------------


def _arc_length(theta, b: float):
    """``s(θ) = (b/2)(θ √(1 + θ²) + asinh θ)``: arc length of ``γ`` from ``θ = 0``."""
    return 0.5 * b * (theta * torch.sqrt(1.0 + theta * theta) + torch.asinh(theta))


def _inverse_arc_length(s: torch.Tensor, b: float, t0: float, t1: float) -> torch.Tensor:
    """``θ`` with ``s(θ) = s``: Newton from the right, monotone because ``s`` is convex."""
    # s(θ) ≥ bθ²/2, so √(2s/b) ≥ θ: a start right of the root.
    theta = torch.clamp(torch.sqrt(2.0 * s / b), min=t0, max=t1)
    for _ in range(100):
        step = (_arc_length(theta, b) - s) / (b * torch.sqrt(1.0 + theta * theta))
        theta = torch.clamp(theta - step, min=t0, max=t1)
        if bool((step.abs() <= 1e-15 * theta).all()):
            break
    return theta


def _curvature_radius(theta, b: float = 1.0):
    """``1/κ(θ) = b (θ² + 1)^{3/2} / (θ² + 2)``."""
    return b * (theta * theta + 1.0) ** 1.5 / (theta * theta + 2.0)


def _np_curve(t):
    c, s = np.cos(t), np.sin(t)
    p = np.stack([t * c, t * s], axis=-1)
    d = np.stack([c - t * s, s + t * c], axis=-1)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    nrm = np.stack([-d[..., 1], d[..., 0]], axis=-1)  # left normal: towards the centre of curvature
    return p, d, nrm


def _pair_q(s, t):
    """Federer's ratio for interior ``a = γ(s)``, ``c = γ(t)`` (``b = 1``)."""
    pa, _, na = _np_curve(s)
    pc, _, _ = _np_curve(t)
    v = pc - pa
    vv = (v * v).sum(-1)
    vn = np.abs((v * na).sum(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = vv / (2.0 * vn)
    # As c → a the ratio tends to the radius of curvature; evaluate the limit there
    # rather than 0/0.
    close = np.abs(t - s) < 1e-4
    return np.where(close, _curvature_radius(s), np.where(vn > 0, q, np.inf))


def _end_q(t, t_end: float, inward: float):
    """Federer's ratio for the endpoint ``a = γ(t_end)`` (tangent half-line ``inward·γ'``)."""
    pa, da, na = _np_curve(np.asarray(t_end))
    pc, _, _ = _np_curve(t)
    v = pc - pa
    vv = (v * v).sum(-1)
    along = inward * (v * da).sum(-1)
    dist = np.where(along >= 0, np.abs((v * na).sum(-1)), np.sqrt(vv))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = vv / (2.0 * dist)
    close = np.abs(t - t_end) < 1e-4
    return np.where(close, _curvature_radius(t_end), np.where(dist > 0, q, np.inf))


@functools.lru_cache(maxsize=64)
def _unit_reach(t0: float, t1: float) -> tuple[float, tuple]:
    """Reach of ``γ`` with ``b = 1`` and its witness (see the module docstring)."""
    best = (_curvature_radius(t0), ("curvature", t0, t0))
    m = max(64, math.ceil((t1 - t0) / 0.04) + 1)
    grid = np.linspace(t0, t1, m)
    # (ii) interior pairs on the grid, in row blocks to bound memory: for every row
    # (point a) keep its best partner, then refine the best rows.
    pts, _, nrm = _np_curve(grid)
    row_best = np.full(m, np.inf)
    row_arg = np.zeros(m, dtype=np.int64)
    for start in range(0, m, 256):
        rows = slice(start, min(m, start + 256))
        v = pts[None, :, :] - pts[rows, None, :]
        vv = (v * v).sum(-1)
        vn = np.abs((v * nrm[rows, None, :]).sum(-1))
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(vn > 0, vv / (2.0 * vn), np.inf)
        i = np.arange(rows.start, rows.stop)
        q[i - start, i] = np.inf  # a = c
        row_arg[rows] = np.argmin(q, axis=1)
        row_best[rows] = q[i - start, row_arg[rows]]
    order = np.argsort(row_best)[:3]
    cands = [(row_best[i], grid[i], grid[row_arg[i]]) for i in order]
    for _, s0, u0 in cands:
        res = optimize.minimize(
            lambda z: float(_pair_q(np.asarray(z[0]), np.asarray(z[1]))),
            x0=[s0, u0],
            method="Nelder-Mead",
            bounds=[(t0, t1), (t0, t1)],
            options={"xatol": 1e-11, "fatol": 1e-14, "maxiter": 600},
        )
        val = float(res.fun)
        if val < best[0]:
            best = (val, ("pair", float(res.x[0]), float(res.x[1])))
    # (iii) endpoints against every point.
    h = grid[1] - grid[0]
    for t_end, inward in ((t0, 1.0), (t1, -1.0)):
        q = _end_q(grid, t_end, inward)
        j = int(np.argmin(q))
        lo, hi = max(t0, grid[j] - h), min(t1, grid[j] + h)
        res = optimize.minimize_scalar(
            lambda z, te=t_end, w=inward: float(_end_q(np.asarray(z), te, w)),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-13},
        )
        val, arg = (float(res.fun), float(res.x)) if res.fun < q[j] else (float(q[j]), float(grid[j]))
        if val < best[0]:
            best = (val, ("end", t_end, arg))
    return best


# --------------------------------------------------------------------------------------
# Public classes
# --------------------------------------------------------------------------------------


def _check_range(theta_min, theta_max, scale):
    t0 = check_positive(theta_min, "theta_min")
    t1 = check_positive(theta_max, "theta_max")
    if t1 <= t0:
        raise ValueError(f"theta_max must be > theta_min, got theta_max={t1} <= theta_min={t0}")
    b = check_positive(scale, "scale")
    return t0, t1, b


class Spiral(Manifold):
    """The Archimedean spiral ``γ(θ) = b θ (cos θ, sin θ)``, ``θ ∈ [θ₀, θ₁]``, in ``R^2``.

    The planar Swiss-roll curve: ``(θ₁ − θ₀)/(2π)`` windings with radial gap ``2πb``.
    ``project`` is the global nearest point (THEORY §1), exact to float64 rounding: see
    the module docstring for the candidate set (every winding near ``x`` and both
    endpoints) and its proof. ``reach`` is computed numerically from Federer's formula
    (module docstring) and cached.

    Data: uniform in arc length, ``s(θ) = (b/2)(θ√(1 + θ²) + asinh θ)``, inverted by
    Newton. (scikit-learn's ``make_swiss_roll`` is uniform in ``θ`` instead.)

    Parameters
    ----------
    theta_min, theta_max : float
        ``0 < θ₀ < θ₁``. Default ``1.5π`` and ``4.5π`` (scikit-learn's roll).
    scale : float
        ``b > 0``: the radius at angle ``θ`` is ``bθ``.

    Examples
    --------
    >>> import math
    >>> import toymanifold as tm
    >>> s = tm.Spiral()
    >>> float(s.distance([[0.0, 0.0]])[0]) == s.theta_min  # the centre: the inner endpoint b θ₀ is nearest
    True
    >>> round(s.reach, 6)  # Federer's formula, numerically (module docstring)
    3.111346
    """

    ambient_dim = 2
    intrinsic_dim = 1

    def __init__(self, theta_min: float = 1.5 * math.pi, theta_max: float = 4.5 * math.pi, scale: float = 1.0):
        self.theta_min, self.theta_max, self.scale = _check_range(theta_min, theta_max, scale)

    # -- geometry shared with SwissRoll ----------------------------------------------
    def _curve(self, theta: torch.Tensor) -> torch.Tensor:
        r = self.scale * theta
        return torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=-1)

    def _unit_tangent(self, q: torch.Tensor) -> torch.Tensor:
        """Unit tangent at planar points ``q`` of the curve (``θ = ‖q‖/b``)."""
        theta = torch.linalg.vector_norm(q, dim=-1) / self.scale
        c, s = torch.cos(theta), torch.sin(theta)
        d = torch.stack([c - theta * s, s + theta * c], dim=-1)
        return d / torch.sqrt(1.0 + theta * theta)[:, None]

    def _sample_theta(self, num: int, generator: torch.Generator) -> torch.Tensor:
        b, t0, t1 = self.scale, self.theta_min, self.theta_max
        s0, s1 = (float(_arc_length(torch.tensor(t, dtype=torch.float64), b)) for t in (t0, t1))
        s = s0 + (s1 - s0) * torch.rand(num, dtype=torch.float64, generator=generator)
        return _inverse_arc_length(s, b, t0, t1)

    def _project_planar(self, q: torch.Tensor) -> torch.Tensor:
        q64 = q.to(torch.float64)
        p1, p2 = _nearest_point(
            q64[:, 0].contiguous(), q64[:, 1].contiguous(), self.scale, self.theta_min, self.theta_max
        )
        return torch.stack([p1, p2], dim=-1)

    @property
    def reach(self) -> float:
        return self.scale * _unit_reach(self.theta_min, self.theta_max)[0]

    @property
    def _reach_witness(self) -> tuple[str, float, float]:
        """``(kind, θ_a, θ_c)`` attaining the reach: kind ``curvature``, ``pair`` or ``end``."""
        return _unit_reach(self.theta_min, self.theta_max)[1]

    @property
    def diameter_bound(self) -> float:
        return self.scale * self.theta_max

    # -- hooks ----------------------------------------------------------------------
    def _sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        return self._curve(self._sample_theta(num, generator))

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return self._project_planar(x).to(x.dtype)

    def _tangent_basis(self, p: torch.Tensor) -> torch.Tensor:
        return self._unit_tangent(p)[:, None, :]

    def __repr__(self) -> str:
        return f"Spiral(theta_min={self.theta_min!r}, theta_max={self.theta_max!r}, scale={self.scale!r})"


class SwissRoll(Manifold):
    """The Swiss roll ``{(bθ cos θ, y, bθ sin θ) : θ ∈ [θ₀, θ₁], y ∈ [0, H]}`` in ``R^3``.

    The product of the :class:`Spiral` in the ``(x₁, x₃)`` plane with the interval
    ``[0, H]`` on the ``x₂`` axis (scikit-learn's layout). For a product set the
    squared distance splits, so the nearest point factorises: the spiral's global
    nearest point of ``(x₁, x₃)`` and ``x₂`` clamped to ``[0, H]`` (THEORY §1). The
    surface has boundary (the two ends of the spiral and the edges ``y = 0, H``);
    points beyond the edges project onto them.

    The reach equals the spiral's: the interval factor's nearest point is always
    unique, so uniqueness fails exactly where it fails for the planar part, whose
    distance is at most the full distance.

    Data: uniform in area (arc length × uniform height).

    Parameters
    ----------
    theta_min, theta_max, scale : float
        The spiral, as in :class:`Spiral`.
    height : float
        ``H > 0``. Default 21 (scikit-learn's).
    """

    ambient_dim = 3
    intrinsic_dim = 2

    def __init__(
        self,
        theta_min: float = 1.5 * math.pi,
        theta_max: float = 4.5 * math.pi,
        scale: float = 1.0,
        height: float = 21.0,
    ):
        self.spiral = Spiral(theta_min, theta_max, scale)
        self.theta_min, self.theta_max, self.scale = self.spiral.theta_min, self.spiral.theta_max, self.spiral.scale
        self.height = check_positive(height, "height")

    @property
    def reach(self) -> float:
        return self.spiral.reach

    @property
    def diameter_bound(self) -> float:
        return math.hypot(self.spiral.diameter_bound, self.height)

    def _sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        q = self.spiral._sample(num, generator)
        y = self.height * torch.rand(num, dtype=torch.float64, generator=generator)
        return torch.stack([q[:, 0], y, q[:, 1]], dim=-1)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        q = self.spiral._project_planar(x[:, [0, 2]]).to(x.dtype)
        y = torch.clamp(x[:, 1], min=0.0, max=self.height)
        return torch.stack([q[:, 0], y, q[:, 1]], dim=-1)

    def _tangent_basis(self, p: torch.Tensor) -> torch.Tensor:
        d = self.spiral._unit_tangent(p[:, [0, 2]])
        zero = torch.zeros_like(d[:, 0])
        one = torch.ones_like(zero)
        e_theta = torch.stack([d[:, 0], zero, d[:, 1]], dim=-1)
        e_y = torch.stack([zero, one, zero], dim=-1)
        return torch.stack([e_theta, e_y], dim=-2)

    def __repr__(self) -> str:
        return (
            f"SwissRoll(theta_min={self.theta_min!r}, theta_max={self.theta_max!r}, scale={self.scale!r}, "
            f"height={self.height!r})"
        )
