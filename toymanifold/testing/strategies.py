"""Hypothesis strategies for toy manifolds, points near them, schedules and perturbed denoisers (THEORY §1, §6)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from hypothesis import strategies as st

from ..manifolds import AffineSubspace, Circle, Embedded, FiniteSet, Manifold, Sphere, Spiral, SwissRoll, Torus

FAMILIES = ("circle", "sphere", "torus", "affine", "spiral", "swiss_roll", "finite", "embedded")

_BASE_FAMILIES = FAMILIES[:-1]


def seeds() -> st.SearchStrategy[int]:
    """Seeds for ``torch.Generator.manual_seed``."""
    return st.integers(min_value=0, max_value=2**31 - 1)


def _floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)


def _gaussian(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, dtype=torch.float64, generator=g)


# --------------------------------------------------------------------------------------
# Manifolds
# --------------------------------------------------------------------------------------


@st.composite
def _circles(draw) -> Manifold:
    radius = draw(_floats(0.1, 10.0))
    center = draw(st.none() | st.lists(_floats(-3.0, 3.0), min_size=2, max_size=2))
    return Circle(radius, center=center)


@st.composite
def _spheres(draw, max_ambient_dim: int) -> Manifold:
    dim = draw(st.integers(1, max(1, min(4, max_ambient_dim - 1))))
    radius = draw(_floats(0.1, 10.0))
    center = draw(st.none() | st.lists(_floats(-3.0, 3.0), min_size=dim + 1, max_size=dim + 1))
    return Sphere(dim, radius, center=center)


@st.composite
def _tori(draw) -> Manifold:
    major = draw(_floats(0.5, 5.0))
    ratio = draw(_floats(0.05, 0.9))
    return Torus(major, ratio * major)


@st.composite
def _affines(draw, max_ambient_dim: int) -> Manifold:
    n = draw(st.integers(1, max(1, min(6, max_ambient_dim))))
    d = draw(st.integers(1, n))
    seed = draw(seeds())
    basis = _gaussian((d + 1, n), seed)
    offset = basis[d] if draw(st.booleans()) else None
    return AffineSubspace(basis[:d], offset=offset, scale=draw(_floats(0.1, 5.0)))


def _spiral_params(draw) -> tuple[float, float, float]:
    theta_min = draw(_floats(0.5, 3.0 * math.pi))
    turns = draw(_floats(0.3, 4.0))
    scale = draw(_floats(0.05, 2.0))
    return theta_min, theta_min + 2.0 * math.pi * turns, scale


@st.composite
def _spirals(draw) -> Manifold:
    return Spiral(*_spiral_params(draw))


@st.composite
def _swiss_rolls(draw) -> Manifold:
    return SwissRoll(*_spiral_params(draw), height=draw(_floats(0.5, 20.0)))


@st.composite
def _finite_sets(draw, max_ambient_dim: int) -> Manifold:
    n = draw(st.integers(1, max(1, min(6, max_ambient_dim))))
    m = draw(st.integers(1, 40))
    spread = draw(_floats(0.1, 5.0))
    return FiniteSet(spread * _gaussian((m, n), draw(seeds())))


def _base_strategy(name: str, max_ambient_dim: int) -> st.SearchStrategy[Manifold]:
    return {
        "circle": lambda: _circles(),
        "sphere": lambda: _spheres(max_ambient_dim),
        "torus": lambda: _tori(),
        "affine": lambda: _affines(max_ambient_dim),
        "spiral": lambda: _spirals(),
        "swiss_roll": lambda: _swiss_rolls(),
        "finite": lambda: _finite_sets(max_ambient_dim),
    }[name]()


@st.composite
def _embedded(draw, base: st.SearchStrategy[Manifold], max_ambient_dim: int) -> Manifold:
    k = draw(base)
    extra = draw(st.integers(0, max(0, max_ambient_dim - k.ambient_dim)))
    return Embedded(k, k.ambient_dim + extra, seed=draw(st.integers(0, 2**16)))


def manifolds(
    families: Iterable[str] | None = None,
    *,
    min_ambient_dim: int = 1,
    max_ambient_dim: int = 8,
) -> st.SearchStrategy[Manifold]:
    """Manifolds of the requested families with ambient dimension in the given range.

    The families' parameters are drawn to keep every family well-conditioned but
    non-trivial: e.g. tori with ``r/R ∈ [0.05, 0.9]``, spirals with 0.3 to 4 windings
    starting anywhere in ``θ₀ ∈ [0.5, 3π]``, finite sets of 1 to 40 Gaussian points.

    Parameters
    ----------
    families : iterable of str, optional
        Names from :data:`FAMILIES` (all by default). ``"embedded"`` adds
        ``Embedded`` copies of the other requested families (of every base family if
        it is the only name) in up to ``max_ambient_dim`` dimensions.
    min_ambient_dim, max_ambient_dim : int
        Keep manifolds whose ``ambient_dim`` lies in this range.
    """
    names = tuple(FAMILIES if families is None else families)
    unknown = [f for f in names if f not in FAMILIES]
    if unknown or not names:
        raise ValueError(f"families must be a non-empty subset of {FAMILIES}, got {names!r}")
    if not 1 <= min_ambient_dim <= max_ambient_dim:
        raise ValueError(
            f"need 1 <= min_ambient_dim <= max_ambient_dim, got min_ambient_dim={min_ambient_dim}, "
            f"max_ambient_dim={max_ambient_dim}"
        )
    base_names = [f for f in names if f != "embedded"]
    fixed_dims = {"circle": 2, "torus": 3, "spiral": 2, "swiss_roll": 3}
    # A family whose ambient dimension is fixed and out of range would only be filtered.
    base_names = [f for f in base_names if fixed_dims.get(f, max_ambient_dim) <= max_ambient_dim]
    strategies = [_base_strategy(f, max_ambient_dim) for f in base_names]
    if "embedded" in names:
        pool = base_names or [f for f in _BASE_FAMILIES if fixed_dims.get(f, max_ambient_dim) <= max_ambient_dim]
        base = st.one_of([_base_strategy(f, max_ambient_dim) for f in pool])
        strategies.append(_embedded(base, max_ambient_dim))
    if not strategies:
        raise ValueError(f"no family in {names!r} fits max_ambient_dim={max_ambient_dim}")
    return st.one_of(strategies).filter(lambda k: min_ambient_dim <= k.ambient_dim <= max_ambient_dim)


# --------------------------------------------------------------------------------------
# Points
# --------------------------------------------------------------------------------------


def characteristic_length(manifold: Manifold) -> float:
    """A length scale of ``K``: its reach if finite, else its size, else 1.

    Used by :func:`points_near` and :func:`points_far` to scale offsets.
    """
    for value in (manifold.reach, manifold.diameter_bound):
        if math.isfinite(value) and value > 0:
            return float(value)
    if isinstance(manifold, AffineSubspace):
        return manifold.scale
    return 1.0


def _unit_rows(num: int, n: int, seed: int) -> torch.Tensor:
    v = _gaussian((num, n), seed)
    return v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)


def points_on(manifold: Manifold, *, min_size: int = 1, max_size: int = 16) -> st.SearchStrategy[torch.Tensor]:
    """Batches ``(B, n)`` of samples of ``manifold``'s data distribution (on ``K``)."""

    @st.composite
    def strategy(draw) -> torch.Tensor:
        num = draw(st.integers(min_size, max_size))
        return manifold.sample(num, generator=draw(seeds()))

    return strategy()


