"""Denoisers ``ε(x, σ)``: exact projection, controlled errors, closed-form ideal, trained MLP."""

from .base import Denoiser
from .ideal import ideal_denoiser
from .mlp import MLPDenoiser, train_denoiser
from .projection import PerturbedProjectionDenoiser, ProjectionDenoiser

__all__ = [
    "Denoiser",
    "MLPDenoiser",
    "PerturbedProjectionDenoiser",
    "ProjectionDenoiser",
    "ideal_denoiser",
    "train_denoiser",
]
