"""The check suites of ``toymanifold.testing`` (THEORY §1–§3, §6).

``check_manifold`` must catch deliberately wrong user classes, each by the name of the
property it breaks, and pass every built-in family (tests/test_manifolds.py runs it on
all of them). ``check_denoiser`` must pass every built-in denoiser with a known η —
exact projection (η = 0), perturbed projection (η exactly, in every mode), the ideal
denoisers on the σ ranges where a bound is proved below — and fail understated claims.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings
from scipy import special

import toymanifold as tm
from toymanifold.denoisers.ideal import GaussianSubspaceDenoiser
from toymanifold.testing import MANIFOLD_PROPERTIES, check_denoiser, check_manifold, lemma1_bounds

F64 = torch.float64
ROOT = Path(__file__).resolve().parents[1]


def failing(excinfo) -> list[str]:
    """The property names an AssertionError of check_manifold lists."""
    return re.findall(r"^\[(\w+)\]", str(excinfo.value), flags=re.M)


# --------------------------------------------------------------------------------------
# Deliberately wrong manifolds, each caught by name
# --------------------------------------------------------------------------------------


class RadialEllipse(tm.Manifold):
    """An ellipse whose ``project`` rescales radially onto it: on K, but not the nearest point."""

    ambient_dim, intrinsic_dim = 2, 1

    def __init__(self, a: float = 2.0, b: float = 1.0):
        self.a, self.b = a, b

    @property
    def reach(self) -> float:
        return self.b**2 / self.a  # the smallest radius of curvature (correct for the ellipse)

    @property
    def diameter_bound(self) -> float:
        return self.a

    def _sample(self, num, generator):
        t = 2 * math.pi * torch.rand(num, dtype=F64, generator=generator)
        return torch.stack([self.a * torch.cos(t), self.b * torch.sin(t)], -1)

    def _project(self, x):
        s = torch.sqrt((x[:, 0] / self.a) ** 2 + (x[:, 1] / self.b) ** 2)
        on_centre = s == 0
        p = x / torch.where(on_centre, 1.0, s)[:, None]
        return torch.where(on_centre[:, None], torch.tensor([self.a, 0.0], dtype=x.dtype), p)

    def _tangent_basis(self, p):
        t = torch.stack([-p[:, 1] * self.a / self.b, p[:, 0] * self.b / self.a], -1)
        return (t / torch.linalg.vector_norm(t, dim=-1, keepdim=True))[:, None, :]


class TiltedCircle(tm.Circle):
    """A unit circle whose tangent basis is rotated by a small angle towards the normal."""

    def __init__(self, angle: float):
        super().__init__(1.0)
        self.angle = angle

    def _tangent_basis(self, p):
        t = super()._tangent_basis(p)[:, 0]
        normal = torch.stack([t[:, 1], -t[:, 0]], -1)
        return (math.cos(self.angle) * t + math.sin(self.angle) * normal)[:, None, :]


class NaiveCircle(tm.Manifold):
    """The unit circle with ``project(x) = x/‖x‖``: NaN at its centre (the medial axis)."""

    ambient_dim, intrinsic_dim, reach = 2, 1, 1.0

    def _sample(self, num, generator):
        g = torch.randn(num, 2, dtype=F64, generator=generator)
        return g / torch.linalg.vector_norm(g, dim=-1, keepdim=True)

    def _project(self, x):
        return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)

    def _tangent_basis(self, p):
        return torch.stack([-p[:, 1], p[:, 0]], -1)[:, None, :]


def test_radially_projecting_ellipse_is_caught():
    with pytest.raises(AssertionError) as excinfo:
        check_manifold(RadialEllipse(), max_examples=10)
    names = failing(excinfo)
    assert "distance_is_minimum" in names and "residual_normal_to_tangent" in names
    # Its projections do lie on K, are idempotent and match its distance.
    assert not {"project_on_K", "distance_matches_project", "samples_on_K"} & set(names)
    # The counterexample gives a point of K closer than the claimed distance.
    assert re.search(r"\[distance_is_minimum\] distance\(x\) is not the minimum over K: x = \[", str(excinfo.value))


@pytest.mark.parametrize("angle", [1e-3, 0.05])
def test_tilted_tangent_basis_is_caught(angle):
    with pytest.raises(AssertionError) as excinfo:
        check_manifold(TiltedCircle(angle), max_examples=10)
    names = failing(excinfo)
    # Still orthonormal, so only the geometry of the rows is wrong: the residual test sees
    # any angle above rounding; the first-order tangency test angles above δ = 0.01.
    assert "residual_normal_to_tangent" in names and "tangent_basis_orthonormal" not in names
    assert ("tangent_basis_is_tangent" in names) == (angle > 0.01)
    assert set(names) <= {"residual_normal_to_tangent", "tangent_basis_is_tangent"}


def test_nan_at_the_centre_is_caught():
    with pytest.raises(AssertionError) as excinfo:
        check_manifold(NaiveCircle(), max_examples=10)
    assert "project_on_K" in failing(excinfo)
    assert "[project_on_K] project(x) returned non-finite values at input row [0.0, 0.0]: [nan, nan]" in str(
        excinfo.value
    )


class BigReachCircle(tm.Circle):
    @property
    def reach(self) -> float:
        return 1.5  # the unit circle's reach is 1: points past the centre project to the far side


class OverstatedFiniteSet(tm.FiniteSet):
    @property
    def reach(self) -> float:
        return 2.0 * super().reach  # the smallest distance instead of half of it


@pytest.mark.parametrize(
    ("K", "examples"),
    # The points that contradict the finite set's reach are a thin set (near the bisector
    # of its closest pair, beyond the true reach), so its search gets more examples.
    [(BigReachCircle(), 10), (OverstatedFiniteSet([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]]), 30)],
    ids=["circle", "finite_set"],
)
def test_overstated_reach_is_caught(K, examples):
    with pytest.raises(AssertionError) as excinfo:
        check_manifold(K, max_examples=examples)
    assert failing(excinfo) == ["reach_not_contradicted"]


class Float64Only(tm.Circle):
    def _project(self, x):
        return super()._project(x.to(F64))


class Unchecked(tm.Circle):
    def project(self, x):  # skips the base class' input validation
        return self._project(x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=F64))


class NoEmpty(tm.Circle):
    def _sample(self, num, generator):
        rows = [tm.Circle._sample(self, 1, generator) for _ in range(num)]
        return torch.cat(rows)  # fails for num = 0


@pytest.mark.parametrize(
    ("K", "name"),
    [(Float64Only(), "dtype_preserved"), (Unchecked(), "bad_input"), (NoEmpty(), "empty_batch")],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_contract_conventions_are_caught(K, name):
    with pytest.raises(AssertionError) as excinfo:
        check_manifold(K, max_examples=5)
    assert failing(excinfo) == [name]


def test_wrong_declared_dimensions_stop_the_check():
    class Wrong(NaiveCircle):
        intrinsic_dim = 3

    with pytest.raises(
        AssertionError, match=r"\[declared_attributes\] intrinsic_dim must be an int in \[0, ambient_dim = 2\], got 3"
    ):
        check_manifold(Wrong())


def test_check_manifold_arguments_and_settings():
    with pytest.raises(TypeError, match="K"):
        check_manifold(object())
    with pytest.raises(TypeError, match="settings"):
        check_manifold(tm.Circle(), settings={"max_examples": 5})
    with pytest.raises(ValueError, match="max_examples"):
        check_manifold(tm.Circle(), max_examples=0)
    with pytest.raises(ValueError, match="rtol"):
        check_manifold(tm.Circle(), rtol=0.0)
    # A user's settings drive the search (here: a single example per property).
    calls = []

    class Counting(tm.Circle):
        def _sample(self, num, generator):
            calls.append(num)
            return super()._sample(num, generator)

    check_manifold(Counting(), settings=settings(max_examples=1, database=None, derandomize=True))
    few = len(calls)
    calls.clear()
    check_manifold(Counting(), max_examples=4)
    assert 0 < few < len(calls)


def test_same_seed_same_examples():
    def run(seed):
        seen = []

        class Recording(tm.Circle):
            def _project(self, x):
                seen.append(x.clone())
                return super()._project(x)

        check_manifold(Recording(), max_examples=3, seed=seed)
        return seen

    def same(u, v):
        return u.shape == v.shape and bool(((u == v) | (u.isnan() & v.isnan())).all())

    a, b, c = run(7), run(7), run(8)
    assert len(a) == len(b) and all(same(u, v) for u, v in zip(a, b))
    assert len(a) != len(c) or not all(same(u, v) for u, v in zip(a, c))


def test_every_property_is_documented():
    page = (ROOT / "docs" / "bring_your_own.md").read_text()
    for name in MANIFOLD_PROPERTIES:
        assert f"`{name}`" in page, name


# --------------------------------------------------------------------------------------
# check_denoiser: claims that hold and claims that fail
# --------------------------------------------------------------------------------------


def test_perturbed_denoiser_against_understated_and_true_claims():
    K = tm.Circle()
    den = tm.PerturbedProjectionDenoiser(K, eta=0.2)
    with pytest.raises(AssertionError, match=r"the claim eta = 0\.1, nu = 2\.0 fails: eta\(x, sigma\) = 0\.2"):
        check_denoiser(den, K, eta=0.1, nu=2.0, max_examples=10)
    eta_hat = check_denoiser(den, K, eta=0.25, nu=2.0, max_examples=10)
    assert eta_hat == pytest.approx(0.2, abs=1e-9)  # the measured η̂ is the denoiser's exact η


PERTURBED_FAMILIES = [
    tm.Circle(),
    tm.Torus(2.0, 0.5),
    tm.Spiral(),
    tm.FiniteSet(np.eye(3)),
    tm.Embedded(tm.Sphere(2), 5),
]


@pytest.mark.parametrize("mode", ["random", "outward", "inward"])
@pytest.mark.parametrize("K", PERTURBED_FAMILIES, ids=repr)
def test_perturbed_projection_is_exactly_its_eta(K, mode):
    """η(x, σ) = eta at every pair (THEORY §2): the claim eta passes, the measured η̂ is eta,
    and a claim below it by 1e-6 fails (far above the rounding allowance)."""
    den = tm.PerturbedProjectionDenoiser(K, 0.3, mode=mode, seed=3)
    assert check_denoiser(den, K, eta=0.3, nu=3.0, max_examples=8) == pytest.approx(0.3, abs=1e-9)
    with pytest.raises(AssertionError, match=r"the claim eta = 0\.299999, "):
        check_denoiser(den, K, eta=0.299999, nu=3.0, max_examples=8)


PROJECTION_FAMILIES = [
    tm.Circle(0.5, center=[1.0, 2.0]),
    tm.Sphere(3),
    tm.Torus(2.0, 0.5),
    tm.AffineSubspace(np.eye(4)[:2], offset=[0.0, 0.0, 1.0, 1.0]),
    tm.Spiral(),
    tm.SwissRoll(),
    tm.FiniteSet(np.random.default_rng(0).normal(size=(20, 4))),
    tm.Embedded(tm.Torus(2.0, 0.5), 5),
]


@pytest.mark.parametrize("K", PROJECTION_FAMILIES, ids=repr)
def test_projection_denoiser_has_eta_zero(K):
    assert check_denoiser(tm.ProjectionDenoiser(K), K, eta=0.0, nu=4.0, max_examples=8) < 1e-9


# Ideal denoisers: bounds on η(x, σ) over ν-admissible pairs, proved from THEORY §4.


def finite_set_eta_bound(points: torch.Tensor, n: int, nu: float, sigma: float) -> float:
    """Lemma 2 (THEORY §4) as a bound on η over ν-admissible pairs at σ.

    With ``k_1`` nearest, ``d = dist_K(x) ≤ D = ν√n σ`` and ``Δ_i = ‖k_i − k_1‖ ≥ 2 reach ≥ 2D``:
    ``‖x − k_i‖² − d² ≥ Δ_i (Δ_i − 2d) ≥ Δ_i (Δ_i − 2D)``, so
    ``‖x̂0 − k_1‖ ≤ Σ_i Δ_i exp(−Δ_i (Δ_i − 2D)/(2σ²))``, and ``d ≥ √n σ/ν``. Each term
    (divided by σ) increases with σ while ``ν√n σ ≤ reach``, so the bound at the largest
    σ of a range covers the range.
    """
    D = nu * math.sqrt(n) * sigma
    gaps = torch.cdist(points, points)
    assert D <= 0.5 * float(gaps[gaps > 0].min()), "the bound needs ν√n σ ≤ reach"
    terms = torch.where(gaps > 0, gaps * torch.exp(-gaps * (gaps - 2 * D) / (2 * sigma**2)), 0.0)
    return float(terms.sum(dim=1).max()) * nu / (math.sqrt(n) * sigma)


def sphere_eta_bound(radius: float, m: int, n: int, nu: float, sigmas: np.ndarray) -> float:
    """η over ν-admissible pairs for the vMF posterior mean of a uniform sphere in R^m ⊂ R^n.

    ``x̂0 − proj_K(x) = −R (1 − A_m(κ)) u/‖u‖`` with ``κ = R‖u‖/σ²`` (THEORY §4), and
    ``‖u‖ ≥ R − dist_K(x) ≥ R − ν√n σ``, ``dist_K(x) ≥ √n σ/ν``. ``1 − A_m`` decreases in κ
    and the smallest κ, ``R(R − ν√n σ)/σ²``, decreases in σ, so on ``[σ_j, σ_{j+1}]``
    ``η ≤ R (1 − A_m(κ(σ_{j+1}))) ν/(√n σ_j)``; the maximum over a fine grid bounds the range.
    ``A_m = I_{m/2}/I_{m/2−1}`` from scipy's scaled Bessel functions (independent of the toolkit).
    """
    a = nu * math.sqrt(n)
    assert a * sigmas.max() < radius
    kappa = radius * (radius - a * sigmas) / sigmas**2
    gap = 1.0 - special.ive(m / 2, kappa) / special.ive(m / 2 - 1, kappa)
    bound = radius * gap[1:] * nu / (math.sqrt(n) * sigmas[:-1])
    # 1 − A loses up to log10(κ) digits to cancellation: a relative 1e-6 covers κ ≤ 1e9.
    return float(bound.max()) * (1 + 1e-6)


def spread_points(num: int, n: int, seed: int) -> torch.Tensor:
    return torch.randn(num, n, dtype=F64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "K", [tm.FiniteSet(spread_points(12, 3, 0)), tm.Embedded(tm.FiniteSet(spread_points(8, 2, 1)), 6)]
)
def test_ideal_finite_set_denoiser_meets_lemma2(K):
    nu = 2.0
    points = K.base.points @ K.frame.T if isinstance(K, tm.Embedded) else K.points
    n = K.ambient_dim
    # The largest σ of the range: where Lemma 2's bound reaches η = 0.1 (bisection; the bound increases with σ).
    lo, hi = 1e-6, K.reach / (nu * math.sqrt(n))
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if finite_set_eta_bound(points, n, nu, mid) <= 0.1 else (lo, mid)
    claim = finite_set_eta_bound(points, n, nu, lo)
    eta_hat = check_denoiser(tm.ideal_denoiser(K), K, eta=claim, nu=nu, sigmas=[lo / 4, lo], max_examples=15)
    assert 0 < eta_hat <= claim
    # The same denoiser at 3x the noise breaks the claim: the σ range matters.
    with pytest.raises(AssertionError, match="the claim"):
        check_denoiser(tm.ideal_denoiser(K), K, eta=claim, nu=nu, sigmas=[lo, 3 * lo], max_examples=15)


@pytest.mark.parametrize(
    ("K", "sigma_max"),
    [(tm.Circle(), 0.1), (tm.Sphere(2, radius=2.0), 0.2), (tm.Embedded(tm.Circle(), 4), 0.05)],
    ids=repr,
)
def test_ideal_sphere_denoiser_meets_its_vmf_bound(K, sigma_max):
    nu = 2.0
    base = K.base if isinstance(K, tm.Embedded) else K
    sigmas = np.geomspace(sigma_max / 100, sigma_max, 400)
    claim = sphere_eta_bound(base.radius, base.ambient_dim, K.ambient_dim, nu, sigmas)
    assert claim < 0.5
    eta_hat = check_denoiser(tm.ideal_denoiser(K), K, eta=claim, nu=nu, sigmas=sigmas[[0, -1]], max_examples=15)
    # The bound combines the worst numerator and the worst denominator; the search gets within 4x.
    assert claim / 4 < eta_hat <= claim


def test_gaussian_subspace_denoiser_has_no_uniform_eta():
    """η(x, σ) = σ²/(s² + σ²) ‖P(x − c)‖ / dist grows with the offset along the subspace:
    no η < 1 holds on every ν-admissible pair, and the search finds pairs that break η = 0.5."""
    K = tm.AffineSubspace(np.eye(4)[:2], scale=1.0)
    with pytest.raises(AssertionError, match=r"the claim eta = 0\.5,"):
        check_denoiser(GaussianSubspaceDenoiser(K), K, eta=0.5, nu=2.0, sigmas=[0.5, 2.0], max_examples=20)


# --------------------------------------------------------------------------------------
# check_denoiser: failures other than the claim
# --------------------------------------------------------------------------------------


class NaNAtLargeSigma(tm.denoisers.Denoiser):
    """The exact projection, except that it returns NaN for σ > 0.5."""

    def __init__(self, K):
        self.inner = tm.ProjectionDenoiser(K)

    def _eps(self, x, sigma):
        eps = self.inner(x, sigma[:, 0])
        return torch.where(sigma > 0.5, torch.nan, eps)


def test_non_finite_output_is_a_failure():
    K = tm.Circle()
    with pytest.raises(AssertionError, match=r"denoiser\(x, sigma\) is not finite at x = .*eps = \[nan, nan\]"):
        check_denoiser(NaNAtLargeSigma(K), K, eta=0.0, nu=2.0, sigmas=[0.1, 1.0], max_examples=10)
    # On σ ≤ 0.5 it is the exact projection.
    assert check_denoiser(NaNAtLargeSigma(K), K, eta=0.0, nu=2.0, sigmas=[0.1, 0.5], max_examples=5) < 1e-9


def test_wrong_oracle_breaks_lemma1():
    """Lemma 1 holds for every denoiser, so a violation points at the oracle: a circle whose
    distance is off by a constant."""

    class OffsetCircle(tm.Circle):
        def _project_with_distance(self, x):
            p, dist = super()._project_with_distance(x)
            return p, dist + 0.05

    K = OffsetCircle()
    with pytest.raises(AssertionError, match=r"Lemma 1 \((lower|upper) bound\) fails .*check K with check_manifold"):
        check_denoiser(tm.ProjectionDenoiser(tm.Circle()), K, eta=0.5, nu=2.0, max_examples=10)


def test_float32_model_is_measured_at_the_point_it_sees():
    K = tm.Torus(2.0, 0.5)

    class Float32Projection(tm.denoisers.Denoiser):
        def _eps(self, x, sigma):
            assert x.dtype == torch.float32
            p = K.project(x.to(F64))
            return ((x.to(F64) - p) / sigma.to(F64)).to(torch.float32)

    # ε rounded to float32 is off by ~6e-8 relative, i.e. η ≈ 6e-8·‖x − p‖/dist: far below 1e-6,
    # and nothing is charged for the rounding of x itself.
    eta_hat = check_denoiser(Float32Projection(), K, eta=1e-6, nu=2.0, dtype=torch.float32, max_examples=10)
    assert 0 < eta_hat < 1e-6


def test_check_denoiser_arguments():
    K, den = tm.Circle(), tm.ProjectionDenoiser(tm.Circle())
    with pytest.raises(ValueError, match="eta"):
        check_denoiser(den, K, eta=1.0, nu=2.0)
    with pytest.raises(ValueError, match="nu"):
        check_denoiser(den, K, eta=0.1, nu=0.5)
    with pytest.raises(ValueError, match="sigmas"):
        check_denoiser(den, K, eta=0.1, nu=2.0, sigmas=[0.1, -1.0])
    with pytest.raises(TypeError, match="denoiser"):
        check_denoiser("eps", K, eta=0.1, nu=2.0)
    with pytest.raises(TypeError, match="dtype"):
        check_denoiser(den, K, eta=0.1, nu=2.0, dtype=torch.int64)
    plane = tm.AffineSubspace(np.eye(2))  # K = R^2: no point off K
    with pytest.raises(ValueError, match="no nu-admissible pair"):
        check_denoiser(tm.ProjectionDenoiser(plane), plane, eta=0.1, nu=2.0, max_examples=3)


def test_lemma1_bounds_formula():
    b = lemma1_bounds(torch.tensor(2.0), torch.tensor(0.5), torch.tensor(0.25), eta=0.1)
    assert {k: float(v) for k, v in b.items()} == pytest.approx(
        {"lower": 1.375, "upper": 1.625, "eta_lower": 1.45, "eta_upper": 1.55}
    )
    assert set(lemma1_bounds(1.0, 0.0, 1.0)) == {"lower", "upper"}
