"""The built-in data sets ``K``: one table, used by the command line, its validation and the report.

:data:`DATASETS` maps a name to a :class:`DataSet`: how to build ``K`` in ``R^n``, what
it is, which ``n`` it accepts, and a :class:`Chart` (two or three plot coordinates).
Curves and surfaces are embedded isometrically (:class:`~toymanifold.Embedded`, a
random orthonormal frame seeded by ``seed``) when ``n`` exceeds their own dimension.

Real data that ships offline: scikit-learn's 8×8 digits (no download at run time).

Examples
--------
>>> import toymanifold as tm
>>> ds = tm.datasets.build("sphere", ambient_dim=16, seed=0)
>>> ds.manifold.ambient_dim, ds.manifold.intrinsic_dim
(16, 2)
>>> sorted(tm.datasets.DATASETS)[:3]
['circle', 'digits', 'finite']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .manifolds import AffineSubspace, Circle, Embedded, FiniteSet, Manifold, Sphere, Spiral, SwissRoll, Torus
from .validation import check_int

__all__ = ["DATASETS", "Chart", "DataSet", "ToyData", "build", "digits", "digits_arrays", "resolve_name"]

#: ``n`` when none is given: the bases live in R² or R³ and are embedded in R^64.
DEFAULT_AMBIENT_DIM = 64


def digits_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1 797 digits as ``(x, labels)``: ``x`` float64 ``(1797, 64)`` in ``[−1, 1]``.

    Pixel values ``0…16`` map to ``v/8 − 1``; rows are 8×8 images in row-major order.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float64) / 8.0 - 1.0
    return x, torch.as_tensor(bunch.target, dtype=torch.long)


def digits() -> FiniteSet:
    """scikit-learn's digits as a :class:`FiniteSet` in ``[−1, 1]^64`` (``n = 64``, ``M = 1797``)."""
    return FiniteSet(digits_arrays()[0])


@dataclass(frozen=True)
class Chart:
    """Plot coordinates of ``R^n`` for one data set.

    ``to_coords`` maps ``(B, n)`` points to ``(B, k)`` coordinates (``k`` = 2 or 3)
    named ``names`` (plain Unicode, which every plotting library shows); ``background``
    holds points of ``K`` in those coordinates (ordered along the curve when ``curve`` is
    true, so they can be drawn as a line).
    """

    names: tuple[str, ...]
    to_coords: Callable[[torch.Tensor], torch.Tensor]
    curve: bool
    background: torch.Tensor


@dataclass(frozen=True)
class ToyData:
    """A built data set: the manifold ``K``, a one-line description and its :class:`Chart`."""

    name: str
    description: str
    manifold: Manifold
    chart: Chart


@dataclass(frozen=True)
class DataSet:
    """One entry of :data:`DATASETS`.

    ``summary`` is the one-line help text; ``min_ambient_dim`` (and ``fixed_ambient_dim``
    where the data fix ``n``) say which ``n`` it accepts, ``min_ambient_dim_reason`` why
    no smaller ``n`` (when it is not just the base manifold's own dimension);
    ``make(n, seed)`` builds it.
    """

    name: str
    summary: str
    make: Callable[[int, int], ToyData]
    min_ambient_dim: int
    fixed_ambient_dim: int | None = None
    min_ambient_dim_reason: str = ""

    def check_ambient_dim(self, ambient_dim: int) -> int:
        """``ambient_dim`` if this data set can live in ``R^ambient_dim``, else a ``ValueError`` saying why."""
        n = check_int(ambient_dim, "ambient_dim", minimum=1)
        if self.fixed_ambient_dim is not None and n != self.fixed_ambient_dim:
            raise ValueError(f"ambient_dim must be {self.fixed_ambient_dim} for {self.name}, got {n}")
        if n < self.min_ambient_dim:
            why = f" ({self.min_ambient_dim_reason})" if self.min_ambient_dim_reason else ""
            raise ValueError(f"ambient_dim must be >= {self.min_ambient_dim} for {self.name}, got {n}{why}")
        return n

    def build(self, ambient_dim: int | None = None, seed: int = 0) -> ToyData:
        """The data set in ``R^ambient_dim`` (default 64); embedding frames and samples seeded by ``seed``."""
        n = self.check_ambient_dim(DEFAULT_AMBIENT_DIM if ambient_dim is None else ambient_dim)
        return self.make(n, check_int(seed, "seed", minimum=0))


_SUB = "₀₁₂₃₄₅₆₇₈₉"


