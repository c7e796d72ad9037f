"""Multi-process sampling and scoring through ``torch.distributed`` (gloo on CPU, nccl on GPU).

Every sample has its own random stream, a CPU generator seeded by
``(seed, global sample index)``: it draws the sample's starting noise and then, for a
stochastic sampler (DDPM, ``mu > 0``), the sample's noise at every step. What is
bit-identical (:func:`sample_sharded`): the noise of sample ``i``, in any process,
batch or world size; and every output, for any number of processes, at a fixed
``batch_size`` (batches are cut from the global index range, so each sample is
computed in the same batch whatever the number of processes). A different
``batch_size`` changes only the model's floating-point batching effects (e.g. the
blocking of a matrix product), so outputs then agree to rounding, not bit for bit.

Launch with ``torchrun --nproc-per-node K script.py`` or ``accelerate launch`` (both
set ``RANK``/``WORLD_SIZE``; :func:`init_distributed` then joins the group), or with
``torch.multiprocessing.spawn`` and an explicit ``init_process_group``. Without a
process group every function here runs single-process.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist

from ..validation import check_int

__all__ = [
    "gather_samples",
    "init_distributed",
    "initial_noise",
    "map_sharded",
    "rank_and_world",
    "run_sharded",
    "sample_generators",
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
    return _draw_start(sample_generators(indices, seed), shape, dtype)


def sample_generators(indices: Sequence[int] | range, seed: int = 0) -> list[torch.Generator]:
    """One CPU generator per global index ``i``, seeded by ``seed * 1_000_003 + i`` (its random stream).

    Its first draw is :func:`initial_noise`; :func:`sample_sharded` passes the
    generators, so advanced, to a stochastic sampler for the noise of every step.
    """
    return [torch.Generator().manual_seed(int(seed) * _SEED_STRIDE + int(i)) for i in indices]


def _draw_start(gens: list[torch.Generator], shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    out = torch.empty((len(gens), *shape), dtype=dtype)
    for j, g in enumerate(gens):
        out[j] = torch.randn(tuple(shape), generator=g, dtype=dtype)
    return out


def gather_samples(local: torch.Tensor, num: int) -> torch.Tensor:
    """All-gather each rank's contiguous shard (from :func:`shard_range`) into ``(num, ...)``.

    Every rank receives the full tensor, in global index order, on ``local``'s device
    (gloo needs CPU tensors, nccl CUDA tensors). Single-process: returns ``local``.
    """
    world = rank_and_world()[1]
    if world == 1:
        return local
    return _gather(local, [len(shard_range(num, r, world)) for r in range(world)])


def _gather(local: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """All-gather contiguous shards of the given ``sizes`` (one per rank) in rank order."""
    rank, world = rank_and_world()
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

    Sample ``i`` has its own random stream (:func:`sample_generators`, seeded by
    ``(seed, i)``): it starts at ``x_N = init_scale · ξ_i`` with ``ξ_i`` its first draw
    (:func:`initial_noise`; ``init_scale`` defaults to ``σ_N``, THEORY §5), and a
    stochastic sampler (``tm.ddpm``, ``tm.sample(..., mu=...)``) draws that sample's
    noise at every step from the same stream (the samplers take one generator per
    sample). The samples are cut into batches of ``batch_size`` consecutive global
    indices; each process runs a contiguous block of whole batches and the results are
    all-gathered, so every rank returns all samples in index order, on ``device``.

    What is bit-identical:

    - the noise of sample ``i`` (start and steps), whatever the process, batch, batch
      size or world size;
    - every output, for any number of processes, at a fixed ``batch_size``, ``device``
      and ``dtype`` (each sample is computed in the same batch in every run), and for
      the same ``seed``: deterministic and stochastic samplers alike.

    Across different ``batch_size`` values the outputs agree only to the model's
    floating-point batching effects (the blocking of a matrix product or convolution
    depends on the batch size), typically a few units in the last place per step;
    a model that treats samples independently with batch-size-independent kernels
    (elementwise or per-row arithmetic) gives the same bits there too.

    ``sampler`` must take ``generator=`` (every sampler of ``toymanifold`` does) for
    stochastic sampling; a sampler without that keyword is called without it and must
    then be deterministic. Passing ``generator`` yourself is refused: the streams are
    what makes the result reproducible and shard-invariant.
    """
    if "generator" in sampler_kwargs:
        raise ValueError(
            "sample_sharded draws every sample's noise from its own stream seeded by (seed, index); "
            "do not pass generator (pass seed)"
        )
    num = check_int(num_samples, "num_samples", minimum=0)
    bs = check_int(batch_size, "batch_size", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    sig = torch.as_tensor(sigmas, dtype=torch.float64)
    scale = float(sig[0]) if init_scale is None else float(init_scale)
    takes_generator = _accepts_keyword(sampler, "generator")

    rank, world = rank_and_world()
    mine = _batch_shard(num, bs, rank, world)
    outs = []
    for start in range(mine.start, mine.stop, bs):
        gens = sample_generators(range(start, min(start + bs, mine.stop)), seed)
        x = (_draw_start(gens, sample_shape, dtype) * scale).to(device)
        kw = dict(sampler_kwargs, generator=gens) if takes_generator else sampler_kwargs
        outs.append(sampler(denoiser, sig, x, **kw))
    local = torch.cat(outs) if outs else torch.empty((0, *sample_shape), dtype=dtype, device=device)
    if world == 1:
        return local
    return _gather(local, [len(_batch_shard(num, bs, r, world)) for r in range(world)])


def _batch_shard(num: int, batch_size: int, rank: int, world_size: int) -> range:
    """The sample indices of ``rank``: a contiguous block of whole batches ``[k·bs, (k+1)·bs)``."""
    batches = shard_range(-(-num // batch_size), rank, world_size)
    return range(min(batches.start * batch_size, num), min(batches.stop * batch_size, num))


def _accepts_keyword(fn: Callable, name: str) -> bool:
    """Whether ``fn(..., name=...)`` is accepted (a named parameter or ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
