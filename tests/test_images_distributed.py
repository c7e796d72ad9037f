"""Sharded sampling over 2 CPU processes (gloo) equals single-process sampling, bit for bit.

Every sample has its own random stream seeded by (seed, index), for the start and for a
stochastic sampler's noise; batches are cut from the global index range, so the same
batch size gives the same bits for any number of processes.
"""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

import toymanifold as tm
from toymanifold.images import DiscreteTimeEpsModel
from toymanifold.images.distributed import initial_noise, map_sharded, sample_sharded, shard_range

# Batches of 3: [0-2], [3-5], [6]; two processes take batches {0, 1} and {2}.
NUM, BATCH, SHAPE = 7, 3, (1, 4, 4)


def make_denoiser():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv2d(4, 1, 3, padding=1))
    net = net.double()

    def model(z, t):
        return net(z) * (1.0 + t.double().reshape(-1, 1, 1, 1) / 1000.0)

    model.parameters = net.parameters
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    return DiscreteTimeEpsModel(model, abar), net


def run_all():
    den, _ = make_denoiser()
    sig = tm.schedules.loglinear(40.0, 0.05, 6)
    samples = sample_sharded(
        tm.gradient_estimation, den, sig, SHAPE, NUM, seed=3, batch_size=BATCH, dtype=torch.float64
    )
    scores = map_sharded(lambda x: x.flatten(1).square().sum(1, keepdim=True), samples, batch_size=2)
    ddpm = sample_sharded(tm.ddpm, den, sig, SHAPE, NUM, seed=3, batch_size=BATCH, dtype=torch.float64)
    return samples, scores, ddpm


def worker(rank, world, folder):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=world)
    try:
        samples, scores, ddpm = run_all()
        save_file({"samples": samples, "scores": scores, "ddpm": ddpm}, f"{folder}/rank{rank}.safetensors")
    finally:
        dist.destroy_process_group()


def test_shard_ranges_cover_once():
    for num in (0, 1, 7, 10):
        for world in (1, 2, 3):
            got = [i for r in range(world) for i in shard_range(num, r, world)]
            assert got == list(range(num))


def test_noise_is_per_sample():
    a = initial_noise(range(5), SHAPE, seed=1)
    b = initial_noise([3, 4], SHAPE, seed=1)
    torch.testing.assert_close(a[3:], b, rtol=0, atol=0)
    assert not torch.equal(initial_noise([3], SHAPE, seed=2), b[:1])


def test_two_gloo_processes_equal_one(tmp_path):
    single, single_scores, single_ddpm = run_all()  # conftest runs tests on one thread, like the workers
    mp.spawn(worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        got = load_file(str(tmp_path / f"rank{rank}.safetensors"))
        # same per-sample streams, same batches (cut from the global index range): the same
        # float64 operations, so the same bits, for the deterministic and the stochastic sampler
        torch.testing.assert_close(got["samples"], single, rtol=0, atol=0)
        torch.testing.assert_close(got["scores"], single_scores, rtol=0, atol=0)
        torch.testing.assert_close(got["ddpm"], single_ddpm, rtol=0, atol=0)
    assert single.shape == (NUM, *SHAPE) and bool(torch.isfinite(single).all())


def test_stochastic_samplers_are_reproducible_per_sample():
    """DDPM: the same seed gives the same samples, another seed others; sample i does not
    depend on the batch it is drawn in (its noise comes from its own stream)."""
    den, _ = make_denoiser()
    sig = tm.schedules.loglinear(40.0, 0.05, 6)
    kw = dict(dtype=torch.float64)
    a = sample_sharded(tm.ddpm, den, sig, SHAPE, 5, seed=1, batch_size=2, **kw)
    again = sample_sharded(tm.ddpm, den, sig, SHAPE, 5, seed=1, batch_size=2, **kw)
    torch.testing.assert_close(again, a, rtol=0, atol=0)
    assert not torch.allclose(sample_sharded(tm.ddpm, den, sig, SHAPE, 5, seed=2, batch_size=2, **kw), a)
    # The stochastic part differs from DDIM's run from the same starts.
    assert not torch.allclose(sample_sharded(tm.ddim, den, sig, SHAPE, 5, seed=1, batch_size=2, **kw), a)
    # Another batch size: only the network's batching changes, i.e. float64 rounding
    # (2^-52 per operation over 6 steps of a two-layer network, then mu = 1/2's noise).
    b = sample_sharded(tm.ddpm, den, sig, SHAPE, 5, seed=1, batch_size=3, **kw)
    torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


def test_batch_size_changes_no_bits_for_a_per_sample_model():
    """With an elementwise model (the ideal denoiser of N(0, I) data), no arithmetic depends
    on the batch: every batch size gives the same bits, for DDIM and DDPM."""

    def gaussian_eps(x, sigma):  # ε* of N(0, I): x σ / (1 + σ²), elementwise
        return x * (sigma / (1.0 + sigma * sigma))

    sig = tm.schedules.loglinear(40.0, 0.05, 6)
    for sampler in (tm.ddim, tm.ddpm):
        ref = sample_sharded(sampler, gaussian_eps, sig, SHAPE, 7, seed=4, batch_size=7)
        for bs in (1, 2, 3, 5):
            got = sample_sharded(sampler, gaussian_eps, sig, SHAPE, 7, seed=4, batch_size=bs)
            torch.testing.assert_close(got, ref, rtol=0, atol=0)


def test_bad_arguments():
    den, _ = make_denoiser()
    with pytest.raises(ValueError, match="num_samples"):
        sample_sharded(tm.ddim, den, [1.0, 0.5], SHAPE, -1)
    with pytest.raises(ValueError, match="generator"):
        sample_sharded(tm.ddpm, den, [1.0, 0.5], SHAPE, 2, generator=0)
    with pytest.raises(ValueError, match="batch_size"):
        sample_sharded(tm.ddim, den, [1.0, 0.5], SHAPE, 2, batch_size=0)
    assert sample_sharded(tm.ddim, den, [1.0, 0.5], SHAPE, 0).shape == (0, *SHAPE)
