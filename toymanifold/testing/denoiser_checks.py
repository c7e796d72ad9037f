"""``check_denoiser``: the (η, ν)-approximate projection claim and Lemma 1's one-step bounds (THEORY §2, §3)."""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

from ..manifolds import Manifold
from ..samplers import sample_step
from ..validation import as_manifold, as_tensor, check_eta, check_nu, check_positive
from ._machinery import (
    _BATCH,
    _F64,
    _SEEDS,
    ORACLE_RTOL,
    _fail_rows,
    _fmt,
    _Geometry,
    _name,
    _norm,
    _PropertyFailure,
    _run_search,
    _search_settings,
)
from .strategies import _unit_rows, characteristic_length

# --------------------------------------------------------------------------------------
# Lemma 1 (one implementation, shared with analysis.check_trajectory)
# --------------------------------------------------------------------------------------


def lemma1_bounds(dist, err, beta, eta: float | None = None) -> dict[str, torch.Tensor]:
    """THEORY §3, Lemma 1: bounds on ``d_{t−1} = dist_K(x_{t−1})`` after one DDIM step.

    The step ``x_{t−1} = (1 − β) x_t + β x̂`` starts at distance ``d_t = dist`` with
    ``e_t = ‖x̂ − proj_K(x_t)‖ = err``. For every closed ``K`` and every ``x̂``,
    ``lower = (1 − β) d_t − β e_t ≤ d_{t−1} ≤ (1 − β) d_t + β e_t = upper``.
    With ``eta``, also the η-form, which holds where ``e_t ≤ η d_t``:
    ``eta_lower = (1 − β(1 + η)) d_t ≤ d_{t−1} ≤ (1 − β(1 − η)) d_t = eta_upper``.

    Parameters
    ----------
    dist, err, beta : tensors (broadcast together)
        ``d_t``, ``e_t`` and ``β_t = 1 − σ_{t−1}/σ_t ∈ (0, 1]``.
    eta : float, optional
        The claimed relative projection error ``η``.

    Returns
    -------
    dict
        ``"lower"``, ``"upper"`` and, with ``eta``, ``"eta_lower"``, ``"eta_upper"``.
    """
    bounds = {"lower": (1.0 - beta) * dist - beta * err, "upper": (1.0 - beta) * dist + beta * err}
    if eta is not None:
        bounds["eta_lower"] = (1.0 - beta * (1.0 + eta)) * dist
        bounds["eta_upper"] = (1.0 - beta * (1.0 - eta)) * dist
    return bounds


# --------------------------------------------------------------------------------------
# check_denoiser
# --------------------------------------------------------------------------------------


def _points_at_distance(g: _Geometry, target: torch.Tensor, seed: int, normal: bool) -> torch.Tensor:
    """Points ``x`` with ``dist_K(x) = target`` where the construction reaches it (else closer to ``K``).

    ``y = q + target · u`` from a sample ``q`` of ``K`` along a unit normal at ``q``
    (``normal``) or any unit vector; then ``x = p + λ (y − p)`` with ``p = proj_K(y)``
    and ``λ = min(1, target / dist_K(y))``: ``p`` stays a nearest point of every point of
    that segment, so ``dist_K(x) = λ dist_K(y)`` exactly (THEORY §3, proof of Lemma 1).
    """
    q = g.K.sample(target.shape[0], generator=seed)
    if normal:
        u, ok = g.normal_unit(q, seed + 1)
        u = torch.where(ok[:, None], u, _unit_rows(q.shape[0], g.n, seed + 1))
    else:
        u = _unit_rows(q.shape[0], g.n, seed + 1)
    y = q + target[:, None] * u
    p, d = g.K.project_with_distance(y)
    lam = torch.where(d > target, target / torch.where(d > 0, d, 1.0), torch.ones_like(d))
    return p + lam[:, None] * (y - p)


