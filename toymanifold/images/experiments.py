"""The paper's real-image experiment, offline: η along DDIM trajectories on the digits (THEORY §2, §4)."""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["eta_along_ddim"]


@torch.no_grad()
def eta_along_ddim(
    *,
    n_steps: int = 50,
    sigmas: Any = None,
    num_samples: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    denoiser: Any = None,
    trajectory_denoiser: Any = None,
) -> dict[str, torch.Tensor]:
    """Relative projection error ``η(x_t, σ_t)`` along DDIM trajectories on the digits (THEORY §2).

    ``K`` is ``tm.datasets.digits()`` (1 797 points in ``[−1, 1]^64``). DDIM runs with
    ``trajectory_denoiser`` (default: the finite-set ideal denoiser of ``K``, THEORY §4)
    from ``x_N = σ_N ξ``; at every visited ``(x_t, σ_t)`` the function measures, for
    ``denoiser`` (default: the same ideal denoiser),

    - ``dist_K(x_t)`` and ``r = dist_K(x_t)/(√n σ_t)`` (THEORY §2),
    - ``η = ‖x̂0(x_t, σ_t) − proj_K(x_t)‖ / dist_K(x_t)`` with ``x̂0 = x − σ ε``.

    ``denoiser`` may be any σ-space denoiser on flat ``(B, 64)`` inputs, e.g. a trained
    UNet wrapped by :func:`toymanifold.images.from_diffusers` and reshaped.

    Parameters
    ----------
    n_steps : int
        DDIM steps when ``sigmas`` is not given: log-linear from 80 to 0.01 (THEORY §3).
    sigmas : array-like, optional
        The schedule (strictly decreasing, positive, so every step is measured).

    Returns
    -------
    dict
        ``sigma`` (N,), ``eta`` (N, B), ``r`` (N, B), ``dist`` (N, B), all float64 on the
        CPU, and ``final_dist`` (B,): ``dist_K`` of the DDIM output.
    """
    import toymanifold as tm

    K = tm.datasets.digits()
    dev = torch.device(device)
    ideal = tm.ideal_denoiser(K)
    traj_den = ideal if trajectory_denoiser is None else trajectory_denoiser
    den = ideal if denoiser is None else denoiser
    if sigmas is None:
        sig = tm.schedules.loglinear(80.0, 0.01, n_steps)
    else:
        sig = torch.as_tensor(sigmas, dtype=torch.float64)
    n = K.ambient_dim
    g = torch.Generator().manual_seed(seed)
    x = (float(sig[0]) * torch.randn(num_samples, n, generator=g, dtype=torch.float64)).to(dev, dtype)
    records: dict[str, list] = {"eta": [], "r": [], "dist": []}

    def measure(info) -> None:
        xt = info.x
        proj = K.project(xt.to(torch.float64).cpu())
        dist = (xt.to(torch.float64).cpu() - proj).norm(dim=1)
        if den is traj_den:
            x0 = info.x0_hat.to(torch.float64).cpu()
        else:
            x0 = (xt - info.sigma * den(xt, info.sigma)).to(torch.float64).cpu()
        records["eta"].append((x0 - proj).norm(dim=1) / dist)
        records["r"].append(dist / (math.sqrt(n) * info.sigma))
        records["dist"].append(dist)

    out = tm.ddim(traj_den, sig, x, callback=measure)
    final = out.to(torch.float64).cpu()
    return {
        "sigma": sig[:-1].clone(),
        "eta": torch.stack(records["eta"]),
        "r": torch.stack(records["r"]),
        "dist": torch.stack(records["dist"]),
        "final_dist": (final - K.project(final)).norm(dim=1),
    }
