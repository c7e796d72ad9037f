"""Peer cross-check: ``tm.ddim`` through ``DiscreteTimeEpsModel`` reproduces diffusers' ``DDIMScheduler``.

THEORY §1 maps a discrete-time ε model to σ-space (``x = z/√ᾱ_t``, ``σ_t = √((1 − ᾱ_t)/ᾱ_t)``,
the model fed ``z = x/√(1 + σ²)``), and §5 says DDIM there is ``x_{t−1} = x_t + (σ_{t−1} − σ_t) ε``.
diffusers' DDIM step (eta = 0, no clipping) is the same map written in ``z``:
``z_prev = √ᾱ_prev x̂0 + √(1 − ᾱ_prev) ε`` with ``x̂0 = (z − √(1 − ᾱ) ε)/√ᾱ``. So on the same
ε model the two must agree step by step, up to float32 rounding (1e-5 relative).

diffusers is a test-only dependency; these tests are skipped without it.
"""

from __future__ import annotations

import math

import pytest
import torch

import toymanifold as tm
from toymanifold import schedules

diffusers = pytest.importorskip("diffusers")


class EpsModel(torch.nn.Module):
    """A fixed, smooth ε model ``model(z, t)`` in float32 that depends on both ``z`` and ``t``
    (a sinusoidal timestep embedding, as UNets use). Records the timesteps it is fed."""

    def __init__(self, shape=(3, 4, 4), seed=0):
        super().__init__()
        n = math.prod(shape)
        g = torch.Generator().manual_seed(seed)
        self.W = torch.nn.Parameter(torch.randn(n, n, generator=g) / math.sqrt(n))
        self.E = torch.nn.Parameter(torch.randn(8, n, generator=g))
        self.freqs = torch.exp(-math.log(1000.0) * torch.arange(4) / 4)
        self.seen: list[torch.Tensor] = []

    def forward(self, z, t):
        self.seen.append(torch.as_tensor(t).detach().clone())
        t = torch.as_tensor(t, dtype=torch.float32).reshape(-1)
        if t.numel() == 1:
            t = t.expand(z.shape[0])
        ang = t[:, None] * self.freqs[None, :]
        emb = torch.cat([ang.sin(), ang.cos()], dim=1) @ self.E
        flat = z.reshape(z.shape[0], -1)
        return (torch.tanh(flat @ self.W + 0.3 * emb) + 0.5 * flat).reshape(z.shape)


def _run_both(n_steps, spacing, steps_offset, set_alpha_to_one, B=6):
    sch = diffusers.DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        beta_start=1e-4,
        beta_end=0.02,
        clip_sample=False,
        set_alpha_to_one=set_alpha_to_one,
        steps_offset=steps_offset,
        timestep_spacing=spacing,
        prediction_type="epsilon",
    )
    sch.set_timesteps(n_steps)
    model = EpsModel().eval()

    g = torch.Generator().manual_seed(1)
    z = torch.randn(B, 3, 4, 4, generator=g)  # diffusers' init_noise_sigma is 1
    zs = [z]
    with torch.no_grad():
        for t in sch.timesteps:
            eps = model(zs[-1], t)
            zs.append(sch.step(eps, t, zs[-1], eta=0.0).prev_sample)
    their_t = [int(t) for t in model.seen]
    model.seen.clear()

    # σ-space: the same ᾱ table (diffusers' float32 values), σ at the same timesteps,
    # then the final ᾱ (1 → σ = 0, or ᾱ_0 → σ(0)).
    den = tm.images.DiscreteTimeEpsModel(model, sch.alphas_cumprod, timestep="nearest")
    ts = schedules.timesteps(n_steps, spacing=spacing, steps_offset=steps_offset)
    assert torch.equal(ts, sch.timesteps.to(torch.int64))
    final = 0.0 if set_alpha_to_one else float(den.sigmas[0])
    sigmas = torch.cat([den.sigmas[ts], torch.tensor([final], dtype=torch.float64)])
    x = z * math.sqrt(1.0 + float(sigmas[0]) ** 2)  # x = z/√ᾱ (THEORY §1)
    tr = tm.ddim(den, sigmas, x, return_trajectory=True)
    # DiscreteTimeEpsModel passes one timestep per sample: all equal here
    assert all(bool((t == t.reshape(-1)[0]).all()) for t in model.seen)
    our_t = [int(t.reshape(-1)[0]) for t in model.seen]
    return sch, sigmas, zs, tr, their_t, our_t


@pytest.mark.parametrize(
    "n_steps,spacing,offset,one",
    [
        (10, "leading", 0, True),
        (50, "leading", 0, True),
        (20, "leading", 1, False),
        (10, "trailing", 0, True),
        (25, "trailing", 0, False),
    ],
)
def test_ddim_matches_diffusers_step_by_step(n_steps, spacing, offset, one):
    sch, sigmas, zs, tr, their_t, our_t = _run_both(n_steps, spacing, offset, one)
    assert tr.xs.dtype == torch.float32 and tr.nfe == n_steps
    # the model saw exactly the same integer timesteps
    assert our_t == their_t == sch.timesteps.tolist()
    for k in range(n_steps + 1):
        z_ours = tr.xs[k] / math.sqrt(1.0 + float(sigmas[k]) ** 2)
        rel = (torch.linalg.vector_norm(z_ours - zs[k]) / torch.linalg.vector_norm(zs[k])).item()
        # float32: a handful of roundings per step on each side (~1e-7 each), carried through
        # ≤ 50 steps of a model with Lipschitz constant ≈ 1.5
        assert rel < 1e-5, (k, rel)
    if one:
        # set_alpha_to_one: the last step lands on x̂0, in x and z alike
        torch.testing.assert_close(tr.xs[-1], zs[-1], rtol=1e-5, atol=1e-5)


def test_discrete_schedule_equals_table_lookup():
    """``schedules.discrete`` is the float64 σ table at diffusers' timesteps; diffusers'
    float32 ᾱ gives the same σ to float32 accuracy of ᾱ (checked in ᾱ-space)."""
    _, sigmas, *_ = _run_both(10, "trailing", 0, True, B=1)
    ours = schedules.discrete(10, spacing="trailing")
    torch.testing.assert_close(1 / (1 + ours**2), 1 / (1 + sigmas**2), rtol=1000 * 2**-24, atol=0)
