"""Multi-process sampling and scoring through ``torch.distributed`` (gloo on CPU, nccl on GPU).

Every sample has its own starting noise, drawn from a generator seeded by
``(seed, global sample index)``: a sample is the same whichever process makes it and
whatever the batch it is in, so ``N`` processes give the same images as one
(THEORY §5's deterministic samplers; up to floating-point batching effects of the
model, which are zero for models without cross-sample operations on the CPU).

Launch with ``torchrun --nproc-per-node K script.py`` or ``accelerate launch`` (both
set ``RANK``/``WORLD_SIZE``; :func:`init_distributed` then joins the group), or with
``torch.multiprocessing.spawn`` and an explicit ``init_process_group``. Without a
process group every function here runs single-process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "gather_samples",
    "init_distributed",
    "initial_noise",
    "map_sharded",
    "rank_and_world",
    "run_sharded",
    "sample_sharded",
    "shard_range",
]

_SEED_STRIDE = 1_000_003  # a prime: seeds of (seed, index) pairs do not collide for index < stride


def init_distributed(backend: str | None = None) -> tuple[int, int]:
    """Join the process group described by ``RANK``/``WORLD_SIZE`` (torchrun, accelerate).

    ``backend`` defaults to nccl when CUDA is available, else gloo. Returns
    ``(rank, world_size)``; ``(0, 1)`` when no launcher set the variables.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(backend)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", dist.get_rank() % torch.cuda.device_count())))
    return dist.get_rank(), dist.get_world_size()


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the current process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_range(num: int, rank: int, world_size: int) -> range:
    """Contiguous block of ``range(num)`` owned by ``rank`` (sizes differ by at most one)."""
    base, extra = divmod(num, world_size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def initial_noise(
    indices: Sequence[int] | range, shape: Sequence[int], seed: int = 0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``ξ_i ~ N(0, I)`` of ``shape`` for each global index ``i``, each from its own CPU generator.

    Seeded by ``seed * 1_000_003 + i``: the same ``(seed, i)`` gives the same ``ξ_i`` in
    any process, batch or device.
    """
    out = torch.empty((len(indices), *shape), dtype=dtype)
    g = torch.Generator()
    for j, i in enumerate(indices):
        g.manual_seed(int(seed) * _SEED_STRIDE + int(i))
        out[j] = torch.randn(tuple(shape), generator=g, dtype=dtype)
    return out


def gather_samples(local: torch.Tensor, num: int) -> torch.Tensor:
    """All-gather each rank's contiguous shard (from :func:`shard_range`) into ``(num, ...)``.

    Every rank receives the full tensor, in global index order, on ``local``'s device
    (gloo needs CPU tensors, nccl CUDA tensors). Single-process: returns ``local``.
    """
    rank, world = rank_and_world()
    if world == 1:
        return local
    sizes = [len(shard_range(num, r, world)) for r in range(world)]
    if local.shape[0] != sizes[rank]:
        raise ValueError(f"rank {rank} holds {local.shape[0]} samples but its shard has {sizes[rank]}")
    width = max(sizes)
    padded = local.new_zeros((width, *local.shape[1:]))
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


def map_sharded(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Apply ``fn`` to this rank's shard of ``x`` (in batches) and all-gather the results.

    For scoring: e.g. classifier features of all samples, computed by every process on
    its part. ``fn`` must act on each sample independently.
    """
    rank, world = rank_and_world()
    idx = shard_range(x.shape[0], rank, world)
    outs = []
    for b in range(idx.start, idx.stop, batch_size):
        chunk = x[b : min(b + batch_size, idx.stop)]
        outs.append(fn(chunk.to(device) if device is not None else chunk))
    if not outs:  # an empty shard still takes part in the gather
        probe = fn(x[:1].to(device) if device is not None else x[:1])
        outs = [probe[:0]]
    return gather_samples(torch.cat(outs), x.shape[0])


def run_sharded(fn: Callable[[range], torch.Tensor], num: int) -> torch.Tensor:
    """Call ``fn(indices)`` on this rank's shard of ``range(num)`` and all-gather the result."""
    rank, world = rank_and_world()
    return gather_samples(fn(shard_range(num, rank, world)), num)


def sample_sharded(
    sampler: Callable[..., torch.Tensor],
    denoiser: Callable,
    sigmas: Any,
    sample_shape: Sequence[int],
    num_samples: int,
    *,
    seed: int = 0,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    init_scale: float | None = None,
    **sampler_kwargs,
) -> torch.Tensor:
    """Sample ``num_samples`` with ``sampler`` (``tm.ddim``, ``tm.gradient_estimation``, ...), sharded.

    Sample ``i`` starts at ``x_N = init_scale · ξ_i`` with ``ξ_i`` from
    :func:`initial_noise` (``init_scale`` defaults to ``σ_N``, THEORY §5) and is run
    by this process if ``i`` is in its :func:`shard_range`; the shards are all-gathered,
    so every rank returns all samples in index order, on ``device``. Only deterministic
    samplers are allowed (``mu`` must be 0): per-sample noise inside the loop would
    depend on the batch.
    """
    if float(sampler_kwargs.get("mu", 0.0)) != 0.0 or "generator" in sampler_kwargs:
        raise ValueError("sample_sharded supports deterministic samplers only (mu = 0, no generator)")
    sig = torch.as_tensor(sigmas, dtype=torch.float64)
    scale = float(sig[0]) if init_scale is None else float(init_scale)

    def run(indices: range) -> torch.Tensor:
        outs = []
        for b in range(indices.start, indices.stop, batch_size):
            chunk = range(b, min(b + batch_size, indices.stop))
            x = (initial_noise(chunk, sample_shape, seed, dtype) * scale).to(device)
            outs.append(sampler(denoiser, sig, x, **sampler_kwargs))
        if not outs:
            return torch.empty((0, *sample_shape), dtype=dtype, device=device)
        return torch.cat(outs)

    return run_sharded(run, int(num_samples))
