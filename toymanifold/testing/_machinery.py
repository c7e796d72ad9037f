"""What both check suites share: tolerances, failure reports, the Hypothesis search and the geometry of ``K``."""

from __future__ import annotations

import functools
import math

import torch
from hypothesis import strategies as st

from ..manifolds import Manifold
from ..validation import check_int
from .strategies import _gaussian, characteristic_length, points_far, points_near, points_on, seeds

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
