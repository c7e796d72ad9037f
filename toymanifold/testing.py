"""Public Hypothesis strategies and check suites: the toolkit's contract, runnable on your classes.

Strategies (toy manifolds, points on/near/far from them, schedules) let users
property-test their own denoisers and samplers against the same exact geometry the
toolkit's own suite uses (THEORY §1, §6). Every strategy builds its tensors from
Hypothesis-drawn seeds and floats through an explicit ``torch.Generator``, so examples
shrink well, replay exactly and stay cheap.

The check suites run that contract on a third-party class in one call, in the manner
of scikit-learn's ``check_estimator``: :func:`check_manifold` holds a
:class:`~toymanifold.Manifold` to every property the built-in families are held to, and
:func:`check_denoiser` tests the claim that a denoiser is an (η, ν)-approximate
projection (THEORY §2) together with Lemma 1's one-step bounds (THEORY §3). The
project's own test suite runs both on every built-in family and denoiser.

Examples
--------
>>> import torch
>>> from hypothesis import given, strategies as st
>>> from toymanifold.testing import manifolds, points_near
>>> @given(data=st.data(), K=manifolds())
... def test_idempotent(data, K):
...     x = data.draw(points_near(K))
...     p = K.project(x)
...     assert torch.allclose(K.project(p), p)
>>> test_idempotent()
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable

import numpy as np
import torch
from hypothesis import strategies as st

from .manifolds import AffineSubspace, Circle, Embedded, FiniteSet, Manifold, Sphere, Spiral, SwissRoll, Torus
from .samplers import sample_step
from .validation import as_manifold, as_tensor, check_eta, check_int, check_nu, check_positive

__all__ = [
    "FAMILIES",
    "characteristic_length",
    "check_denoiser",
    "check_manifold",
    "lemma1_bounds",
    "manifolds",
    "perturbed_denoisers",
    "points_far",
    "points_near",
    "points_on",
    "schedules",
    "seeds",
]

#: Names accepted by ``manifolds(families=...)``; ``"embedded"`` means isometric copies
#: (:class:`~toymanifold.Embedded`) of the other families in a larger space.
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
    from .denoisers import PerturbedProjectionDenoiser

    modes = tuple(modes) if modes is not None else ("random", "outward", "inward")
    eta = draw(_floats(0.0, max_eta))
    return PerturbedProjectionDenoiser(manifold, eta, mode=draw(st.sampled_from(modes)), seed=draw(seeds()))


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
# Check suites: shared machinery
# --------------------------------------------------------------------------------------

_F64 = torch.float64
_EPS64 = torch.finfo(torch.float64).eps
_EPS32 = torch.finfo(torch.float32).eps

#: Default accuracy demanded of a manifold's oracles, relative to the magnitudes involved
#: (:func:`check_manifold`, "Tolerances"): 2^10 float64 unit roundoffs, about 2.3e-13.
ORACLE_RTOL = 2.0**10 * _EPS64
#: The same for float32 input (``dtype_preserved``): 2^6 float32 roundoffs, about 7.6e-6.
ORACLE_RTOL32 = 2.0**6 * _EPS32
#: Relative step ``h / L`` of the first-order tangency tests and the slope ``δ`` they allow:
#: ``dist_K(p + h t) ≤ δ h`` for a tangent direction ``t`` (curvature adds only
#: ``h / (2 reach) = 5e-5 δ``-sized terms when ``L`` is the reach), while a direction
#: at an angle ``α`` to ``K`` leaves at slope ``sin α``.
_TANGENT_STEP = 1e-4
_TANGENT_SLOPE = 1e-2
#: Rows per drawn batch (small batches keep each example cheap; shrinking reaches one row).
_BATCH = 8
#: Points of ``K`` every ``distance_is_minimum`` example compares with (drawn once per check).
_CLOUD = 1024


# Strategies used inside the properties are built once: a new strategy object is
# validated on its first draw, which costs more than the draw itself.
_SEEDS = seeds()
_NUMS = st.integers(1, 32)
#: Up to ``_BATCH`` fractions in steps of 1/100 (integers shrink quickly and read well).
_FRACTIONS = st.lists(st.integers(0, 99), min_size=1, max_size=_BATCH).map(lambda k: torch.tensor(k, dtype=_F64) / 100)
_HALVINGS = st.integers(0, 20)


class _PropertyFailure(AssertionError):
    """A property of the contract failed on the example being run."""


def _fmt(value) -> str:
    """Full-precision text of a tensor or number (``repr`` of Python floats round-trips)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = value.to(_F64).tolist() if value.is_floating_point() else value.tolist()
    return repr(value)


