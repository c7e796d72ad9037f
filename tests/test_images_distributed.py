"""Sharded sampling over 2 CPU processes (gloo) equals single-process sampling."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

import toymanifold as tm
from toymanifold.images import DiscreteTimeEpsModel
from toymanifold.images.distributed import initial_noise, map_sharded, sample_sharded, shard_range

NUM, BATCH, SHAPE = 7, 4, (1, 4, 4)


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
    return samples, scores


def worker(rank, world, folder):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=world)
    try:
        samples, scores = run_all()
        save_file({"samples": samples, "scores": scores}, f"{folder}/rank{rank}.safetensors")
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
    single, single_scores = run_all()  # conftest runs tests on one thread, like the workers
    mp.spawn(worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        got = load_file(str(tmp_path / f"rank{rank}.safetensors"))
        # same per-sample noise, same batch grouping (batches of 4 within each shard of 4 + 3):
        # the same float64 operations, so the same bits
        torch.testing.assert_close(got["samples"], single, rtol=0, atol=0)
        torch.testing.assert_close(got["scores"], single_scores, rtol=0, atol=0)
    assert single.shape == (NUM, *SHAPE) and bool(torch.isfinite(single).all())


def test_stochastic_samplers_refused():
    den, _ = make_denoiser()
    with pytest.raises(ValueError, match="deterministic"):
        sample_sharded(tm.ddpm, den, [1.0, 0.5], SHAPE, 2, mu=0.5)
