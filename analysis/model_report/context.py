"""What every section of the model report shares: options, the network, the training set ``K``, its ideal denoiser."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import toymanifold as tm
from toymanifold.samplers import Trajectory

from .measures import TrainingSetErrors, errors_along_trajectory, sampler_trajectory

__all__ = [
    "DATA_SETS",
    "NFES",
    "InputError",
    "LoadedModel",
    "ModelReportConfig",
    "ModelReportContext",
    "ModelSizes",
    "load_model",
    "load_training_set",
]

#: Model-evaluation budgets of the sampler comparison (THEORY §5: the paper reports 5, 10, 20, 50).
NFES = (5, 10, 20, 50)
#: The training sets a model report can take as ``K``.
DATA_SETS = ("digits", "cifar10")
#: σ_N of every run: the paper's choice for CIFAR-10 (THEORY §5), far above R/√n for both data sets.
SIGMA_MAX = 40.0

_F64 = torch.float64


class InputError(ValueError):
    """The model, the data or their combination cannot be used (the message says why, in one line).

    ``option`` names the command-line option at fault (``"--model"``, ``"--data-root"``).
    """

    def __init__(self, message: str, option: str = "--model"):
        super().__init__(message)
        self.option = option


@dataclass
class ModelReportConfig:
    """Options of ``toymanifold report --model PATH --data NAME`` (see :mod:`analysis.cli`)."""

    model: str
    data: str = "digits"
    data_root: str | None = None
    seed: int = 0
    device: str = "cpu"
    quick: bool = False
    progress: bool = True


@dataclass(frozen=True)
class ModelSizes:
    """Batch sizes and step counts of the model report (the default run and ``--quick``)."""

    traj_batch: int  # DDIM runs for sections 1–3 (network and ideal denoiser, the same starts)
    traj_steps: int
    traj_shown: int  # single runs drawn in the Theorem 1 figure
    gen_samples: int  # DDIM samples for the memorisation section
    nn_reference: int | None  # training images whose own nearest-neighbour distance is measured (None: all)
    cmp_samples: int  # samples per sampler and budget (Fréchet distance)
    ode_samples: int  # of those, the ones compared with the ODE reference
    ref_refine: int  # Heun sub-steps per step of the 50-step reference grid
    classifier_epochs: int
    batch: int  # network batch size
    shown: int  # sample / nearest-image pairs shown

    @classmethod
    def of(cls, cfg: ModelReportConfig) -> ModelSizes:
        if cfg.quick:
            return cls(16, 20, 8, 64, 256, 64, 16, 2, 2, 256, 8)
        nn_ref = None if cfg.data == "digits" else 2000
        return cls(128, 50, 12, 1000, nn_ref, 1000, 64, 8, 25, 500, 12)


@dataclass(frozen=True)
class LoadedModel:
    """A diffusers ``UNet2DModel`` with the config of the scheduler it was trained with."""

    unet: Any
    scheduler_config: dict
    kind: str  # "toymanifold train-images checkpoint" or "diffusers folder"
    folder: Path


def _diffusers_folders(path: Path) -> tuple[Path, Path] | None:
    """``(model folder, scheduler config file)`` of a diffusers layout, or None."""
    if (path / "unet" / "config.json").is_file() and (path / "scheduler" / "scheduler_config.json").is_file():
        return path / "unet", path / "scheduler" / "scheduler_config.json"
    if (path / "config.json").is_file() and (path / "scheduler_config.json").is_file():
        return path, path / "scheduler_config.json"
    return None


def load_model(path: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Load a trained ``UNet2DModel`` (ε-, x0- or v-prediction) and its scheduler config from ``path``.

    ``path`` is a ``toymanifold train-images`` output folder (``model/`` and
    ``scheduler/`` in it or in its ``checkpoint/``) or a diffusers folder: a pipeline's
    ``save_pretrained`` (``unet/`` and ``scheduler/``) or a model's ``save_pretrained``
    with its scheduler's beside it (``config.json`` and ``scheduler_config.json``).
    Weights are read from safetensors only (nothing is unpickled). Raises
    :class:`InputError` when ``path`` holds no such model.
    """
    from toymanifold.images._optional import require
    from toymanifold.images.train import load_unet

    p = Path(path).expanduser()
    if not p.is_dir():
        raise InputError(f"{str(p)!r} is not a folder (expected a train-images output or a diffusers model folder)")
    try:
        diffusers = require("diffusers", "the model report")
    except ImportError as exc:
        raise InputError(str(exc)) from None
    found = _diffusers_folders(p)
    try:
        if found is None:
            try:
                unet, sched = load_unet(p, device=device)
            except FileNotFoundError:
                raise InputError(
                    f"{str(p)!r} is not a model: expected a train-images output (model/ and scheduler/, or "
                    "checkpoint/ holding them) or a diffusers folder (unet/ and scheduler/, or config.json and "
                    "scheduler_config.json)"
                ) from None
            return _checked(LoadedModel(unet, dict(sched), "toymanifold train-images checkpoint", p))
        model_dir, sched_file = found
        cls_name = json.loads((model_dir / "config.json").read_text()).get("_class_name")
        if cls_name != "UNet2DModel":
            raise InputError(f"{str(model_dir)!r} holds a {cls_name!r}, not a diffusers UNet2DModel")
        unet = diffusers.UNet2DModel.from_pretrained(model_dir, use_safetensors=True).to(device).eval()
        return _checked(LoadedModel(unet, json.loads(sched_file.read_text()), "diffusers folder", p))
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise InputError(f"cannot load a model from {str(p)!r}: {' '.join(str(exc).split())}") from None