def points_near(
    manifold: Manifold, *, max_relative_distance: float = 0.9, min_size: int = 1, max_size: int = 16
) -> st.SearchStrategy[torch.Tensor]:
    """Points within ``max_relative_distance × reach`` of ``K`` (unique nearest point).

    ``x = q + t·L·u`` with ``q`` a sample, ``u`` a uniform unit vector, ``t`` drawn in
    ``[0, max_relative_distance)`` and ``L`` the :func:`characteristic_length` (the
    reach when finite). Since ``dist_K(x) ≤ t L < reach``, every point has a unique
    nearest point (THEORY §1) when ``max_relative_distance < 1`` and the reach is finite.
    """

    @st.composite
    def strategy(draw) -> torch.Tensor:
        num = draw(st.integers(min_size, max_size))
        seed = draw(seeds())
        q = manifold.sample(num, generator=seed)
        length = characteristic_length(manifold)
        t = torch.tensor(
            draw(st.lists(_floats(0.0, max_relative_distance), min_size=num, max_size=num)), dtype=torch.float64
        )
        t = torch.clamp(t, max=math.nextafter(max_relative_distance, 0.0))
        return q + (t * length)[:, None] * _unit_rows(num, manifold.ambient_dim, seed + 1)

    return strategy()


def points_far(
    manifold: Manifold, *, min_factor: float = 1.0, max_factor: float = 10.0, min_size: int = 1, max_size: int = 16
) -> st.SearchStrategy[torch.Tensor]:
    """Points at distances up to ``max_factor × (size + L)`` of ``K``: anywhere, medial axis included.

    ``x = q + s (R + L) g`` with ``q`` a sample, ``g`` standard Gaussian, ``R`` the
    :meth:`~toymanifold.Manifold.diameter_bound` (0 when infinite), ``L`` the
    :func:`characteristic_length` and ``s`` drawn in ``[min_factor, max_factor]``.
    These points are generally beyond the reach, between windings, behind the
    endpoints, near centres of symmetry.
    """

    @st.composite
    def strategy(draw) -> torch.Tensor:
        num = draw(st.integers(min_size, max_size))
        seed = draw(seeds())
        q = manifold.sample(num, generator=seed)
        size = manifold.diameter_bound if math.isfinite(manifold.diameter_bound) else 0.0
        s = draw(_floats(min_factor, max_factor))
        return q + s * (size + characteristic_length(manifold)) * _gaussian((num, manifold.ambient_dim), seed + 1)

    return strategy()


