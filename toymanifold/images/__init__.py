"""Image models: σ-space denoisers around ε-, x0-, v- and flow-prediction networks, guidance,
diffusers adapters and schedulers, a small UNet on digits (THEORY §1, §5, §7).

``import toymanifold.images`` needs only torch (:class:`DiscreteTimeModel`,
:class:`FlowMatchModel`, :func:`classifier_free_guidance`); the diffusers-dependent names
(:class:`GradientEstimationScheduler`, :class:`FlowMatchGradientEstimationScheduler`,
:func:`from_diffusers`, training) load diffusers on first use and raise an
``ImportError`` naming ``pip install toymanifold[images]`` when it is missing.
"""

from __future__ import annotations

import importlib

from . import parameterizations
from .discrete import TIMESTEP_RULES, DiscreteTimeEpsModel, DiscreteTimeModel, sigmas_from_alphas_cumprod
from .flow import FlowMatchModel
from .guidance import ClassifierFreeGuidance, classifier_free_guidance

# name -> submodule that defines it (imported lazily: these need diffusers or are heavy)
_LAZY = {
    "GradientEstimationScheduler": "scheduler",
    "GradientEstimationSchedulerOutput": "scheduler",
    "FlowMatchGradientEstimationScheduler": "scheduler",
    "from_diffusers": "adapters",
    "alphas_cumprod_from_config": "adapters",
    "is_flow_matching_config": "adapters",
    "tiny_pipeline": "tiny",
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


__all__ = [
    "TIMESTEP_RULES",
    "ClassifierFreeGuidance",
    "DiscreteTimeEpsModel",
    "DiscreteTimeModel",
    "FlowMatchModel",
    "classifier_free_guidance",
    "parameterizations",
    "sigmas_from_alphas_cumprod",
    *_LAZY,
]
