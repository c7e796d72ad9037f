"""``check_manifold``: the properties every built-in family is held to, on any manifold (THEORY §1, §6)."""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import torch
from hypothesis import strategies as st

from ..manifolds import Manifold
from ..validation import as_manifold, check_positive
from ._machinery import (
    _EPS64,
    _F64,
    _FRACTIONS,
    _HALVINGS,
    _NUMS,
    _SEEDS,
    _TANGENT_SLOPE,
    ORACLE_RTOL,
    ORACLE_RTOL32,
    _distance,
    _expect_tensor,
    _fail_rows,
    _fmt,
    _Geometry,
    _norm,
    _project,
    _PropertyFailure,
    _run_search,
    _search_settings,
    _tangent_basis,
)
from .strategies import _unit_rows


def _samples_on_K(g: _Geometry, data) -> None:
    num = data.draw(_NUMS, label="num")
    seed = data.draw(_SEEDS, label="seed")
    q = g.K.sample(num, generator=seed)
    _expect_tensor(q, f"sample({num})", (num, g.n), _F64, None)
    again = g.K.sample(num, generator=torch.Generator().manual_seed(seed))
    if not (isinstance(again, torch.Tensor) and torch.equal(again, q)):
        raise _PropertyFailure(
            f"sample({num}, generator={seed}) and sample with a Generator seeded {seed} differ: "
            f"{_fmt(q)} vs {_fmt(again)}"
        )
    d = _distance(g, q)
    tol = g.tol(q)
    _fail_rows(
        ~(d <= tol),
        d / tol,
        lambda i: f"a sample q = {_fmt(q[i])} is not on K: distance(q) = {_fmt(d[i])} > tolerance {_fmt(tol[i])}",
    )


def _project_on_K(g: _Geometry, data) -> None:
    x = data.draw(g.any_points, label="x")
    p = _project(g, x)
    dp = _distance(g, p)
    tol = g.tol(x, p)
    _fail_rows(
        ~(dp <= tol),
        dp / tol,
        lambda i: (
            f"project(x) is not on K: x = {_fmt(x[i])}, p = project(x) = {_fmt(p[i])}, "
            f"distance(p) = {_fmt(dp[i])} > tolerance {_fmt(tol[i])}"
        ),
    )
    pp = _project(g, p)
    move = _norm(pp - p)
    _fail_rows(
        ~(move <= tol),
        move / tol,
        lambda i: (
            f"project is not idempotent: x = {_fmt(x[i])}, p = project(x) = {_fmt(p[i])}, "
            f"project(p) = {_fmt(pp[i])}, ‖project(p) − p‖ = {_fmt(move[i])} > tolerance {_fmt(tol[i])}"
        ),
    )


def _distance_is_minimum(g: _Geometry, data) -> None:
    x = data.draw(g.any_points, label="x")
    seed = data.draw(_SEEDS, label="seed")
    d = _distance(g, x)
    q = torch.cat([g.cloud, g.K.sample(64, generator=seed)])
    gaps = _norm(x[:, None, :] - q[None, :, :])  # direct differences: no cancellation
    nearest, j = gaps.min(dim=1)
    tol = g.tol(x, q[j])
    _fail_rows(~(d >= 0), -d, lambda i: f"distance(x) is negative: x = {_fmt(x[i])}, distance(x) = {_fmt(d[i])}")
    _fail_rows(
        ~(d <= nearest + tol),
        d - nearest,
        lambda i: (
            f"distance(x) is not the minimum over K: x = {_fmt(x[i])}, distance(x) = {_fmt(d[i])}, "
            f"but q = {_fmt(q[j[i]])} (a sample of K) has ‖x − q‖ = {_fmt(nearest[i])} (tolerance {_fmt(tol[i])})"
        ),
    )