def _sigma_range(sigmas, K: Manifold) -> list[float]:
    """The noise levels of the claim, sorted; by default ``[1e-3, 1] · L/√n``."""
    if sigmas is None:
        top = characteristic_length(K) / math.sqrt(K.ambient_dim)
        return [1e-3 * top, top]
    s = as_tensor(sigmas, "sigmas", dtype=_F64).reshape(-1)
    if s.numel() == 0 or not bool((s > 0).all()):
        raise ValueError(f"sigmas must hold at least one noise level, all > 0, got {_fmt(s)}")
    return sorted(set(s.tolist()))


def check_denoiser(
    denoiser,
    K: Manifold,
    *,
    eta: float,
    nu: float,
    sigmas=None,
    max_examples: int | None = None,
    seed: int | None = 0,
    settings=None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    rtol: float = ORACLE_RTOL,
) -> float:
    """Test the claim that ``denoiser`` is an (η, ν)-approximate projection on ``K`` (THEORY §2).

    Searches, with Hypothesis, ν-admissible pairs ``(x, σ)`` — ``r = dist_K(x)/(√n σ)``
    in ``[1/ν, ν]``, ``σ`` between the smallest and the largest of ``sigmas`` — for
    the worst relative projection error ``η(x, σ) = ‖x̂0 − proj_K(x)‖ / dist_K(x)``,
    ``x̂0 = x − σ ε(x, σ)``, steering the search towards large errors
    (``hypothesis.target``). Each example draws ``σ`` (one of ``sigmas`` or log-uniform
    between them), up to 8 ratios ``r`` (log-uniform in ``[1/ν, ν]``) and points at
    distance ``r √n σ`` from ``K`` along normals of samples or along any direction, so
    that every point off ``K`` can be drawn.

    From every such point it also takes one DDIM step ``x_{t−1} = x + (σ' − σ) ε``
    (``σ' = (1 − β) σ``, ``β ∈ (0, 1]`` drawn, ``β = 1`` the final step to 0) and checks
    Lemma 1 (THEORY §3, :func:`lemma1_bounds`): with the measured ``e = ‖x̂0 − proj_K(x)‖``,
    which holds for every denoiser (a violation means a wrong oracle: run
    :func:`check_manifold` on ``K``), and its η-form where the claim holds.

    The geometry is float64 and trusted (``K``'s oracles; check them with
    :func:`check_manifold`). ``η(x, σ)`` is measured at the point the model actually
    sees (``x`` rounded to ``dtype``), so rounding of the input is not charged to the
    denoiser; its own rounding is. The claim fails where
    ``η(x, σ) > η + rtol (S + ‖x‖ + σ‖ε‖ + ‖proj_K(x)‖) / dist_K(x)``: the
    allowance is the float64 rounding of ``x − σε − p`` and of the oracle (see
    :func:`check_manifold`, Tolerances; ``S`` the size of ``K``). Lemma 1 is checked with
    ``rtol (S + ‖x‖ + ‖x_{t−1}‖ + σ‖ε‖ + ‖p‖ + ‖p_{t−1}‖)``, plus ``β`` times the claim's
    allowance for the η-form.

    Parameters
    ----------
    denoiser : callable
        ``denoiser(x, sigma) -> eps`` with ``x`` of shape ``(B, n)`` and ``sigma`` a float
        (every :class:`~toymanifold.Denoiser`, a trained network, a closed form).
    K : Manifold
        The data set the claim is about.
    eta : float in [0, 1)
        The claimed ``η``.
    nu : float ≥ 1
        The claimed ``ν``.
    sigmas : array-like, optional
        Noise levels the claim is made for: it is tested for ``σ`` between their
        minimum and maximum (the values themselves included). By default
        ``[1e-3, 1] · L/√n`` with ``L`` the reach (or size) of ``K``: distances from
        ``1e-3 L/ν`` to ``ν L``.
    max_examples, seed, settings
        As in :func:`check_manifold`.
    dtype, device
        Where the denoiser is evaluated (``torch.float32`` for a float32 network; a
        CUDA device for a model there); ``ε`` is brought back to float64 on the CPU.
    rtol : float
        Accuracy of ``K``'s oracles relative to the magnitudes involved (as in
        :func:`check_manifold`).

    Returns
    -------
    float
        The largest ``η(x, σ)`` measured (``≤ eta`` up to the allowance): the measured
        ``η̂(ν)`` of THEORY §2 over the pairs searched.

    Raises
    ------
    AssertionError
        When the claim fails: with the worst point, its ``σ``, ``r`` and ``η(x, σ)``. Also
        when the denoiser returns non-finite or wrongly shaped output (never silently
        dropped), or Lemma 1 fails.
    TypeError, ValueError
        For invalid arguments, or if no ν-admissible pair can be drawn (``K = R^n``).

    Examples
    --------
    >>> import toymanifold as tm
    >>> from toymanifold.testing import check_denoiser
    >>> K = tm.Circle()
    >>> den = tm.PerturbedProjectionDenoiser(K, eta=0.2)
    >>> round(check_denoiser(den, K, eta=0.25, nu=2.0, max_examples=5), 12)
    0.2
    """
    import hypothesis

    K = as_manifold(K, "K")
    if not callable(denoiser):
        raise TypeError(f"denoiser must be callable as denoiser(x, sigma), got {type(denoiser).__name__}")
    eta = check_eta(eta, "eta")
    nu = check_nu(nu, "nu")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    rtol = check_positive(rtol, "rtol")
    levels = _sigma_range(sigmas, K)
    settings = _search_settings(settings, max_examples)
    g = _Geometry(K, rtol, seed)
    root_n = math.sqrt(g.n)
    lo, hi = levels[0], levels[-1]
    sigma_strategy = st.sampled_from(levels)
    if hi > lo:
        between = st.floats(math.log(lo), math.log(hi)).map(lambda t: min(max(math.exp(t), lo), hi))
        sigma_strategy = st.one_of(sigma_strategy, between)
    log_ratios = st.lists(st.floats(-math.log(nu), math.log(nu)), min_size=1, max_size=_BATCH)
    directions = st.booleans()
    steps = st.one_of(st.just(1.0), st.floats(0.0, 1.0, exclude_min=True))
    worst: dict = {"eta": -math.inf}
    violation: dict = {"eta": -math.inf}

    def search(data) -> None:
        sigma = data.draw(sigma_strategy, label="sigma")
        r = torch.tensor(data.draw(log_ratios, label="log r"), dtype=_F64).exp()
        normal = data.draw(directions, label="along normals")
        x = _points_at_distance(g, r * root_n * sigma, data.draw(_SEEDS, label="seed"), normal)
        x_in = x.to(dtype=dtype, device=device)
        x = x_in.to(device="cpu", dtype=_F64)  # the point the model sees
        p, dist = K.project_with_distance(x)
        ratio = dist / (root_n * sigma)
        keep = (ratio >= 1.0 / nu) & (ratio <= nu) & (dist > 0)
        hypothesis.assume(bool(keep.any()))
        x_in, x, p, dist, ratio = x_in[keep.to(x_in.device)], x[keep], p[keep], dist[keep], ratio[keep]

        with torch.no_grad():  # a network's graph is not needed here
            eps = denoiser(x_in, sigma)
        if not isinstance(eps, torch.Tensor) or tuple(eps.shape) != tuple(x_in.shape):
            shape = tuple(eps.shape) if isinstance(eps, torch.Tensor) else type(eps).__name__
            raise _PropertyFailure(
                f"denoiser(x, {sigma!r}) returned {shape}, expected a tensor of shape {tuple(x_in.shape)}"
            )
        eps = eps.detach().to(device="cpu", dtype=_F64)
        finite = torch.isfinite(eps).all(dim=1)
        if not bool(finite.all()):
            i = int(torch.nonzero(~finite)[0, 0])
            raise _PropertyFailure(
                f"denoiser(x, sigma) is not finite at x = {_fmt(x[i])}, sigma = {sigma!r} (r = {_fmt(ratio[i])}): "
                f"eps = {_fmt(eps[i])}"
            )
        err = _norm(x - sigma * eps - p)
        eta_x = err / dist
        allowance = rtol * (g.size + _norm(x) + sigma * _norm(eps) + _norm(p)) / dist
        for record, rows in ((worst, torch.ones_like(keep[keep])), (violation, eta_x > eta + allowance)):
            if bool(rows.any()):
                i = int(torch.argmax(eta_x.masked_fill(~rows, -math.inf)))
                if float(eta_x[i]) > record["eta"]:
                    record.update(eta=float(eta_x[i]), x=x[i], sigma=sigma, r=float(ratio[i]), dist=float(dist[i]))
                    record.update(allowance=float(allowance[i]), p=p[i])
        hypothesis.target(float(eta_x.max()), label="eta(x, sigma)")

        # One DDIM step from these points: Lemma 1 (THEORY §3).
        beta = data.draw(steps, label="beta")
        sigma_next = max(sigma - beta * sigma, 0.0)
        beta = (sigma - sigma_next) / sigma  # the step actually taken
        x_next, _ = sample_step(x, eps, sigma, sigma_next)
        p_next, d_next = K.project_with_distance(x_next)
        slack = rtol * (g.size + _norm(x) + _norm(x_next) + sigma * _norm(eps) + _norm(p) + _norm(p_next))
        bounds = lemma1_bounds(dist, err, beta, eta)
        claim_holds = eta_x <= eta + allowance
        eta_slack = slack + beta * allowance * dist
        for kind, excess, rows, tol in (
            ("lower", bounds["lower"] - d_next, torch.ones_like(claim_holds), slack),
            ("upper", d_next - bounds["upper"], torch.ones_like(claim_holds), slack),
            ("eta_lower", bounds["eta_lower"] - d_next, claim_holds, eta_slack),
            ("eta_upper", d_next - bounds["eta_upper"], claim_holds, eta_slack),
        ):
            _fail_rows(
                rows & ~(excess <= tol),
                excess / tol,
                lambda i, kind=kind, excess=excess: (
                    f"Lemma 1 ({kind} bound) fails for the DDIM step from "
                    f"sigma = {sigma!r} to {sigma_next!r} at x = {_fmt(x[i])}: dist_K(x) = {_fmt(dist[i])}, "
                    f"e = {_fmt(err[i])}, dist_K(x_next) = {_fmt(d_next[i])} is {_fmt(excess[i])} beyond the bound "
                    f"{_fmt(bounds[kind][i])}"
                    + ("" if kind.startswith("eta") else " (it holds for every denoiser: check K with check_manifold)")
                ),
            )

    try:
        message = _run_search(search, settings, seed)
    except hypothesis.errors.Unsatisfiable as exc:
        raise ValueError(
            f"no nu-admissible pair (x, sigma) off {K!r} could be drawn with sigmas in [{lo}, {hi}]"
        ) from exc
    if message is not None:
        raise AssertionError(f"check_denoiser({_name(denoiser)}, {K!r}): {message}")
    if violation["eta"] > -math.inf:
        v = violation
        raise AssertionError(
            f"check_denoiser({_name(denoiser)}, {K!r}): the claim eta = {eta!r}, nu = {nu!r} fails: "
            f"eta(x, sigma) = {v['eta']!r} at the worst point found, x = {_fmt(v['x'])}, sigma = {v['sigma']!r} "
            f"(r = {v['r']!r}, dist_K(x) = {v['dist']!r}, proj_K(x) = {_fmt(v['p'])}; "
            f"rounding allowance {v['allowance']!r})"
        )
    return worst["eta"]