def _checked(model: LoadedModel) -> LoadedModel:
    """``model`` if its scheduler config defines a DDPM noise table (THEORY §1; any prediction type, THEORY §7)."""
    from toymanifold.images import alphas_cumprod_from_config

    try:
        alphas_cumprod_from_config(model.scheduler_config)
    except (ValueError, TypeError) as exc:
        raise InputError(f"cannot use the model in {str(model.folder)!r}: {' '.join(str(exc).split())}") from None
    return model


def load_training_set(data: str, data_root: str | None = None) -> tuple[torch.Tensor, str]:
    """The training images ``(M, C, H, W)`` in ``[−1, 1]`` (float32, CPU) and a description.

    ``"digits"``: the 1 797 images of scikit-learn's digits, all of which
    ``toymanifold train-images --dataset digits`` trains on. ``"cifar10"``: the 50 000
    training images from ``data_root/cifar-10-batches-py`` (never downloaded here).
    """
    from toymanifold.images.data import CIFAR10_FOLDER, load_cifar10, load_digits_images

    if data == "digits":
        return load_digits_images("all")[0], "scikit-learn's 8×8 digits (all 1 797 images: the training set)"
    if data == "cifar10":
        if data_root is None:
            raise InputError(f"--data cifar10 needs --data-root (the folder holding {CIFAR10_FOLDER})", "--data-root")
        try:
            x, _ = load_cifar10(data_root, train=True)
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise InputError(" ".join(str(exc).split()), "--data-root") from None
        return x, f"CIFAR-10 training set ({x.shape[0]} images from {data_root})"
    raise InputError(f"must be one of {', '.join(DATA_SETS)}, got {data!r}", "--data")


class FlatIdeal:
    """``K``'s ideal denoiser (THEORY §4) on image-shaped input, evaluated in float64 on ``device``."""

    def __init__(self, K: tm.FiniteSet, device: torch.device):
        self.ideal = tm.ideal_denoiser(K)
        self.device = device

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1).to(device=self.device, dtype=_F64)
        return self.ideal(flat, sigma).reshape(x.shape).to(device=x.device, dtype=x.dtype)


