"""Image models: discrete-time ε models, diffusers adapters and schedulers, a small UNet on digits.

``import toymanifold.images`` needs only torch; the diffusers-dependent names
(:class:`GradientEstimationScheduler`, :func:`from_diffusers`, training) load
diffusers on first use and raise an ``ImportError`` naming
``pip install toymanifold[images]`` when it is missing.
"""

from __future__ import annotations

import importlib

from .discrete import TIMESTEP_RULES, DiscreteTimeEpsModel, sigmas_from_alphas_cumprod

# name -> submodule that defines it (imported lazily: these need diffusers or are heavy)
_LAZY = {
    "GradientEstimationScheduler": "scheduler",
    "GradientEstimationSchedulerOutput": "scheduler",
    "from_diffusers": "adapters",
    "alphas_cumprod_from_config": "adapters",
    "load_unet": "train",
    "train_unet": "train",
    "add_train_images_command": "train",
    "load_cifar10": "data",
    "load_digits_images": "data",
    "sample_sharded": "distributed",
    "run_sharded": "distributed",
    "eta_along_ddim": "experiments",
    "DigitsClassifier": "classifier",
    "train_classifier": "classifier",
    "load_classifier": "classifier",
}


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'toymanifold.images' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["TIMESTEP_RULES", "DiscreteTimeEpsModel", "sigmas_from_alphas_cumprod", *_LAZY]