def _fail_rows(bad: torch.Tensor, score: torch.Tensor, describe) -> None:
    """Raise for the row with the largest ``score`` among the rows where ``bad`` (NaN scores count as largest)."""
    if bool(bad.any()):
        s = torch.nan_to_num(score.detach().to(_F64), nan=math.inf, posinf=math.inf, neginf=-math.inf)
        s = s.masked_fill(~bad, -math.inf)
        raise _PropertyFailure(describe(int(torch.argmax(s))))


def _expect_tensor(value, what: str, shape: tuple[int, ...], dtype: torch.dtype, at: torch.Tensor | None) -> None:
    """``value`` must be a finite tensor of the given shape and dtype (``at``: the input, for the message)."""
    where = f" for input {_fmt(at)}" if at is not None else ""
    if not isinstance(value, torch.Tensor):
        raise _PropertyFailure(f"{what} returned a {type(value).__name__}, not a torch.Tensor{where}")
    if tuple(value.shape) != shape or value.dtype != dtype:
        raise _PropertyFailure(
            f"{what} returned shape {tuple(value.shape)} and dtype {value.dtype}, expected {shape} and {dtype}{where}"
        )
    if value.numel() and not bool(torch.isfinite(value).all()):
        flat = value.reshape(value.shape[0], -1) if value.ndim else value.reshape(1, 1)
        i = int(torch.nonzero(~torch.isfinite(flat).all(dim=1))[0, 0])
        row = f" at input row {_fmt(at[i])}" if at is not None else ""
        raise _PropertyFailure(f"{what} returned non-finite values{row}: {_fmt(value[i])}")


def _name(obj) -> str:
    """A one-line name for messages (a torch module's repr spans many lines)."""
    text = repr(obj)
    return text if "\n" not in text and len(text) <= 200 else f"<{type(obj).__name__}>"


