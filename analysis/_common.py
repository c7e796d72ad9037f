"""Helpers shared by the analysis modules: JSON conversion and trajectory validation."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from toymanifold.validation import as_tensor, check_schedule

__all__ = ["dataclass_to_dict", "jsonable", "one_cpu_thread", "trajectory_iterates"]


@contextmanager
def one_cpu_thread(device: torch.device | str = "cpu") -> Iterator[None]:
    """Run torch on one intra-op thread while inside (on the CPU; other devices are left alone).

    The analysis works on small tensors (batches of tens to hundreds of points): one thread is
    fastest, and more threads than free cores turn each small product into an OpenMP barrier
    wait of milliseconds on a shared machine.
    """
    threads = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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


def trajectory_iterates(
    traj: Any, ambient_dim: int, *, allow_nonfinite: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a sampler ``Trajectory``: its schedule and its iterates.

    Returns ``(sigmas, xs)``: the schedule as float64 ``(N + 1,)`` and ``traj.xs`` as
    ``(N + 1, B, n)`` in its own dtype, with ``n == ambient_dim`` checked (and finite
    values, unless ``allow_nonfinite`` for a caller that names the bad step itself).
    """
    for attr in ("xs", "eps", "sigmas"):
        if not hasattr(traj, attr):
            raise TypeError(f"traj must be a toymanifold Trajectory (with .{attr}), got {type(traj).__name__}")
    s = check_schedule(traj.sigmas, "traj.sigmas")
    N = s.shape[0] - 1
    xs = as_tensor(traj.xs, "traj.xs", allow_nonfinite=allow_nonfinite)
    if xs.ndim < 2 or xs.shape[0] != N + 1:
        raise ValueError(f"traj.xs must have shape ({N + 1}, B, ...), got {tuple(xs.shape)}")
    xs = xs.reshape(N + 1, xs.shape[1], -1)
    if xs.shape[-1] != ambient_dim:
        raise ValueError(f"traj.xs flattens to n = {xs.shape[-1]} but manifold.ambient_dim = {ambient_dim}")
    return s, xs


def run_metadata(config: Any, device: Any, t_start: float, stage_times: dict, **extra: Any) -> dict[str, Any]:
    """The ``meta`` part of a report's ``results.json``: versions, the run's settings and its times."""
    import platform
    import time

    import toymanifold

    return {
        "toymanifold_version": toymanifold.__version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "config": dataclasses.asdict(config),
        **extra,
        "device": str(device),
        "wall_time_s": round(time.perf_counter() - t_start, 2),
        "stage_times_s": stage_times,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