def _distance_matches_project(g: _Geometry, data) -> None:
    x = data.draw(g.any_points, label="x")
    p = _project(g, x)
    d = _distance(g, x)
    both = g.K.project_with_distance(x)
    if not (isinstance(both, tuple) and len(both) == 2):
        raise _PropertyFailure(f"project_with_distance(x) returned {type(both).__name__}, not a pair (p, d)")
    p2, d2 = both
    _expect_tensor(p2, "project_with_distance(x)[0]", tuple(x.shape), x.dtype, x)
    _expect_tensor(d2, "project_with_distance(x)[1]", tuple(x.shape[:1]), x.dtype, x)
    tol = g.tol(x, p)
    for what, value, reference in (
        ("distance(x) ≠ ‖x − project(x)‖", d, _norm(x - p)),
        ("project_with_distance(x): d ≠ ‖x − p‖", d2, _norm(x - p2)),
        ("project_with_distance(x)[1] ≠ distance(x)", d2, d),
        ("project_with_distance(x)[0] is not on K: distance(p) ≠ 0", _distance(g, p2), torch.zeros_like(d)),
    ):
        gap = (value - reference).abs()
        _fail_rows(
            ~(gap <= tol),
            gap / tol,
            lambda i, what=what, value=value, reference=reference: (
                f"{what}: x = {_fmt(x[i])}, "
                f"{_fmt(value[i])} vs {_fmt(reference[i])} (project(x) = {_fmt(p[i])}, tolerance {_fmt(tol[i])})"
            ),
        )


def _distance_1_lipschitz(g: _Geometry, data) -> None:
    x = data.draw(g.any_points, label="x")
    far = data.draw(g.far_points, label="y_far")[: x.shape[0]]
    x = x[: far.shape[0]]
    step = 2.0 ** -data.draw(_HALVINGS, label="-log2 step")
    y = x + step * (far - x)  # pairs at every scale, close ones included
    dx, dy = _distance(g, x), _distance(g, y)
    gap = (dx - dy).abs()
    bound = _norm(x - y)
    tol = g.tol(x, y)
    _fail_rows(
        ~(gap <= bound + tol),
        gap - bound,
        lambda i: (
            f"distance is not 1-Lipschitz: x = {_fmt(x[i])}, y = {_fmt(y[i])}, "
            f"|distance(x) − distance(y)| = |{_fmt(dx[i])} − {_fmt(dy[i])}| > ‖x − y‖ = {_fmt(bound[i])} "
            f"(tolerance {_fmt(tol[i])})"
        ),
    )


def _orthonormal_tol(n: int) -> float:
    """Entries of ``T Tᵀ − I`` for rows that are orthonormal to rounding: length-``n`` dot products."""
    return 4.0 * (n + 4) * _EPS64


