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

from .denoiser_checks import check_denoiser, lemma1_bounds
from .manifold_checks import MANIFOLD_PROPERTIES, check_manifold
from .strategies import (
    FAMILIES,
    characteristic_length,
    manifolds,
    perturbed_denoisers,
    points_far,
    points_near,
    points_on,
    schedules,
    seeds,
)

__all__ = [
    "FAMILIES",
    "MANIFOLD_PROPERTIES",
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