def _norm(t: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(t, dim=-1)


def _search_settings(settings, max_examples):
    """The Hypothesis settings of a check: the user's, or the loaded profile's without database and deadline."""
    from hypothesis import HealthCheck, Phase
    from hypothesis import settings as Settings

    if settings is None:
        current = Settings()  # the loaded profile (e.g. the project's derandomized "ci" profile)
        quiet = {HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much}
        settings = Settings(
            current,
            database=None,
            deadline=None,
            suppress_health_check=list(quiet | set(current.suppress_health_check)),
            # The explain phase reruns a failure under a line tracer (several times slower)
            # to list the lines only failing examples ran; the messages here say more.
            phases=[phase for phase in current.phases if phase != Phase.explain],
        )
    elif not isinstance(settings, Settings):
        raise TypeError(f"settings must be a hypothesis.settings, got {type(settings).__name__}")
    if max_examples is not None:
        settings = Settings(settings, max_examples=check_int(max_examples, "max_examples", minimum=1))
    # One counterexample per property: the smallest one Hypothesis found.
    return Settings(settings, report_multiple_bugs=False)


def _run_search(prop, settings, seed: int | None) -> str | None:
    """Run ``prop(data)`` under Hypothesis; the failure message of its smallest counterexample, or None."""
    import hypothesis

    @hypothesis.given(data=st.data())
    def search(data):
        prop(data)

    search = settings(search)
    if seed is not None:
        search = hypothesis.seed(check_int(seed, "seed"))(search)
    try:
        search()
    except _PropertyFailure as exc:
        return str(exc)
    except hypothesis.errors.Flaky as exc:  # a failure that did not recur on replay
        return f"the class under test is not deterministic: {type(exc).__name__}: {exc}"
    except hypothesis.errors.HypothesisException:
        raise  # a problem of the search itself (e.g. Unsatisfiable), not of the class under test
    except BaseExceptionGroup as group:
        first = group.exceptions[0]
        return f"{group.message}; first error: {type(first).__name__}: {first}"
    except Exception as exc:  # the class under test raised while the property ran
        notes = "\n".join(getattr(exc, "__notes__", []))
        return f"raised {type(exc).__name__}: {exc}" + (f"\n{notes}" if notes else "")
    return None


# --------------------------------------------------------------------------------------
# check_manifold
# --------------------------------------------------------------------------------------


class _Geometry:
    """What the properties of :func:`check_manifold` need to know about ``K``, computed once."""

    def __init__(self, K: Manifold, rtol: float, seed: int | None):
        self.K = K
        self.n = K.ambient_dim
        self.d = K.intrinsic_dim
        self.reach = float(K.reach)
        self.length = characteristic_length(K)
        bound = float(K.diameter_bound)
        self.size = bound if math.isfinite(bound) else self.length
        self.rtol = rtol
        self.step = _TANGENT_STEP * self.length
        self._cloud_seed = 0 if seed is None else seed
        self._cloud: torch.Tensor | None = None

    def tol(self, *points: torch.Tensor) -> torch.Tensor:
        """Per-row tolerance ``rtol · (S + Σ ‖point‖)`` for values computed from ``points``."""
        total = torch.full(points[0].shape[:1], self.size, dtype=_F64)
        for t in points:
            total = total + _norm(t.to(_F64))
        return self.rtol * total

    @property
    def cloud(self) -> torch.Tensor:
        if self._cloud is None:
            self._cloud = self.K.sample(_CLOUD, generator=self._cloud_seed)
        return self._cloud

    def normal_unit(self, p: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit vectors orthogonal to ``tangent_basis(p)`` and a mask of the rows that have one."""
        u = _gaussian(tuple(p.shape), seed)
        u = u / _norm(u)[:, None]
        if self.d:
            T = self.K.tangent_basis(p).to(_F64)
            # Twice, so the result is orthogonal to rounding even where u was nearly tangent.
            for _ in range(2):
                u = u - torch.einsum("bdn,bd->bn", T, torch.einsum("bdn,bn->bd", T, u))
        norm = _norm(u)
        ok = norm > 1e-6  # the normal space is {0} where d = n
        return u / torch.where(ok, norm, 1.0)[:, None], ok

    # Strategies are built once per check: building a composite strategy inspects its source.
    @functools.cached_property
    def near_points(self) -> st.SearchStrategy[torch.Tensor]:
        return points_near(self.K, max_size=_BATCH)

    @functools.cached_property
    def far_points(self) -> st.SearchStrategy[torch.Tensor]:
        return points_far(self.K, max_size=_BATCH)

    @functools.cached_property
    def off_points(self) -> st.SearchStrategy[torch.Tensor]:
        """Points off ``K``: the probes of :func:`_probe_points`, near ``K`` and far from it."""
        return st.one_of(_probe_points(self.n), self.near_points, self.far_points)

    @functools.cached_property
    def any_points(self) -> st.SearchStrategy[torch.Tensor]:
        return st.one_of(self.off_points, points_on(self.K, max_size=_BATCH))


def _probe_points(n: int) -> st.SearchStrategy[torch.Tensor]:
    """The origin and small lattice points: centres of symmetry, where ``0/0`` bugs live.

    The origin comes first, so it is the first example of every search over points.
    """
    lattice = st.lists(st.integers(-3, 3), min_size=n, max_size=n).map(lambda v: torch.tensor([v], dtype=_F64))
    return st.one_of(st.just(torch.zeros(1, n, dtype=_F64)), lattice)


def _project(g: _Geometry, x: torch.Tensor) -> torch.Tensor:
    p = g.K.project(x)
    _expect_tensor(p, "project(x)", tuple(x.shape), x.dtype, x)
    return p


def _distance(g: _Geometry, x: torch.Tensor) -> torch.Tensor:
    d = g.K.distance(x)
    _expect_tensor(d, "distance(x)", tuple(x.shape[:1]), x.dtype, x)
    return d


def _tangent_basis(g: _Geometry, p: torch.Tensor) -> torch.Tensor:
    T = g.K.tangent_basis(p)
    _expect_tensor(T, "tangent_basis(p)", (p.shape[0], g.d, g.n), p.dtype, p)
    return T


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
