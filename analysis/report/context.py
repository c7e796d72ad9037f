"""What every section of the report shares: the options, the sizes, the data set and the denoisers."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import toymanifold as tm

__all__ = ["NFES", "PERTURBED_ETA", "ReportConfig", "ReportContext", "Sizes", "toy_paper_schedule"]

#: Model-evaluation budgets compared (THEORY §5: the paper reports 5, 10, 20 and 50).
NFES = (5, 10, 20, 50)
#: Relative error of the ``PerturbedProjectionDenoiser`` runs (Theorem 1's η).
PERTURBED_ETA = 0.1

_F64 = torch.float64


@dataclass
class ReportConfig:
    """Options of ``toymanifold report`` (see :mod:`analysis.cli`).

    ``manifold`` is a name of :data:`toymanifold.datasets.DATASETS`; ``steps`` the
    number of MLP training steps (``None``: 1500, or 100 with ``quick``);
    ``ambient_dim`` is ``n`` (``None``: 64, the base manifold embedded isometrically).
    """

    manifold: str = "sphere"
    ambient_dim: int | None = None
    steps: int | None = None
    seed: int = 0
    device: str = "cpu"
    quick: bool = False
    progress: bool = True


@dataclass(frozen=True)
class Sizes:
    """Batch sizes and step counts of the experiments (the default run and ``--quick``)."""

    train_steps: int
    train_batch: int
    hidden: int
    depth: int
    pe_sigmas: int  # noise levels of the (η, ν) sweep
    pe_samples: int  # pairs per noise level
    traj_batch: int  # DDIM trajectories for figures 1 and 3
    traj_steps: int
    env_batch: int  # trajectories per Theorem 1 run
    env_steps: int
    cmp_batch: int  # samples per sampler run
    ref_refine: int  # Heun sub-steps per step of the 50-step reference grid
    ideal_cmp_batch: int
    show_traj: int  # trajectories drawn in figure 6
    gammas: tuple[float, ...]

    @classmethod
    def of(cls, cfg: ReportConfig) -> Sizes:
        if cfg.quick:
            return cls(cfg.steps or 100, 128, 64, 2, 10, 48, 48, 20, 6, 12, 128, 4, 96, 8, (1.0, 1.5, 2.0, 2.5, 3.0))
        gammas = (1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0)
        return cls(cfg.steps or 1500, 256, 128, 3, 24, 256, 256, 50, 16, 20, 256, 8, 256, 12, gammas)


def toy_paper_schedule(n_steps: int, sigma_max: float) -> torch.Tensor:
    """The paper's schedule construction (THEORY §5) with the toy data's ``σ_max``.

    Steps 1–3 of THEORY §5 exactly as :func:`toymanifold.schedules.paper` builds them
    (``σ_end`` from the DDPM grid, ``N`` log-linear sigmas from ``σ_max`` to ``σ_end``,
    then a final ``σ(0) ≈ 0.01``), with ``σ_max`` chosen for the data's scale instead of
    CIFAR-10's 40. ``N + 1`` sigmas, ``N`` model evaluations.
    """
    ref, _ = tm.schedules.paper(n_steps, "cifar10")
    sigma_end, final = float(ref[-2]), float(ref[-1])
    head = tm.schedules.loglinear(sigma_max, sigma_end, n_steps - 1) if n_steps > 1 else torch.tensor([sigma_max])
    return torch.cat([head, torch.tensor([final], dtype=_F64)])


class Float64Model:
    """Evaluate a (float32, maybe on a GPU) MLP on float64 CPU input: ``ε`` in float64 on the CPU."""

    def __init__(self, model: tm.MLPDenoiser, device: torch.device):
        self.model, self.device = model, device
        self.ambient_dim = model.ambient_dim
        self.dtype = next(model.parameters()).dtype

    def __call__(self, x, sigma):
        with torch.no_grad():
            xin = x.to(device=self.device, dtype=self.dtype)
            s = sigma if isinstance(sigma, float) else torch.as_tensor(sigma).to(self.device, self.dtype)
            return self.model(xin, s).to(device=x.device, dtype=x.dtype)


def _round_sig(x: float, digits: int = 2) -> float:
    if x <= 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - math.floor(math.log10(x)))


@dataclass
class ReportContext:
    """The data set, the noise range, the trained MLP and the denoisers every section uses.

    Built once by :meth:`build` (which trains the MLP); every random draw of a section
    comes from :meth:`gen` with a section-specific key, so sections are independent of
    the order in which they run.
    """

    config: ReportConfig
    sizes: Sizes
    device: torch.device
    data: tm.datasets.ToyData
    samples: torch.Tensor  # true samples of K (the MMD reference)
    rms_norm: float
    sigma_max: float  # 10 × the RMS norm of the data, 2 significant digits
    sigma_final: float  # σ(t = 0) of the DDPM table ≈ 0.01 (THEORY §5, step 3)
    sigma_train: tuple[float, float]
    mlp: Float64Model
    training: dict[str, Any]
    ideal: Any
    ideal_note: str
    denoisers: dict[str, Any] = field(default_factory=dict)

    @property
    def manifold(self) -> tm.Manifold:
        return self.data.manifold

    def gen(self, key: int) -> torch.Generator:
        """The CPU generator of one section's draws."""
        return torch.Generator().manual_seed(1_000_003 * self.config.seed + key)

    @property
    def has_closed_form_ideal(self) -> bool:
        return self.ideal_note.startswith("closed form") or isinstance(self.manifold, tm.FiniteSet)

    @classmethod
    def build(cls, cfg: ReportConfig) -> ReportContext:
        sz = Sizes.of(cfg)
        device = torch.device(cfg.device)
        data = tm.datasets.build(cfg.manifold, cfg.ambient_dim, cfg.seed)
        K, seed = data.manifold, cfg.seed

        def gen(key: int) -> torch.Generator:
            return torch.Generator().manual_seed(1_000_003 * seed + key)

        samples = K.sample(sz.cmp_batch, gen(1))
        rms = float(samples.square().sum(1).mean().sqrt())
        sigma_max = _round_sig(10.0 * rms)
        sigma_final = float(tm.schedules.ddpm_sigmas()[0])
        sigma_train = (0.5 * sigma_final, sigma_max)

        torch.manual_seed(seed)
        model = tm.MLPDenoiser(K.ambient_dim, hidden=sz.hidden, depth=sz.depth).to(device)
        t0 = time.perf_counter()
        losses = tm.train_denoiser(
            model,
            K,
            steps=sz.train_steps,
            batch_size=sz.train_batch,
            sigma_min=sigma_train[0],
            sigma_max=sigma_train[1],
            seed=seed,
            progress=cfg.progress,
        )
        training = {
            "steps": sz.train_steps,
            "batch_size": sz.train_batch,
            "hidden": sz.hidden,
            "depth": sz.depth,
            "sigma_range": list(sigma_train),
            "sigma_data": model.sigma_data,
            "loss_first": losses[0],
            "loss_last_100_mean": float(np.mean(losses[-100:])),
            "loss_curve": [float(np.mean(losses[i : i + 50])) for i in range(0, len(losses), 50)],
            "wall_s": round(time.perf_counter() - t0, 2),
        }
        mlp = Float64Model(model, device)

        try:
            ideal, note = tm.ideal_denoiser(K), "closed form (THEORY §4)"
        except TypeError:
            ideal = tm.ideal_denoiser(tm.FiniteSet(K.sample(2000, gen(2))))
            note = (
                "no closed form for this family: the ideal denoiser of 2000 samples "
                "(finite-set formula, THEORY §4 — it memorises them)"
            )
        ctx = cls(cfg, sz, device, data, samples, rms, sigma_max, sigma_final, sigma_train, mlp, training, ideal, note)
        ctx.denoisers = {
            "projection": tm.ProjectionDenoiser(K),
            "ideal": ideal,
            "MLP": mlp,
            f"perturbed (η={PERTURBED_ETA:g})": tm.PerturbedProjectionDenoiser(K, PERTURBED_ETA, seed=seed),
        }
        return ctx