@dataclass
class ModelReportContext:
    """The network as a σ-space denoiser, the training set ``K`` and its ideal denoiser.

    Built once by :meth:`build`; every random draw of a section comes from :meth:`gen`
    with a section-specific key. The DDIM runs of sections 1–3 (network and ideal
    denoiser from the same starts) are made once, by :meth:`runs`.
    """

    config: ModelReportConfig
    sizes: ModelSizes
    device: torch.device
    model: LoadedModel
    denoiser: Any  # the network, σ-space (THEORY §1)
    images: torch.Tensor  # (M, C, H, W) float32, CPU
    data_description: str
    K: tm.FiniteSet
    ideal: FlatIdeal
    sigma_max: float
    sigma_min: float  # σ(0) of the model's table: the last σ of every run
    load_s: float = 0.0
    _runs: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    @property
    def n(self) -> int:
        return self.K.ambient_dim

    def gen(self, key: int) -> torch.Generator:
        """The CPU generator of one section's draws."""
        return torch.Generator().manual_seed(1_000_003 * self.config.seed + key)

    def noise(self, count: int, key: int) -> torch.Tensor:
        """``count`` standard normal images (float64, on the report's device)."""
        return torch.randn((count, *self.shape), generator=self.gen(key), dtype=_F64).to(self.device)

    def schedule(self, n_steps: int) -> torch.Tensor:
        """Log-linear σ from ``σ_max`` to ``σ(0)`` of the model's table, ``n_steps`` model calls (THEORY §3)."""
        return tm.schedules.loglinear(self.sigma_max, self.sigma_min, n_steps)

    @classmethod
    def build(cls, cfg: ModelReportConfig) -> ModelReportContext:
        """Load the data and the model, and check that they fit together (:class:`InputError` if not)."""
        from toymanifold.images import from_diffusers

        t0 = time.perf_counter()
        device = torch.device(cfg.device)
        images, description = load_training_set(cfg.data, cfg.data_root)
        model = load_model(cfg.model, device)
        try:
            den = from_diffusers(model.unet, model.scheduler_config, data_shape=tuple(images.shape[1:]))
        except (ValueError, TypeError) as exc:
            raise InputError(f"the model does not fit --data {cfg.data}: {' '.join(str(exc).split())}") from None
        K = tm.FiniteSet(images.reshape(images.shape[0], -1).to(_F64))
        table = den.sigmas
        sigma_min = float(table[table > 0][0])
        sigma_max = min(SIGMA_MAX, float(table[-1]))
        return cls(
            cfg, ModelSizes.of(cfg), device, model, den, images, description, K, FlatIdeal(K, device),
            sigma_max, sigma_min, round(time.perf_counter() - t0, 3),
        )  # fmt: skip

    def runs(self) -> dict[str, Any]:
        """DDIM with the network and with the ideal denoiser from the same starts ``σ_N ξ``, and their errors.

        ``{"sigmas", "xi", "network": Trajectory, "ideal": Trajectory, "network_errors":
        TrainingSetErrors (with the ideal denoiser at the network's iterates),
        "ideal_errors": TrainingSetErrors}``.
        """
        if not self._runs:
            sz, show = self.sizes, self.config.progress
            sig = self.schedule(sz.traj_steps)
            xi = self.noise(sz.traj_batch, 1)
            x = float(sig[0]) * xi
            net: Trajectory = sampler_trajectory(
                self.denoiser, sig, x, batch_size=sz.batch, progress=show, desc="DDIM, network"
            )
            ideal: Trajectory = sampler_trajectory(
                self.ideal, sig, x, batch_size=sz.batch, progress=show, desc="DDIM, ideal denoiser"
            )
            net_err: TrainingSetErrors = errors_along_trajectory(
                net, self.K, self.ideal, device=self.device, progress=show
            )
            ideal_err = errors_along_trajectory(ideal, self.K, device=self.device, progress=show)
            self._runs = {
                "sigmas": sig, "xi": xi.cpu(), "network": net, "ideal": ideal,
                "network_errors": net_err, "ideal_errors": ideal_err,
            }  # fmt: skip
        return self._runs

    def model_info(self) -> dict[str, Any]:
        """What the report says about the model and the data."""
        cfg = dict(self.model.unet.config)
        den = self.denoiser
        return {
            "path": str(self.model.folder),
            "kind": self.model.kind,
            "class": type(self.model.unet).__name__,
            "parameters": int(sum(p.numel() for p in self.model.unet.parameters())),
            "block_out_channels": list(cfg.get("block_out_channels", [])),
            "sample_size": cfg.get("sample_size"),
            "in_channels": cfg.get("in_channels"),
            "num_train_timesteps": den.num_train_timesteps,
            "sigma_table": [den.sigma_min, den.sigma_max],
            "timestep_rule": den.timestep,
            "beta_schedule": self.model.scheduler_config.get("beta_schedule"),
            "prediction_type": self.model.scheduler_config.get("prediction_type", "epsilon"),
        }

    def data_info(self) -> dict[str, Any]:
        pts = self.K.points
        center = pts.mean(0)
        return {
            "name": self.config.data,
            "description": self.data_description,
            "M": len(self.K),
            "n": self.n,
            "shape": list(self.shape),
            "R": float(torch.linalg.vector_norm(pts - center, dim=1).max()),
            "mean_norm": float(torch.linalg.vector_norm(center)),
            "rms_norm": float(pts.square().sum(1).mean().sqrt()),
            "sigma_max": self.sigma_max,
            "sigma_min": self.sigma_min,
            "corollary3_scale": float(torch.linalg.vector_norm(pts, dim=1).max()) / math.sqrt(self.n),
        }
