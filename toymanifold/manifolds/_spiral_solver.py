"""Global nearest points on the Archimedean spiral ``γ(θ) = bθ (cos θ, sin θ)``, ``θ ∈ [θ₀, θ₁]``.

The solver behind :class:`~toymanifold.Spiral` and :class:`~toymanifold.SwissRoll`
(THEORY §1), with the proof that its candidates contain a global nearest point.

Candidates
----------
For a point ``x ≠ 0`` with polar angle ``φ`` and radius ``ρ``, write ``ψ = θ − φ`` and
``g(θ) = ‖x − γ(θ)‖²``. Up to the factor ``2b``, ``g'(θ) = h(θ)`` with

    h(θ) = b θ − u − θ v,   h'(θ) = b − 2v + θ u,   h''(θ) = 3u + θ v,
    u = ⟨x, (cos θ, sin θ)⟩ = ρ cos ψ,   v = ⟨x, (−sin θ, cos θ)⟩ = −ρ sin ψ.

(``g' = −2⟨x − γ, γ'⟩`` with ``γ' = b(cos θ, sin θ) + bθ(−sin θ, cos θ)`` and
``⟨γ, γ'⟩ = b²θ``; ``u' = v`` and ``v' = −u``.) The nearest point is an endpoint
``θ₀``/``θ₁`` or an interior local minimum (``h = 0``, ``h' ≥ 0``). Facts used (all for
``θ > 0``), by the quarter of the turn ``ψ`` lies in (mod 2π):

1. *Front half-windows* ``ψ ∈ [−π/2, π/2]``: ``h'`` is increasing on ``[−π/2, 0]``
   (``d h'/dψ = ρ (3 cos ψ − θ sin ψ) ≥ 0`` there) and ``h' ≥ b > 0`` on ``[0, π/2]``,
   so ``h`` decreases then increases: ``g`` has at most one interior local minimum per
   half-window. It is found by safeguarded Halley iteration on ``h`` in a sign
   bracket; if ``h ≥ 0`` at the left end, the bracket starts at the minimiser of ``h``
   (the root of the monotone ``h'``, found the same way).
2. ``ψ ∈ [π/2, π]``: ``u ≤ 0`` and ``v ≤ 0``, so ``h ≥ b θ > 0``: no critical point.
3. ``ψ ∈ [π, 3π/2]``: ``u ≤ 0 ≤ v``. At a root of ``h``, ``θ v = bθ + |u| ≥ bθ``, so
   ``v ≥ b`` and ``h' = b − 2v − θ|u| ≤ −b < 0``: every critical point of ``g`` there
   is a strict local maximum, never a minimum.

So the front half-windows and the two endpoints hold every candidate: the back
half-turns need no search at all.

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

Far points
----------
For ``ρ > _FAR·bθ₁`` those squared distances agree in more leading digits the
farther ``x`` is (beyond ``ρ ≈ bθ₁/ε`` they are all equal in float64, and beyond
1e154 they overflow), so such points are solved apart (``_far_theta``): every front
half-window meeting ``[θ₀, θ₁]`` (a few) and both endpoints, compared by
``(g − ρ²)/ρ = bθ (bθ/ρ − 2⟨x/ρ, (cos θ, sin θ)⟩)``, which has no ``ρ²`` to cancel or
overflow. The roots of ``h`` are found for ``x`` scaled down to at most
``ρ′ = 1e20·bθ₁``: they solve ``θ sin ψ − cos ψ = −bθ/ρ``, whose right side moves by
less than ``1e-20`` in that, far below the rounding of ``θ``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["nearest_theta", "theta_with_gradient"]

_TWO_PI = 2.0 * math.pi
_HALF_PI = 0.5 * math.pi
_CHUNK = 1 << 16  # points per bulk chunk: its working vectors stay in cache
_FAR = 8.0  # points beyond ρ = _FAR·bθ₁ take the far-point path
_FAR_SCALE = 1e20  # ... solved for x scaled down to at most ρ′ = _FAR_SCALE·bθ₁


def nearest_theta(x1: torch.Tensor, x2: torch.Tensor, b: float, t0: float, t1: float) -> torch.Tensor:
    """The parameter ``θ`` of a global nearest point of ``γ`` for each planar point (float64)."""
    far = torch.hypot(x1, x2) > _FAR * b * t1
    if not bool(far.any()):
        return _near_theta(x1, x2, b, t0, t1)
    theta = torch.empty_like(x1)
    near = ~far
    theta[near] = _near_theta(x1[near], x2[near], b, t0, t1)
    theta[far] = _far_theta(x1[far], x2[far], b, t0, t1)
    return theta


def theta_with_gradient(theta: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, b: float, t0: float, t1: float):
    """``theta`` (unchanged in value) carrying the derivative of the nearest parameter ``θ*(x)``.

    At an interior minimiser ``h(θ*(x), x) = 0`` with ``h' > 0``, so by the implicit
    function theorem ``dθ*/dx = −∂ₓh/h' = ((cos θ, sin θ) + θ(−sin θ, cos θ))/h'``
    (and ``dproj/dx = γ'(θ) dθ*/dx``, the tangent projector for ``x`` on the curve).
    It is attached as ``θ − (s − s.detach())`` with ``s = h(θ, x)/h'(θ)``: the value is
    exactly ``θ``, the derivative that of ``−s``. At an endpoint ``θ*`` is locally
    constant and gets no derivative.
    """
    t = theta.detach()
    h, hp, _ = _h3(t, x1, x2, b)
    hp = hp.detach()
    interior = (t > t0) & (t < t1) & (hp > 0)
    step = h / torch.where(interior, hp, 1.0)
    return t - torch.where(interior, step - step.detach(), 0.0)


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


def _near_theta(x1: torch.Tensor, x2: torch.Tensor, b: float, t0: float, t1: float) -> torch.Tensor:
    """``θ`` of a global nearest point for planar points within ``_FAR·bθ₁`` of the centre (float64).

    The bulk work (polar coordinates, endpoints, the primary window, the screen of
    fact 4) runs over chunks that keep its working vectors in cache, with no gathers.
    The points the screen flags (an endpoint or another window may be nearer, no
    candidate from the primary window) are a few per cent; they are handled after the
    loop, batched over all chunks, as a solve's cost there is mostly per call.
    """
    n = x1.shape[0]
    dev = x1.device
    rho, phi, best_g, best_t = (torch.empty(n, dtype=torch.float64, device=dev) for _ in range(4))
    e0 = (b * t0 * math.cos(t0), b * t0 * math.sin(t0))
    e1 = (b * t1 * math.cos(t1), b * t1 * math.sin(t1))
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
        need.logical_or_(root_best.logical_not_())
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
    return best_t


def _far_theta(x1: torch.Tensor, x2: torch.Tensor, b: float, t0: float, t1: float) -> torch.Tensor:
    """``θ`` of a global nearest point for planar points far from the curve (module docstring).

    Candidates: both endpoints and the interior local minimum of every front
    half-window (facts 1–3), compared by ``(g − ρ²)/ρ``.
    """
    # The direction x/ρ from x scaled by its largest entry m (ρ itself overflows
    # beyond 1.3e308, where only bθ/ρ → 0 uses it).
    m = torch.maximum(x1.abs(), x2.abs())
    norm = torch.hypot(x1 / m, x2 / m)
    ux, uy = x1 / m / norm, x2 / m / norm
    rho = m * norm
    phi = torch.atan2(x2, x1)
    r = torch.clamp(rho, max=_FAR_SCALE * b * t1)
    y1, y2 = ux * r, uy * r
    every = torch.arange(rho.shape[0], device=rho.device)
    best_t = torch.full_like(rho, t0)
    best = torch.full_like(rho, math.inf)

    def consider(i, theta):
        """Keep ``θ`` for the points ``i`` where ``(g − ρ²)/ρ`` is smaller."""
        s = b * theta * (b * theta / rho[i] - 2.0 * (ux[i] * torch.cos(theta) + uy[i] * torch.sin(theta)))
        keep = s < best[i]
        best_t[i[keep]] = theta[keep]
        best[i[keep]] = s[keep]

    consider(every, torch.full_like(rho, t0))
    consider(every, torch.full_like(rho, t1))
    k_lo = torch.ceil((t0 - _HALF_PI - phi) / _TWO_PI)
    k_hi = torch.floor((t1 + _HALF_PI - phi) / _TWO_PI)
    for j in range(int((k_hi - k_lo).max()) + 1 if rho.numel() else 0):
        centre = phi + _TWO_PI * (k_lo + j)
        lo, hi = torch.clamp(centre - _HALF_PI, min=t0), torch.clamp(centre + _HALF_PI, max=t1)
        i = torch.nonzero(lo < hi).squeeze(1)
        theta, found = _front_window_min(y1[i], y2[i], r[i], lo[i], hi[i], centre[i], b)
        consider(i[found], theta[found])
    return best_t
