"""Helpers shared by the analysis modules: schedule validation and JSON conversion."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from toymanifold._validation import as_tensor

__all__ = ["check_schedule", "dataclass_to_dict", "jsonable"]


def check_schedule(sigmas: Any, name: str = "sigmas", *, allow_zero_last: bool = True) -> torch.Tensor:
    """A σ schedule ``σ_N > … > σ_0 ≥ 0`` in sampler order (THEORY §3), as float64 on the CPU.

    ``sigmas[0] = σ_N`` is the first (largest) noise level and ``sigmas[-1] = σ_0`` the
    last. Only the last entry may be zero (``allow_zero_last``), the case of
    Corollary 1; every other entry must be finite and ``> 0``.
    """
    s = as_tensor(sigmas, name, dtype=torch.float64).cpu()
    if s.ndim != 1 or s.shape[0] < 2:
        raise ValueError(f"{name} must be a 1-D schedule of length n_steps + 1 >= 2, got shape {tuple(s.shape)}")
    if bool((s[:-1] <= 0).any()) or float(s[-1]) < 0 or (float(s[-1]) == 0 and not allow_zero_last):
        last = "> 0" if not allow_zero_last else ">= 0"
        raise ValueError(f"{name} must be > 0 except possibly the last entry ({last}), got min {float(s.min())}")
    if not bool((s[1:] < s[:-1]).all()):
        i = int(torch.nonzero(s[1:] >= s[:-1])[0])
        raise ValueError(
            f"{name} must be strictly decreasing (sigma_N first), got {name}[{i}] = {float(s[i])} "
            f"<= {name}[{i + 1}] = {float(s[i + 1])}"
        )
    return s


def jsonable(value: Any) -> Any:
    """Tensors → (nested) lists of floats; NaN and ±inf → ``None`` so the result is strict JSON."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bool:
            return value.tolist()
        if not value.is_floating_point():
            return value.tolist()
        return jsonable(value.to(torch.float64).tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclass_to_dict(value)
    return value


def dataclass_to_dict(obj: Any) -> dict[str, Any]:
    """``{field: jsonable(value)}`` over the dataclass fields of ``obj``."""
    return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def trajectory_iterates(traj: Any, ambient_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a sampler ``Trajectory``: its schedule and its iterates.

    Returns ``(sigmas, xs)``: the schedule as float64 ``(N + 1,)`` and ``traj.xs`` as
    ``(N + 1, B, n)`` in its own dtype, with ``n == ambient_dim`` checked.
    """
    for attr in ("xs", "eps", "sigmas"):
        if not hasattr(traj, attr):
            raise TypeError(f"traj must be a toymanifold Trajectory (with .{attr}), got {type(traj).__name__}")
    s = check_schedule(traj.sigmas, "traj.sigmas")
    N = s.shape[0] - 1
    xs = as_tensor(traj.xs, "traj.xs")
    if xs.ndim < 2 or xs.shape[0] != N + 1:
        raise ValueError(f"traj.xs must have shape ({N + 1}, B, ...), got {tuple(xs.shape)}")
    xs = xs.reshape(N + 1, xs.shape[1], -1)
    if xs.shape[-1] != ambient_dim:
        raise ValueError(f"traj.xs flattens to n = {xs.shape[-1]} but manifold.ambient_dim = {ambient_dim}")
    return s, xs
