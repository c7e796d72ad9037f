"""Denoisers ``ε(x, σ)``: exact projection, controlled errors, closed-form ideal, trained MLP."""

from .base import Denoiser
from .ideal import (
    EmbeddedDenoiser,
    FiniteSetDenoiser,
    GaussianSubspaceDenoiser,
    IdealDenoiser,
    SphereDenoiser,
    bessel_ratio,
    ideal_denoiser,
)
from .mlp import MLPDenoiser, sample_sigmas, train_denoiser
from .projection import PerturbedProjectionDenoiser, ProjectionDenoiser

__all__ = [
    "Denoiser",
    "EmbeddedDenoiser",
    "FiniteSetDenoiser",
    "GaussianSubspaceDenoiser",
    "IdealDenoiser",
    "MLPDenoiser",
    "PerturbedProjectionDenoiser",
    "ProjectionDenoiser",
    "SphereDenoiser",
    "bessel_ratio",
    "ideal_denoiser",
    "sample_sigmas",
    "train_denoiser",
]
