"""toymanifold: denoising as projection, DDIM as gradient descent on the distance function.

Exact toy manifolds with projection oracles, closed-form ideal denoisers, trained
denoisers, σ-space samplers and the analysis of Permenter & Yuan (ICML 2024).
The mathematics is in docs/theory.md; the layout, the public names and the
conventions in docs/design.md.
"""

from . import datasets, schedules
from .denoisers import (
    Denoiser,
    MLPDenoiser,
    PerturbedProjectionDenoiser,
    ProjectionDenoiser,
    ideal_denoiser,
    train_denoiser,
)
from .manifolds import (
    AffineSubspace,
    Circle,
    Embedded,
    FiniteSet,
    Manifold,
    Sphere,
    Spiral,
    SwissRoll,
    Torus,
)
from .samplers import (
    StepInfo,
    Trajectory,
    ddim,
    ddpm,
    dpmpp_2m,
    gradient_estimation,
    gradient_estimation_cfg_pp,
    heun,
    nfe,
    sample,
    sample_step,
)

__version__ = "0.1.0"


def __getattr__(name: str):
    # images needs the optional `images` extra (diffusers) for part of its API, and
    # testing imports hypothesis strategies: load both on first use.
    if name in ("images", "testing"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'toymanifold' has no attribute {name!r}")


__all__ = [
    "AffineSubspace",
    "Circle",
    "Denoiser",
    "Embedded",
    "FiniteSet",
    "MLPDenoiser",
    "Manifold",
    "PerturbedProjectionDenoiser",
    "ProjectionDenoiser",
    "Sphere",
    "Spiral",
    "StepInfo",
    "SwissRoll",
    "Torus",
    "Trajectory",
    "datasets",
    "ddim",
    "ddpm",
    "dpmpp_2m",
    "gradient_estimation",
    "gradient_estimation_cfg_pp",
    "heun",
    "ideal_denoiser",
    "nfe",
    "sample",
    "sample_step",
    "schedules",
    "train_denoiser",
]