# --------------------------------------------------------------------------------------
# Schedules and denoisers
# --------------------------------------------------------------------------------------


@st.composite
def schedules(
    draw,
    *,
    min_steps: int = 1,
    max_steps: int = 40,
    min_sigma: float = 1e-3,
    max_sigma: float = 100.0,
    final_zero: bool | None = False,
) -> torch.Tensor:
    """Strictly decreasing float64 schedules ``σ_N > … > σ_0`` (THEORY §3), length ``N + 1``.

    Either log-linear or random (sorted log-uniform values with a relative gap of at
    least 1e-3 between neighbours). ``final_zero``: ``True`` appends ``σ_0 = 0`` (the
    final step to ``σ = 0`` of Corollary 1), ``None`` draws whether to.
    """
    n = draw(st.integers(min_steps, max_steps))
    lo = math.log(min_sigma)
    hi = draw(_floats(lo + 1e-2, math.log(max_sigma)))
    zero = draw(st.booleans()) if final_zero is None else final_zero
    m = n if zero else n + 1  # positive sigmas
    if draw(st.booleans()):
        start = draw(_floats(lo, hi - 1e-2))
        logs = torch.linspace(hi, start, m, dtype=torch.float64)
    else:
        logs = torch.sort(
            lo + (hi - lo) * torch.rand(m, dtype=torch.float64, generator=torch.Generator().manual_seed(draw(seeds()))),
            descending=True,
        ).values
        # Enforce a strict, resolvable decrease.
        for i in range(1, m):
            logs[i] = min(float(logs[i]), float(logs[i - 1]) - 1e-3)
    sig = torch.exp(logs)
    if zero:
        sig = torch.cat([sig, sig.new_zeros(1)])
    return sig


@st.composite
def perturbed_denoisers(draw, manifold: Manifold, *, max_eta: float = 0.9, modes: Iterable[str] | None = None):
    """``PerturbedProjectionDenoiser(manifold, eta, mode, seed)`` with drawn ``eta`` and mode.

    The denoised estimate is the nearest point plus an error of norm exactly
    ``eta · dist_K(x)`` (THEORY §2, §6): the denoisers Lemma 1 and Theorem 1 are about.
    """
    from ..denoisers import PerturbedProjectionDenoiser

    modes = tuple(modes) if modes is not None else ("random", "outward", "inward")
    eta = draw(_floats(0.0, max_eta))
    return PerturbedProjectionDenoiser(manifold, eta, mode=draw(st.sampled_from(modes)), seed=draw(seeds()))