def _frames(g: _Geometry, data, points: st.SearchStrategy[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Drawn points ``x``, their projections ``p`` and ``tangent_basis(p)``, checked and in float64."""
    x = data.draw(points, label="x")
    p = _project(g, x).to(_F64)
    return x, p, _tangent_basis(g, p).to(_F64)


def _tangent_basis_orthonormal(g: _Geometry, data) -> None:
    _, p, T = _frames(g, data, g.any_points)
    if not g.d:
        return
    gram = T @ T.transpose(1, 2) - torch.eye(g.d, dtype=_F64)
    err = gram.abs().amax(dim=(1, 2))
    tol = _orthonormal_tol(g.n)
    _fail_rows(
        ~(err <= tol),
        err,
        lambda i: (
            f"tangent_basis(p) rows are not orthonormal: p = {_fmt(p[i])}, T = {_fmt(T[i])}, "
            f"max |T Tᵀ − I| = {_fmt(err[i])} > {tol!r}"
        ),
    )


def _leaves(g: _Geometry, p: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``distance(p ± h t)`` for unit directions ``t`` (rows matching ``p``) and the first-order threshold.

    ``K`` continues from ``p`` along ``t`` iff ``distance(p + h t) ≤ δ h`` (up to rounding).
    """
    h = g.step
    both = torch.cat([p + h * directions, p - h * directions])
    d = g.K.distance(both).to(_F64)
    threshold = _TANGENT_SLOPE * h + g.tol(p)
    return d.reshape(2, p.shape[0]), threshold


def _tangent_basis_is_tangent(g: _Geometry, data) -> None:
    if not g.d:
        return
    _, p, T = _frames(g, data, g.any_points)
    B = p.shape[0]
    rows = p.repeat_interleave(g.d, dim=0)
    d, threshold = _leaves(g, rows, T.reshape(B * g.d, g.n))
    lowest = d.amin(dim=0)
    _fail_rows(
        ~(lowest <= threshold),
        lowest / threshold,
        lambda i: (
            f"tangent_basis(p) has a row t that is not tangent to K: p = {_fmt(rows[i])}, "
            f"t = {_fmt(T.reshape(B * g.d, g.n)[i])}; K does not continue along ±t: distance(p + h t) = "
            f"{_fmt(d[0, i])}, distance(p − h t) = {_fmt(d[1, i])} > {_fmt(threshold[i])} with h = {g.step!r}"
        ),
    )


def _residual_normal_to_tangent(g: _Geometry, data) -> None:
    if not g.d:
        return
    x, p, T = _frames(g, data, g.off_points)
    r = x.to(_F64) - p
    dist = _norm(r)
    w = torch.einsum("bdn,bn->bd", T, r)
    size = _norm(w)
    # Errors: p (tol) enters r directly and turns T by tol/reach, met at distance dist; T's
    # own rounding meets r in a length-n dot product.
    curvature = dist / g.reach if math.isfinite(g.reach) else torch.zeros_like(dist)
    tol = g.tol(x, p) * (1.0 + curvature) + _orthonormal_tol(g.n) * dist
    tangential = ~(size <= tol)
    if bool(tangential.any()):
        # At a boundary point the residual may point out of K along the tangent space (a
        # spiral's end, a strip's edge): K then continues from p along −w but not along +w.
        u = torch.einsum("bd,bdn->bn", w / torch.where(size > 0, size, 1.0)[:, None], T)
        d, threshold = _leaves(g, p, u)
        boundary = (d[0] > threshold) & (d[1] <= threshold)
        _fail_rows(
            tangential & ~boundary,
            size / tol,
            lambda i: (
                f"x − project(x) is not orthogonal to tangent_basis(project(x)): x = {_fmt(x[i])}, "
                f"p = {_fmt(p[i])}, T = {_fmt(T[i])}, T (x − p) = {_fmt(w[i])}, norm {_fmt(size[i])} > tolerance "
                f"{_fmt(tol[i])} (and p is not a boundary point with x − p pointing out of K)"
            ),
        )


def _reach_not_contradicted(g: _Geometry, data) -> None:
    K = g.K
    finite = math.isfinite(g.reach)
    span = g.reach if finite else 10.0 * g.length  # offsets tested: below the reach, or anywhere
    seed = data.draw(_SEEDS, label="seed")
    fy = data.draw(_FRACTIONS, label="‖y − q‖ / reach")
    f = data.draw(_FRACTIONS, label="t / reach")
    B = min(fy.shape[0], f.shape[0])
    # y at 1 % to 99 % of the reach from a sample: never on K, so every row gives a normal.
    y = K.sample(B, generator=seed) + ((0.01 + 0.98 * fy[:B]) * span)[:, None] * _unit_rows(B, g.n, seed + 1)
    p = K.project(y)
    offset = _norm(y - p)
    ok = offset > 1e-6 * g.length
    y, p, offset, f = y[ok], p[ok], offset[ok], f[:B][ok]
    if y.shape[0]:
        t = f * span
        x = p + (t / offset)[:, None] * (y - p)
        q, dq = K.project_with_distance(x)
        # p's error turns ν by tol/‖y − p‖, which moves x by t times that; the projection is
        # 1/(1 − t/reach)-Lipschitz there.
        tol = g.tol(x, p) * (1.0 + t / offset)
        cond = 1.0 / (1.0 - f) if finite else torch.ones_like(f)
        off = _norm(q - p)
        _fail_rows(
            ~(off <= tol * cond) | ~((dq - t).abs() <= tol),
            off / (tol * cond),
            lambda i: (
                f"the declared reach {g.reach!r} is contradicted: p = project(y) = {_fmt(p[i])} for "
                f"y = {_fmt(y[i])}, so p must be the nearest point of x = p + t (y − p)/‖y − p‖ = {_fmt(x[i])} "
                f"for every t < reach; with t = {_fmt(t[i])} got project(x) = {_fmt(q[i])} at distance {_fmt(dq[i])}"
            ),
        )

    # Federer: within distance q < reach the projection is τ/(τ − q)-Lipschitz (1-Lipschitz if convex).
    fx = data.draw(_FRACTIONS, label="dist(x) / reach")
    fy = data.draw(_FRACTIONS, label="‖y − x‖ / room")
    B = min(fx.shape[0], fy.shape[0])
    fx, fy = fx[:B], fy[:B]
    x = K.sample(B, generator=seed + 2) + (fx * span)[:, None] * _unit_rows(B, g.n, seed + 3)
    y = x + (fy * (1.0 - fx) * span)[:, None] * _unit_rows(B, g.n, seed + 4)
    px, dx = K.project_with_distance(x)
    py, dy = K.project_with_distance(y)
    tol = g.tol(x, px) + g.tol(y, py)
    if finite:
        q = torch.maximum(dx, dy) + tol
        lip = g.reach / (g.reach - q).clamp_min(0.0)  # inf (no constraint) if rounding reaches the reach
    else:
        lip = torch.ones_like(dx)
    gap, step = _norm(px - py), _norm(x - y)
    _fail_rows(
        ~(gap <= lip * (step + tol)),
        gap / (lip * (step + tol)),
        lambda i: (
            f"the declared reach {g.reach!r} is contradicted: x = {_fmt(x[i])} and y = {_fmt(y[i])} lie "
            f"within {_fmt(torch.maximum(dx, dy)[i])} < reach of K, so ‖project(x) − project(y)‖ ≤ "
            f"{_fmt(lip[i])} ‖x − y‖ = {_fmt(lip[i] * step[i])}; got project(x) = {_fmt(px[i])}, "
            f"project(y) = {_fmt(py[i])}, {_fmt(gap[i])} apart"
        ),
    )


def _dtype_preserved(g: _Geometry, data) -> None:
    x = data.draw(g.near_points, label="x").to(torch.float32)
    p = _project(g, x)
    _distance(g, x)
    _tangent_basis(g, p)
    # Against the float64 oracle at the same (float32) point, within 0.9 reach of K where the
    # projection is at most 10-Lipschitz (THEORY §1): float32 rounding, amplified by that.
    x64 = x.to(_F64)
    ref, dist = g.K.project_with_distance(x64)
    cond = 1.0 / (1.0 - dist / g.reach).clamp_min(0.1) if math.isfinite(g.reach) else torch.ones_like(dist)
    tol = ORACLE_RTOL32 * (g.size + _norm(x64) + _norm(ref)) * cond
    gap = _norm(p.to(_F64) - ref)
    _fail_rows(
        ~(gap <= tol),
        gap / tol,
        lambda i: (
            f"project of float32 input disagrees with the float64 result: x = {_fmt(x64[i])}, "
            f"float32 {_fmt(p[i])} vs float64 {_fmt(ref[i])}, {_fmt(gap[i])} apart > tolerance {_fmt(tol[i])}"
        ),
    )


def _declared_attributes(K: Manifold) -> str | None:
    n, d = getattr(K, "ambient_dim", None), getattr(K, "intrinsic_dim", None)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        return f"ambient_dim must be an int >= 1, got {n!r}"
    if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= n:
        return f"intrinsic_dim must be an int in [0, ambient_dim = {n}], got {d!r}"
    try:
        reach, bound = float(K.reach), float(K.diameter_bound)
    except (TypeError, ValueError) as exc:
        return f"reach and diameter_bound must be numbers: {exc}"
    if not reach > 0:
        return f"reach must be > 0 (math.inf for a convex set), got {reach!r}"
    if not bound >= 0:
        return f"diameter_bound must be >= 0 (math.inf if unbounded), got {bound!r}"
    return None


def _bad_input(K: Manifold) -> str | None:
    n = K.ambient_dim
    cases = [
        (method, "x", bad)
        for method in ("project", "distance", "project_with_distance")
        for bad in (np.zeros((3, n + 1)), np.zeros(n), np.zeros((2, n, 1)))
    ]
    for value in (math.nan, math.inf, -math.inf):
        for column in range(n):  # oracles that detect NaN in their own pass may loop over columns
            bad = np.ones((2, n))
            bad[1, column] = value
            cases += [(method, "x", bad) for method in ("project", "distance", "project_with_distance")]
            cases.append(("tangent_basis", "p", bad))
    cases.append(("tangent_basis", "p", np.zeros((2, n + 1))))
    cases.append(("sample", "num", -1))
    for method, name, bad in cases:
        shown = f"{method}({_fmt(torch.as_tensor(bad))})" if method != "sample" else f"sample({bad})"
        try:
            out = getattr(K, method)(bad)
        except ValueError as exc:
            if not re.search(rf"\b{name}\b", str(exc)):
                return f"{shown} raised ValueError({str(exc)!r}), which does not name the argument {name!r}"
            continue
        except Exception as exc:
            return f"{shown} raised {type(exc).__name__}({exc}) instead of a ValueError naming {name!r}"
        got = _fmt(out) if isinstance(out, torch.Tensor) else type(out).__name__
        return f"{shown} returned {got} instead of raising ValueError"
    return None


def _empty_batch(K: Manifold) -> str | None:
    n, d = K.ambient_dim, K.intrinsic_dim
    empty = torch.zeros(0, n, dtype=_F64)
    try:
        p, dist = K.project_with_distance(empty)
        shapes = {
            "sample(0)": (K.sample(0).shape, (0, n)),
            "project(x)": (K.project(empty).shape, (0, n)),
            "distance(x)": (K.distance(empty).shape, (0,)),
            "project_with_distance(x)": ((*p.shape, *dist.shape), (0, n, 0)),
            "tangent_basis(p)": (K.tangent_basis(empty).shape, (0, d, n)),
        }
    except Exception as exc:
        return f"an empty batch raised {type(exc).__name__}: {exc}"
    for what, (got, expected) in shapes.items():
        if tuple(got) != expected:
            return f"{what} of an empty batch has shape {tuple(got)}, expected {expected}"
    return None


#: Every property :func:`check_manifold` runs, in order, with what it checks.
MANIFOLD_PROPERTIES = {
    "bad_input": "NaN/inf or wrongly shaped points raise ValueError naming the argument; so does sample(-1)",
    "empty_batch": "empty batches give empty results of the right shapes",
    "samples_on_K": "sample(num, seed) is reproducible, float64 of shape (num, n) and lies on K",
    "project_on_K": "project(x) is finite, keeps shape and dtype, lies on K and is idempotent",
    "distance_is_minimum": "distance(x) ≤ ‖x − q‖ for samples q of K",
    "distance_matches_project": "distance(x) = ‖x − project(x)‖, and project_with_distance agrees",
    "distance_1_lipschitz": "|distance(x) − distance(y)| ≤ ‖x − y‖",
    "tangent_basis_orthonormal": "tangent_basis(p) has d orthonormal rows of length n",
    "tangent_basis_is_tangent": "K continues from p along +t or −t for every row t of tangent_basis(p)",
    "residual_normal_to_tangent": "x − project(x) is orthogonal to tangent_basis(project(x)) (off the boundary)",
    "reach_not_contradicted": "normal offsets below the reach project back; Federer's Lipschitz bound holds",
    "dtype_preserved": "float32 input gives float32 output, close to the float64 result",
}

_SEARCHED = {
    "samples_on_K": _samples_on_K,
    "project_on_K": _project_on_K,
    "distance_is_minimum": _distance_is_minimum,
    "distance_matches_project": _distance_matches_project,
    "distance_1_lipschitz": _distance_1_lipschitz,
    "tangent_basis_orthonormal": _tangent_basis_orthonormal,
    "tangent_basis_is_tangent": _tangent_basis_is_tangent,
    "residual_normal_to_tangent": _residual_normal_to_tangent,
    "reach_not_contradicted": _reach_not_contradicted,
    "dtype_preserved": _dtype_preserved,
}
_DIRECT = {"bad_input": _bad_input, "empty_batch": _empty_batch}


def check_manifold(
    K: Manifold,
    *,
    max_examples: int | None = None,
    seed: int | None = 0,
    settings=None,
    rtol: float = ORACLE_RTOL,
) -> None:
    """Hold a manifold to the contract of the built-in families (THEORY §1, §6); raise if it breaks it.

    Runs every property of :data:`MANIFOLD_PROPERTIES` — the same ones the project's
    own suite holds every built-in family to — searching with Hypothesis for
    counterexamples among points on ``K``, near it (within 0.9 reach), far from it
    (behind ends, between windings, across centres) and at the origin and small
    lattice points (where ``0/0`` bugs live):

    - ``bad_input``, ``empty_batch``: NaN/inf or wrongly shaped input raises a
      ``ValueError`` naming the argument; empty batches work.
    - ``samples_on_K``: ``sample`` is reproducible from its seed and lies on ``K``.
    - ``project_on_K``: ``project`` is finite (also on the medial axis), keeps shape and
      dtype, lands on ``K`` and is idempotent.
    - ``distance_is_minimum``: ``distance(x) ≤ ‖x − q‖`` for 1088 samples ``q`` of ``K``.
    - ``distance_matches_project``: ``distance(x) = ‖x − project(x)‖``, and
      ``project_with_distance`` agrees with both.
    - ``distance_1_lipschitz``: ``|dist_K(x) − dist_K(y)| ≤ ‖x − y‖`` at every scale.
    - ``tangent_basis_orthonormal``: ``tangent_basis(p)`` is ``(B, d, n)`` with ``T Tᵀ = I``.
    - ``tangent_basis_is_tangent``: ``K`` continues from ``p`` along ``+t`` or ``−t`` for
      every row ``t``: ``dist_K(p ± h t) ≤ δ h`` with ``h = 1e-4 L``, ``δ = 0.01``
      (``L`` the reach, or the size if the reach is infinite); a direction at angle
      ``α`` to ``K`` leaves at slope ``sin α``, curvature adds ``h/(2 reach) = 5e-5``.
    - ``residual_normal_to_tangent``: ``T(p)(x − p) = 0`` for ``p = project(x)``, except
      at a boundary point where ``x − p`` points out of ``K`` (``K`` continues along
      ``−w`` but not along ``+w``, ``w`` the tangential part: a spiral's end, a strip's edge).
    - ``reach_not_contradicted``: two necessary conditions of a reach ``τ`` (Federer
      1959, Thm 4.8): for ``p ∈ K``, a unit normal ``ν`` (orthogonal to the tangent
      basis) and ``t < τ``, ``p`` is the nearest point of ``p + tν`` at distance ``t``;
      and for ``x, y`` within distance ``q < τ`` of ``K``,
      ``‖proj(x) − proj(y)‖ ≤ τ/(τ − q) ‖x − y‖`` (``1`` for ``τ = ∞``: ``K`` convex).
      A declared reach that is too large fails one of them (e.g. two nearby points
      with far-apart projections); a smaller one than the truth is always allowed.
    - ``dtype_preserved``: float32 input gives float32 output within float32 rounding
      of the float64 result.

    Tolerances (float64). An oracle that is exact up to rounding computes each value
    from coordinates of size at most ``M = S + Σ ‖point‖`` (``S``: the
    ``diameter_bound``, or the characteristic length if ``K`` is unbounded; the sum runs
    over the points the value is computed from), so its error is a modest multiple of
    ``eps · M``: ``k`` operations give ``k eps M``, and an angle ``θ`` evaluated to
    ``eps θ`` (a spiral's, up to ~40 rad) moves a point by ``θ eps M``; 30 operations
    on such angles give ``2^10 eps M``. Every comparison allows ``rtol · M`` with
    ``rtol = 2^10 eps ≈ 2.3e-13`` by default (:data:`ORACLE_RTOL`; the built-in
    families need at most ``2^4 eps``),
    multiplied by the projection's Lipschitz constant ``1/(1 − t/τ)`` where a nearest
    point at distance ``t < τ`` is compared, and by ``1 + dist/τ`` for the residual
    test (an error ``δ`` in ``p`` turns the tangent space by ``δ/τ``). Orthonormality
    allows ``4 (n + 4) eps`` (length-``n`` dot products of unit rows); float32 output
    ``2^6 eps₃₂ · M`` (:data:`ORACLE_RTOL32`) times the projection's Lipschitz constant
    (≤ 10 within 0.9 reach). Any real geometric error (a wrong branch, an unconverged
    solve, a rotated tangent) is orders of magnitude above these.

    Parameters
    ----------
    K : Manifold
        The manifold to check (a subclass of :class:`toymanifold.Manifold`).
    max_examples : int, optional
        Hypothesis examples per searched property (10 of the 12); by default that of
        ``settings`` (the loaded profile: 60 under the project's ``ci`` profile, 100
        under Hypothesis' default).
    seed : int or None
        Seed of the search, so that the same call runs the same examples on every run.
        ``None`` leaves the randomness to Hypothesis: derandomized under a profile with
        ``derandomize=True`` (the project's ``ci`` profile), fresh otherwise.
    settings : hypothesis.settings, optional
        Settings of the search (e.g. ``settings(max_examples=500)`` to look harder).
        By default the loaded profile's, without example database or deadline.
    rtol : float
        Accuracy demanded of the oracles relative to ``M`` (see Tolerances). Raise it
        for oracles known to be less accurate, e.g. an iterative solve stopped at 1e-10.

    Raises
    ------
    AssertionError
        Naming every property that fails, each with the smallest counterexample
        Hypothesis found (the points and the values computed there).
    TypeError, ValueError
        If ``K`` is not a :class:`~toymanifold.Manifold` or an argument is invalid.

    Examples
    --------
    >>> import toymanifold as tm
    >>> from toymanifold.testing import check_manifold
    >>> check_manifold(tm.Circle(2.0, center=[1.0, 0.0]), max_examples=5)
    """
    K = as_manifold(K, "K")
    rtol = check_positive(rtol, "rtol")
    settings = _search_settings(settings, max_examples)
    problem = _declared_attributes(K)
    if problem is not None:  # nothing else can run on wrong dimensions
        raise AssertionError(f"check_manifold({K!r}): [declared_attributes] {problem}")
    g = _Geometry(K, rtol, seed)
    failures = []
    for name in MANIFOLD_PROPERTIES:
        if name in _DIRECT:
            message = _DIRECT[name](K)
        else:
            message = _run_search(functools.partial(_SEARCHED[name], g), settings, seed)
        if message is not None:
            failures.append(f"[{name}] {message}")
    if failures:
        raise AssertionError(
            f"check_manifold({K!r}): {len(failures)} of {len(MANIFOLD_PROPERTIES)} properties fail\n"
            + "\n".join(failures)
        )