def _as64(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


def _background_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(10_000 + seed)


def _ordered_curve(base: Manifold, pts: torch.Tensor) -> torch.Tensor:
    """Points of a planar circle (by angle, closed) or spiral (by radius) in drawing order."""
    if isinstance(base, Sphere):
        p = pts[torch.argsort(torch.atan2(pts[:, 1], pts[:, 0]))]
        return torch.cat([p, p[:1]])
    return pts[torch.argsort(torch.linalg.vector_norm(pts, dim=1))]


def _embedded(name: str, base_factory: Callable[[], Manifold], m: int, description: str) -> DataSet:
    """A curve or surface of ``R^m`` (m = 2, 3), embedded isometrically in ``R^n`` when ``n > m``."""

    def make(n: int, seed: int) -> ToyData:
        base = base_factory()
        g = _background_generator(seed)
        curve = base.intrinsic_dim == 1
        if curve:
            bg = _ordered_curve(base, base.project(base.sample(4000, g)))
        else:
            bg = base.sample(2500 if m == 3 else 1500, g)
        if n == m:
            K, to_coords, label = base, _as64, f"{description} in R^{m}"
            names = tuple(f"x{_SUB[i + 1]}" for i in range(m))
        else:
            K = Embedded(base, n, seed=seed)
            to_coords = K.to_base
            label = f"{description}, embedded isometrically in R^{n} (random frame, seed {seed})"
            names = tuple(f"y{_SUB[i + 1]} = (Qᵀx){_SUB[i + 1]}" for i in range(m))
        return ToyData(name, label, K, Chart(names, to_coords, curve, bg))

    return DataSet(name, f"{description} (in R^{m}; embedded in R^n)", make, min_ambient_dim=m)


def _subspace(n: int, seed: int) -> ToyData:
    K = AffineSubspace.random(2, n, seed=seed)

    def to_coords(x):
        return (_as64(x) - K.offset) @ K.basis.T

    background = to_coords(K.sample(1500, _background_generator(seed)))
    chart = Chart(("b₁ᵀ(x − c)", "b₂ᵀ(x − c)"), to_coords, False, background)
    return ToyData("subspace", f"random plane in R^{n} with data N(0, P)", K, chart)


def _finite(n: int, seed: int) -> ToyData:
    emb = Embedded(Sphere(2), n, seed=seed) if n > 3 else None
    pts = (emb or Sphere(2)).sample(64, torch.Generator().manual_seed(20_000 + seed))
    to_coords = emb.to_base if emb is not None else _as64
    names = tuple(f"y{_SUB[i + 1]} = (Qᵀx){_SUB[i + 1]}" if emb is not None else f"x{_SUB[i + 1]}" for i in range(3))
    chart = Chart(names, to_coords, False, to_coords(pts))
    return ToyData(
        "finite", f"64 points drawn uniformly from S² (embedded in R^{n}), as a finite set", FiniteSet(pts), chart
    )


def _digits(n: int, seed: int) -> ToyData:
    K = digits()
    mean = K.points.mean(0)
    pcs = torch.linalg.svd(K.points - mean, full_matrices=False)[2][:2]

    def to_coords(x):
        return (_as64(x) - mean) @ pcs.T

    chart = Chart(("PC 1", "PC 2"), to_coords, False, to_coords(K.points))
    return ToyData("digits", "scikit-learn's 1797 8×8 digits in [−1, 1]^64, as a finite set", K, chart)


_SPIRAL = "Archimedean spiral 0.1θ(cos θ, sin θ), θ ∈ [1.5π, 4.5π]"

#: Every built-in data set by name (the ``--manifold`` choices of ``toymanifold report``).
DATASETS: dict[str, DataSet] = {
    d.name: d
    for d in (
        _embedded("sphere", lambda: Sphere(2), 3, "S² of radius 1"),
        _embedded("circle", Circle, 2, "circle of radius 1"),
        _embedded("torus", lambda: Torus(1.0, 0.4), 3, "torus R = 1, r = 0.4"),
        _embedded("spiral", lambda: Spiral(scale=0.1), 2, _SPIRAL),
        _embedded(
            "swissroll",
            lambda: SwissRoll(scale=0.1, height=2.0),
            3,
            "Swiss roll (spiral 0.1θ, θ ∈ [1.5π, 4.5π]) × [0, 2]",
        ),
        DataSet(
            "subspace",
            "random plane (d = 2) in R^n with data N(0, P)",
            _subspace,
            min_ambient_dim=3,
            min_ambient_dim_reason="a plane in R^2 is all of R^2: it has no normal space, dist_K = 0 everywhere "
            "and r, eta (THEORY §2) are undefined",
        ),
        DataSet("finite", "64 points drawn uniformly from S², as a finite set in R^n", _finite, min_ambient_dim=3),
        DataSet(
            "digits", "scikit-learn's 1797 8×8 digits as a finite set (n = 64 only)", _digits, 64, fixed_ambient_dim=64
        ),
    )
}

_ALIASES = {"swiss-roll": "swissroll", "swiss_roll": "swissroll", "s2": "sphere", "plane": "subspace",
            "affine": "subspace", "points": "finite"}  # fmt: skip


def resolve_name(name: str) -> str:
    """The registry name for ``name`` (case-insensitive; aliases like ``"swiss-roll"``); ``ValueError`` if unknown."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown data set {name!r} (choose from {', '.join(DATASETS)})")
    return key


def build(name: str, ambient_dim: int | None = None, seed: int = 0) -> ToyData:
    """Build the data set ``name`` of :data:`DATASETS` in ``R^ambient_dim`` (default 64)."""
    return DATASETS[resolve_name(name)].build(ambient_dim, seed)
