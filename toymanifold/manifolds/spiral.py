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
4. Pruning. Two lower bounds on a front half-window ``k`` with centre
   ``c = φ + 2πk``: ``g(θ) ≥ (bθ − ρ)²`` since ``‖γ(θ)‖ = bθ``, and, from
   ``g = ρ² + b²θ² − 2bρθ cos ψ`` with ``cos ψ ≤ 1 − 2ψ²/π²`` on ``|ψ| ≤ π/2``
   (Jordan's inequality) and ``θ ≥ θ₀``,
   ``g ≥ (b(c + ψ) − ρ)² + κ₀ψ² ≥ (bc − ρ)² κ₀/(b² + κ₀)``, ``κ₀ = 4bρθ₀/π²``.
   The half-window whose centre is nearest ``ρ/b`` is solved first for every point,
   in bulk (Halley from the ray ``ψ = 0`` without safeguards; a root with ``h′ > 0``
   inside the window is its unique interior minimum, anything else is settled by
   the cheap tests of ``_settled`` or redone by the safeguarded solver). Then every
   other half-window whose centre lies within ``min(w + π/2, w √(1 + b²/κ₀))`` of
   ``ρ/b``, ``w = √(best g)/b``, is solved for the points concerned: no other window
   can hold a better point. This keeps the work at about one solve per point.

Every candidate is compared by ``‖x − γ(θ)‖²`` evaluated in float64 without the
cancellation of ``ρ² − 2bρθ cos ψ + b²θ²``: directly, or, for the bulk solve, as
``(bθ − u)² + v²`` in the frame of the curve at the last iterate, carried over the
last (tiny) step by its quadratic model.

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

from ..validation import check_positive
from .base import Manifold, row_blocks

__all__ = ["Spiral", "SwissRoll"]

_TWO_PI = 2.0 * math.pi
_HALF_PI = 0.5 * math.pi
_BACK_GRID = 129
_CHUNK = 1 << 16  # points per bulk chunk: its working vectors stay in cache


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

    Returns ``(theta, found)``; where ``found`` is False the window has no interior
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
    if not bool(found.any()):
        return theta, found
    i = torch.nonzero(found).squeeze(1)
    a1, a2, l_i, h_i, c_i = x1[i], x2[i], left[i], hi[i], centre[i]
    t, _, _, root = _ray_halley(rho[i], c_i, b, iterations=4)
    # The bracket holds exactly one root, on the rising side of h: a root the
    # unsafeguarded iteration reached inside it is that root.
    ok = root & (t >= l_i) & (t <= h_i)
    if not bool(ok.all()):
        j = torch.nonzero(~ok).squeeze(1)
        start = torch.minimum(torch.maximum(c_i[j], l_i[j]), h_i[j])
        t[j] = _safe_halley(_h3, l_i[j], h_i[j], start, (a1[j], a2[j], b))
    theta[i] = t
    return theta, found


def _ray_halley(rho, centre, b, iterations: int = 1):
    """Unsafeguarded Halley on ``h`` from ``θ = centre`` (on the ray through ``x``).

    The bulk path of the projection. It iterates on the offset ``ψ = θ − centre``
    from the ray, where ``u = ρ cos ψ`` and ``v = −ρ sin ψ`` (so only ``ρ`` and the
    centre enter). The first step (from ``ψ = 0``) needs no trigonometry; the second
    evaluates ``cos ψ``, ``sin ψ`` by their Taylor polynomials to degree 4 and 5 (for
    ``|ψ| ≤ 0.3`` that moves the root by < 1e-7, and the primary root is rarely
    further from the ray); then ``iterations`` exact steps follow. On the clouds of
    ``benchmarks/geometry.py`` one exact step leaves 99.6 % of points with a last
    step below 1e-6, which with Halley's cubic convergence means an error ~1e-18; the
    rest are redone on the side. Returns ``θ``, ``ψ``, ``g(θ) = ‖x − γ(θ)‖²`` and
    ``root``: the last step was below 1e-6 and ``h′ > 0`` there, i.e. ``θ`` is a
    local minimum of ``g``. ``g`` is evaluated at the last iterate in the frame of
    the curve, ``(bθ − u)² + v²``, and carried over the last step by its quadratic
    model (``g′ = 2b h``, ``g″ = 2b h′``; the cubic term is below ``ρ·1e-18``).
    Buffers are reused in place: each operation is a pass over the chunk.
    """
    h = torch.mul(centre, b).sub_(rho)
    d1 = torch.mul(centre, rho).add_(b)
    den = torch.mul(d1, d1).addcmul_(rho, h, value=-1.5)
    psi = torch.mul(h, d1).div_(den).neg_()
    t, cp, sp, rc, rs, d2, step = (torch.empty_like(psi) for _ in range(7))
    for it in range(iterations + 1):
        torch.add(centre, psi, out=t)
        if it == 0:
            q = torch.mul(psi, psi, out=rc)
            torch.mul(q, 1.0 / 24.0, out=cp).sub_(0.5).mul_(q).add_(1.0)
            torch.mul(q, 1.0 / 120.0, out=sp).sub_(1.0 / 6.0).mul_(q).add_(1.0).mul_(psi)
        else:
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
    root = (torch.abs(step) <= 1e-6).logical_and_(d1 > 0)
    g = torch.mul(t, b, out=d2).sub_(rc).square_().addcmul_(rs, rs)
    g.addcmul_(step, h, value=-2.0 * b).addcmul_(torch.mul(step, step, out=rc), d1, value=b)
    return torch.add(centre, psi, out=t), psi, g, root


def _nearest_window(r_over_b: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """Index ``k`` (as float) of the window centre ``φ + 2πk`` nearest ``ρ/b``.

    One function for the bulk pass and the flagged points, so both get the same ``k``
    bit for bit.
    """
    return torch.sub(r_over_b, phi).mul_(1.0 / _TWO_PI).round_()


def _h_linear(x1, x2, b: float, te: float) -> torch.Tensor:
    """``h(θₑ)`` at a fixed ``θₑ``, linear in ``x``: ``bθₑ − x₁(cos θₑ − θₑ sin θₑ) − x₂(sin θₑ + θₑ cos θₑ)``."""
    ce, se = math.cos(te), math.sin(te)
    return torch.mul(x1, -(ce - te * se)).add_(b * te).add_(x2, alpha=-(se + te * ce))


def _hp_linear(x1, x2, b: float, te: float) -> torch.Tensor:
    """``h′(θₑ)`` at a fixed ``θₑ``, linear in ``x``: ``b + x₁(2 sin θₑ + θₑ cos θₑ) + x₂(θₑ sin θₑ − 2 cos θₑ)``."""
    ce, se = math.cos(te), math.sin(te)
    return torch.mul(x1, 2.0 * se + te * ce).add_(b).add_(x2, alpha=te * se - 2.0 * ce)


def _front_candidates(rho, centre, b: float, t0: float, t1: float, iterations: int = 1):
    """Front half-windows centred at ``centre``: the elementwise (bulk) solve.

    Returns ``(θ, g, inside)``: where ``inside``, the ray iteration found a root of
    ``h`` with ``h′ > 0`` inside the window and ``[θ₀, θ₁]`` (the window's unique
    interior local minimum of ``g``: fact 1) and ``g = ‖x − γ(θ)‖²``; elsewhere
    ``g = inf`` and the window is undecided (``_settled`` decides most).
    """
    theta, psi, g, root = _ray_halley(rho, centre, b, iterations)
    inside = root.logical_and_(psi.abs_() <= _HALF_PI).logical_and_(theta >= t0).logical_and_(theta <= t1)
    return theta, torch.where(inside, g, math.inf), inside


def _settled(x1, x2, centre, b: float, t0: float, t1: float) -> torch.Tensor:
    """Windows that hold no interior local minimum of ``g``, for certain.

    A window misses ``[θ₀, θ₁]``; or it is cut at ``θ₁`` with ``h(θ₁) ≤ 0`` (on the
    valley-shaped ``h`` of fact 1 a sign change from − to + is followed by ``h > 0``
    up to the window's end); or it is cut at ``θ₀`` with ``h, h′ ≥ 0`` there (``h′``
    only grows up to ``ψ = 0`` and is ``≥ b`` after it, so ``h ≥ 0`` on the window).
    Other windows without a candidate go to the general path (``_front_window_min``).
    """
    top, bottom = centre + _HALF_PI, centre - _HALF_PI
    settled = (top <= t0).logical_or_(bottom >= t1)
    settled.logical_or_((top > t1).logical_and_(_h_linear(x1, x2, b, t1) <= 0))
    rising = (_h_linear(x1, x2, b, t0) >= 0).logical_and_(_hp_linear(x1, x2, b, t0) >= 0)
    return settled.logical_or_(rising.logical_and_(bottom < t0))


def _nearest_theta(x1: torch.Tensor, x2: torch.Tensor, b: float, t0: float, t1: float) -> torch.Tensor:
    """The parameter ``θ`` of a global nearest point of ``γ`` for each planar point (float64).

    The bulk work (polar coordinates, endpoints, the primary window, the screen of
    fact 4) runs over chunks that keep its working vectors in cache, with no gathers.
    The points the screen flags (an endpoint or another window may be nearer, the
    back half-turn, no candidate from the primary window) are a few per cent; they
    are handled after the loop, batched over all chunks, as a solve's cost there is
    mostly per call.
    """
    n = x1.shape[0]
    dev = x1.device
    rho, phi, best_g, best_t = (torch.empty(n, dtype=torch.float64, device=dev) for _ in range(4))
    e0 = (b * t0 * math.cos(t0), b * t0 * math.sin(t0))
    e1 = (b * t1 * math.cos(t1), b * t1 * math.sin(t1))
    t_back = min(t1, t0 + math.pi)
    rho_f = math.inf if t1 - t0 < 1.5 * math.pi else b * _HALF_PI * (1.0 + math.pi / (4.0 * t0))
    beta = b * math.pi**2 / (4.0 * t0)  # b²/κ₀ = β/ρ (fact 4)
    flagged = []
    for i in range(0, n, _CHUNK):
        sl = slice(i, i + _CHUNK)
        a1, a2 = x1[sl].contiguous(), x2[sl].contiguous()
        rho2 = torch.mul(a1, a1).addcmul_(a2, a2)
        # ρ = ρ² / ρ: rsqrt is twice as fast as sqrt here; the floor keeps ρ = 0 at 0.
        r = torch.mul(rho2, torch.clamp(rho2, min=1e-300).rsqrt_(), out=rho[sl])
        p = torch.atan2(a2, a1, out=phi[sl])
        r_over_b = r if b == 1.0 else r / b
        # Primary: the front half-window whose centre is nearest ρ/b (fact 4).
        centre = _nearest_window(r_over_b, p).mul_(_TWO_PI).add_(p)
        theta, g, _ = _front_candidates(r, centre, b, t0, t1)
        # Endpoints are always candidates. Where one is nearest, the point is flagged
        # and θ holds −g instead (≤ 0: −inf if the window gave no candidate), which
        # costs less than picking θ₀ or θ₁ for every point.
        g0 = torch.sub(a1, e0[0]).square_().add_(torch.sub(a2, e0[1]).square_())
        end_g = torch.sub(a1, e1[0]).square_().add_(torch.sub(a2, e1[1]).square_())
        torch.minimum(g0, end_g, out=end_g)
        root_best = g < end_g
        torch.where(root_best, theta, g.neg(), out=best_t[sl])
        best = torch.minimum(g, end_g, out=best_g[sl])
        # Screen (fact 4): another window's centre is at least gap = 2π − |ρ/b − centre|
        # from ρ/b; it can hold a better point only if gap ≤ w√(1 + β/ρ) (w = √best/b),
        # tested squared.
        gap = torch.sub(r_over_b, centre).abs_().neg_().add_(_TWO_PI).square_()
        wb = best if b == 1.0 else best / (b * b)
        need = torch.reciprocal(r).mul_(beta).add_(1.0).mul_(wb) >= gap
        need.logical_or_(r <= rho_f).logical_or_(root_best.logical_not_())
        flagged.append(torch.nonzero(need).squeeze(1).add_(i))
    sub = torch.cat(flagged) if flagged else best_t.new_empty(0, dtype=torch.long)
    if sub.numel() == 0:
        return best_t
    x1_sub, x2_sub, r_sub, p_sub = (v.index_select(0, sub) for v in (x1, x2, rho, phi))
    k_near = _nearest_window(r_sub if b == 1.0 else r_sub / b, p_sub)

    def gather(pos, *values):
        return (v.index_select(0, pos) for v in values)

    def consider(pos, theta, g=None):
        """Keep ``θ`` for the flagged points ``sub[pos]`` where ``γ(θ)`` is closer."""
        if g is None:
            r = b * theta
            a1, a2 = gather(pos, x1_sub, x2_sub)
            g = (a1 - r * torch.cos(theta)).square_().add_((a2 - r * torch.sin(theta)).square_())
        idx = sub.index_select(0, pos)
        better = torch.nonzero(g < best_g.index_select(0, idx)).squeeze(1)
        if better.numel():
            # One window per point per call: the indices are distinct, scatter is safe.
            sel = idx.index_select(0, better)
            best_g.index_copy_(0, sel, g.index_select(0, better))
            best_t.index_copy_(0, sel, theta.index_select(0, better))

    def settle(pos, k):
        """The general path for windows ``k`` of the points ``sub[pos]``: brackets, safeguards."""
        centre = p_sub.index_select(0, pos) + _TWO_PI * k
        lo = torch.clamp(centre - _HALF_PI, min=t0)
        hi = torch.clamp(centre + _HALF_PI, max=t1)
        valid = torch.nonzero(lo < hi).squeeze(1)
        pos, k, centre, lo, hi = (v.index_select(0, valid) for v in (pos, k, centre, lo, hi))
        if pos.numel():
            a1, a2, r = gather(pos, x1_sub, x2_sub, r_sub)
            theta, found = _front_window_min(a1, a2, r, lo, hi, centre, b)
            j = torch.nonzero(found).squeeze(1)
            consider(pos.index_select(0, j), theta.index_select(0, j))

    def solve(pos, k, iterations):
        """Windows ``k`` of the points ``sub[pos]``, elementwise, then ``settle`` for the rest.

        Windows that ``_settled`` rules out are skipped before any iteration.
        """
        a1, a2, p = gather(pos, x1_sub, x2_sub, p_sub)
        open_ = torch.nonzero(~_settled(a1, a2, p.add_(k, alpha=_TWO_PI), b, t0, t1)).squeeze(1)
        pos, k, centre = (v.index_select(0, open_) for v in (pos, k, p))
        theta, g, inside = _front_candidates(r_sub.index_select(0, pos), centre, b, t0, t1, iterations)
        consider(pos, theta, g)
        j = torch.nonzero(~inside).squeeze(1)
        if j.numel():
            settle(pos.index_select(0, j), k.index_select(0, j))

    # Endpoints first, then the primary window of the points where the bulk solve
    # found no candidate (more iterations, then the general path).
    marker = best_t.index_select(0, sub)
    lost = torch.nonzero(marker <= 0).squeeze(1)
    if lost.numel():
        a1, a2 = gather(lost, x1_sub, x2_sub)
        g0 = (a1 - e0[0]).square_().add_((a2 - e0[1]).square_())
        g1 = (a1 - e1[0]).square_().add_((a2 - e1[1]).square_())
        ends = torch.full_like(g0, t1).masked_fill_(g0 <= g1, t0)  # (where() with scalars is float32)
        best_t.index_copy_(0, sub.index_select(0, lost), ends)
        redo = lost.index_select(0, torch.nonzero(marker.index_select(0, lost) == -math.inf).squeeze(1))
        if redo.numel():
            solve(redo, k_near.index_select(0, redo), iterations=3)
    # Other windows, bounded with the best so far: every half-window whose centre is
    # within hw of ρ/b and whose θ-range meets [θ₀, θ₁]. A loop over the offset from
    # the lowest index: full-size masks per window index cost more.
    w = best_g.index_select(0, sub).sqrt_().div_(b)
    hw = torch.minimum(w + _HALF_PI, w * torch.sqrt(1.0 + beta / r_sub))
    k_lo = torch.ceil((torch.clamp(r_sub / b - hw, min=t0 - _HALF_PI) - p_sub) / _TWO_PI)
    k_hi = torch.floor((torch.clamp(r_sub / b + hw, max=t1 + _HALF_PI) - p_sub) / _TWO_PI)
    span = k_hi - k_lo
    for j in range(int(span.max()) + 1):
        k = k_lo + j
        pos = torch.nonzero((k <= k_hi) & (k != k_near)).squeeze(1)
        if pos.numel():
            solve(pos, k.index_select(0, pos), iterations=1)
    # Back half-windows (fact 3): only the first half-turn, only near the centre.
    gap = b * _interval_gap(r_sub / b, t0, t_back)
    pos = torch.nonzero((r_sub <= rho_f) & (gap * gap < best_g.index_select(0, sub))).squeeze(1)
    if pos.numel():
        a1, a2 = gather(pos, x1_sub, x2_sub)
        consider(pos, _grid_search(a1, a2, b, t0, t_back))
    return best_t


def _interval_gap(r: torch.Tensor, lo, hi) -> torch.Tensor:
    """Distance from ``r`` to the interval ``[lo, hi]``."""
    return torch.clamp(lo - r, min=0.0) + torch.clamp(r - hi, min=0.0)


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

    def _project_planar(self, x: torch.Tensor, cols: tuple[int, int], out: torch.Tensor) -> None:
        """Write the nearest point of the planar points ``x[:, cols]`` into ``out[:, cols]``."""
        x64 = x.to(torch.float64)
        theta = _nearest_theta(x64[:, cols[0]], x64[:, cols[1]], self.scale, self.theta_min, self.theta_max)
        for sl in row_blocks(theta):
            t = theta[sl]
            r = self.scale * t
            out[sl, cols[0]] = torch.cos(t).mul_(r)
            out[sl, cols[1]] = t.sin_().mul_(r)

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
        p = torch.empty_like(x, memory_format=torch.contiguous_format)
        self._project_planar(x, (0, 1), p)
        return p

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
        p = torch.empty_like(x, memory_format=torch.contiguous_format)
        self.spiral._project_planar(x, (0, 2), p)
        torch.clamp(x[:, 1], min=0.0, max=self.height, out=p[:, 1])
        return p

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
