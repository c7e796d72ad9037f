"""Exact geometry: data sets ``K`` with projection oracles (THEORY §1), one module per family."""

from .affine import AffineSubspace
from .base import Manifold
from .embedded import Embedded
from .finite import FiniteSet
from .sphere import Circle, Sphere
from .spiral import Spiral, SwissRoll
from .torus import Torus

__all__ = ["AffineSubspace", "Circle", "Embedded", "FiniteSet", "Manifold", "Sphere", "Spiral", "SwissRoll", "Torus"]
