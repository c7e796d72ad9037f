"""Denoisers built from a manifold's projection oracle (THEORY §2, §3).

``ProjectionDenoiser`` is the exact projection (η = 0): its denoised estimate is
``x̂0 = proj_K(x)``, so DDIM with it is exact gradient descent on ``f = ½ dist_K²``
(THEORY §3). ``PerturbedProjectionDenoiser`` adds an error of *exactly* known norm
``‖x̂0 − proj_K(x)‖ = eta · dist_K(x)``, i.e. relative projection error
``η(x, σ) = eta`` at every ``(x, σ)`` (THEORY §2) — the hypothesis of Lemma 1 and
Theorem 1 with equality, whatever the direction.
"""

from __future__ import annotations

import hashlib
import numbers

import torch

from ..manifolds.base import Manifold
from ..validation import as_manifold, check_eta
from .base import Denoiser

__all__ = ["PerturbedProjectionDenoiser", "ProjectionDenoiser"]

_MODES = ("random", "outward", "inward")


class ProjectionDenoiser(Denoiser):
    """The exact projection denoiser ``ε(x, σ) = (x − proj_K(x)) / σ`` (THEORY §2, §3).

    Its denoised estimate is ``x̂0 = x − σ ε = proj_K(x)``, so its relative projection
    error is ``η = 0`` and DDIM with it is gradient descent on ``½ dist_K²`` with step
    ``β_t = 1 − σ_{t−1}/σ_t`` (THEORY §3): the nearest point stays fixed and the
    distance-to-noise ratio ``r_t`` stays constant.

    Parameters
    ----------
    manifold : Manifold
        The data set ``K``; its ``project`` oracle is called on every evaluation.

    Examples
    --------
    >>> import toymanifold as tm
    >>> den = tm.ProjectionDenoiser(tm.Circle())
    >>> den([[2.0, 0.0]], 0.5)  # (x − (1, 0)) / 0.5
    tensor([[2., 0.]], dtype=torch.float64)
    """

    def __init__(self, manifold: Manifold):
        self.manifold = as_manifold(manifold)
        self.ambient_dim = manifold.ambient_dim

    def _eps(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return (x - self.manifold.project(x)) / sigma

    def __repr__(self) -> str:
        return f"ProjectionDenoiser({self.manifold!r})"


class PerturbedProjectionDenoiser(Denoiser):
    """Projection plus an error of exactly known norm: ``x̂0 = proj_K(x) + e``, ``‖e‖ = eta · dist_K(x)``.

    The relative projection error of THEORY §2 is ``η(x, σ) = eta`` for every
    ``x ∉ K`` and every ``σ`` (the error does not depend on ``σ``); on ``K`` itself
    ``e = 0``. So this denoiser is an ``(eta, ν)``-approximate projection for every
    ``ν`` and Lemma 1 / Theorem 1 (THEORY §3) apply with ``η = eta``.

    Modes (the direction of ``e``; ``p = proj_K(x)``, ``d = dist_K(x)``):

    ``"random"``
        A uniformly distributed direction in ``R^n``. The direction is a deterministic
        function of ``(seed, x)``: each call seeds a fresh CPU generator from
        ``seed`` and a BLAKE2 hash of the batch's bytes (values, dtype, shape), draws
        standard normals in float64 and normalises them. Consequences: the same seed
        and the same batch give the same ``e`` on every run and every device; a
        different batch (e.g. the next sampler iterate) gives a fresh, independent
        direction; a row's direction depends on the whole batch it came in.
    ``"outward"``
        ``e = eta · (x − p)``: ``x̂0`` lies on the segment from ``p`` to ``x``. A DDIM
        step then lands at distance exactly ``(1 − β(1 − eta)) d``, the upper bound of
        Lemma 1 (THEORY §3) with equality.
    ``"inward"``
        ``e = −eta · (x − p)``: ``x̂0`` is the reflection-side point ``p − eta (x − p)``.
        A DDIM step lands at distance exactly ``(1 − β(1 + eta)) d`` — Lemma 1's lower
        bound with equality — whenever ``β(1 + eta) ≤ 1`` and ``p`` is the unique nearest
        point of the new iterate (always for convex ``K``; for curved ``K`` while the
        iterate stays within the reach).

    ``"outward"`` is also the worst case: by Lemma 1 no error of norm ``eta · d`` can
    push the next iterate farther than ``(1 − β)d + β eta d``, which it attains.

    Parameters
    ----------
    manifold : Manifold
        The data set ``K``.
    eta : float
        Relative error, ``0 ≤ eta < 1``.
    mode : {"random", "outward", "inward"}
        Direction of the error, see above.
    seed : int
        Seed of the ``"random"`` mode (ignored otherwise).

    Examples
    --------
    >>> import torch, toymanifold as tm
    >>> K = tm.Circle()
    >>> den = tm.PerturbedProjectionDenoiser(K, eta=0.25, mode="random", seed=1)
    >>> x = torch.tensor([[3.0, 0.0]], dtype=torch.float64)
    >>> float((den.denoise(x, 0.1) - K.project(x)).norm() / K.distance(x))  # doctest: +ELLIPSIS
    0.25...
    """

    def __init__(self, manifold: Manifold, eta: float, mode: str = "random", seed: int = 0):
        self.manifold = as_manifold(manifold)
        self.ambient_dim = manifold.ambient_dim
        self.eta = check_eta(eta, "eta")
        if not isinstance(mode, str) or mode not in _MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, _MODES))}, got {mode!r}")
        self.mode = mode
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
        self.seed = int(seed)

    def error(self, x: torch.Tensor, p: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """The error ``e`` (B, n) for a flat batch ``x`` with nearest points ``p`` and distances ``dist``."""
        if self.mode == "random":
            direction = self._random_directions(x)
        else:
            # The unit normal (x − p)/d; rows on K (d = 0) get e = 0 below.
            safe = torch.where(dist > 0, dist, torch.ones_like(dist))
            direction = (x - p) / safe[:, None]
            if self.mode == "inward":
                direction = -direction
        return (self.eta * dist)[:, None] * direction

    def _random_directions(self, x: torch.Tensor) -> torch.Tensor:
        h = hashlib.blake2b(digest_size=8)
        h.update(str(self.seed).encode())
        h.update(f"{x.dtype}{tuple(x.shape)}".encode())
        h.update(x.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        g = torch.Generator(device="cpu")
        # manual_seed takes a 64-bit value; keep it non-negative.
        g.manual_seed(int.from_bytes(h.digest(), "little") >> 1)
        z = torch.randn(x.shape, generator=g, dtype=torch.float64)
        z = z / torch.linalg.vector_norm(z, dim=1, keepdim=True)
        return z.to(dtype=x.dtype, device=x.device)

    def _eps(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        p, dist = self.manifold.project_with_distance(x)
        x0 = p + self.error(x, p, dist.to(x.dtype))
        return (x - x0) / sigma

    def __repr__(self) -> str:
        return f"PerturbedProjectionDenoiser({self.manifold!r}, eta={self.eta}, mode={self.mode!r}, seed={self.seed})"
