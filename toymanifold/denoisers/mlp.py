"""Trained denoisers: a σ-conditioned MLP for points in ``R^n`` and its training loop.

The model is trained on the objective of THEORY §1, ``E ‖ε_θ(x0 + σε, σ) − ε‖²``,
whose minimiser is the ideal denoiser ``ε*``; its test loss can therefore be compared
with the Bayes floor ``E ‖ε*(x, σ) − ε‖²`` computed by ``ideal_denoiser`` on the same
draws (``benchmarks/denoisers.py``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..manifolds.base import Manifold
from ..validation import (
    as_points,
    as_tensor,
    check_int,
    check_nonnegative,
    check_positive,
    check_real,
    make_generator,
)
from .base import Denoiser

__all__ = ["MLPDenoiser", "train_denoiser"]

_FORMAT = "toymanifold.MLPDenoiser"
# 2: the SHA-256 covers the configuration too (version 1 hashed the weights only).
_FORMAT_VERSION = 2
_CONFIG_NAME = "config.json"
_WEIGHTS_NAME = "model.safetensors"


class MLPDenoiser(Denoiser, nn.Module):
    """A σ-conditioned MLP noise predictor ``ε_θ(x, σ)`` for points in ``R^n`` (THEORY §1).

    Preconditioning generalises Karras et al. (2022, "EDM") from a scalar data scale to
    the data covariance. With the data mean ``μ`` and covariance ``Σ = V diag(λ) Vᵀ``
    (set from data by :meth:`set_data_statistics`, which :func:`train_denoiser` calls),
    the denoised estimate is

    ``x̂0 = μ + V diag(λ/(λ + σ²)) Vᵀ (x − μ) + c_out F(c_in (x − μ), log σ)``,

    i.e. the exact MMSE denoiser of the Gaussian ``N(μ, Σ)`` plus a learned nonlinear
    correction. ``s² = mean(λ)`` is the per-coordinate data variance,
    ``c_in = 1/√(σ² + s²)`` gives the network unit-variance input at every σ and
    ``c_out = σ s/√(σ² + s²)`` a unit-scale target. Why the covariance: for data on a
    low-dimensional set in ``R^n`` (``n ≫ d``, THEORY §2) the ideal ``ε`` along the
    directions where the data has no variance is ``x_⊥/σ`` — a linear map with gain
    ``1/σ`` that an MLP can only approximate badly; the Gaussian term carries it exactly,
    and ``F`` learns only the curvature. With ``Σ = s² I`` this is exactly EDM.
    Eigenvalues are floored at ``1e−6 · max λ`` so that directions without data variance
    stay numerically safe. In ε form (no division by σ):
    ``ε_θ = V diag(σ/(λ + σ²)) Vᵀ (x − μ) − (s/√(σ² + s²)) F``.

    ``log σ`` enters as sinusoidal features at fixed frequencies, mapped by a linear
    layer and added to every hidden layer (residual SiLU blocks).

    Use it as a module (``model.forward(x, sigma)`` on ``(B, n)`` tensors with ``sigma``
    of shape ``(B,)`` or ``(B, 1)``) or as a denoiser (``model(x, sigma)`` validates
    its input like every :class:`Denoiser`: ``x`` of shape ``(B, *shape)`` flattening to
    ``n``, a float or ``(B,)`` sigma ``> 0``; a tensor ``x`` must have the model's dtype
    and device, a NumPy ``x`` is converted to them).

    Parameters
    ----------
    ambient_dim : int
        ``n``.
    hidden : int
        Width of the hidden layers.
    depth : int
        Number of hidden layers (``≥ 1``).
    embedding_dim : int
        Number of sinusoidal features of ``log σ`` (even).

    Examples
    --------
    >>> import toymanifold as tm
    >>> model = tm.MLPDenoiser(2, hidden=32, depth=2)
    >>> losses = tm.train_denoiser(model, tm.Circle(), steps=20, progress=False)
    >>> model([[1.0, 0.0]], 0.1).shape
    torch.Size([1, 2])
    """

    def __init__(self, ambient_dim: int, hidden: int = 256, depth: int = 3, embedding_dim: int = 32):
        nn.Module.__init__(self)
        self.ambient_dim = check_int(ambient_dim, "ambient_dim", minimum=1)
        self.hidden = check_int(hidden, "hidden", minimum=1)
        self.depth = check_int(depth, "depth", minimum=1)
        self.embedding_dim = check_int(embedding_dim, "embedding_dim", minimum=2)
        if self.embedding_dim % 2:
            raise ValueError(f"embedding_dim must be even, got {embedding_dim}")
        n = self.ambient_dim
        # Data statistics (buffers, so they are saved with the weights); N(0, I) until set.
        self.register_buffer("data_mean", torch.zeros(n))
        self.register_buffer("cov_eigvecs", torch.eye(n))
        self.register_buffer("cov_eigvals", torch.ones(n))
        # Frequencies of the log σ features: geometric from 1/8 to 8 cycles per unit of
        # log σ, so both the whole range (σ over several decades) and fine changes show.
        half = self.embedding_dim // 2
        self.register_buffer("freqs", torch.logspace(math.log10(1 / 8), math.log10(8.0), half))
        self.inp = nn.Linear(n, self.hidden)
        self.emb = nn.Sequential(nn.Linear(self.embedding_dim, self.hidden), nn.SiLU())
        # FiLM: each hidden layer gets a σ-dependent scale and shift (2 × hidden outputs).
        self.emb_proj = nn.ModuleList(nn.Linear(self.hidden, 2 * self.hidden) for _ in range(self.depth))
        self.layers = nn.ModuleList(nn.Linear(self.hidden, self.hidden) for _ in range(self.depth - 1))
        self.out = nn.Linear(self.hidden, n)
        self.act = nn.SiLU()

    # -- configuration ------------------------------------------------------------
    def config(self) -> dict:
        """The constructor arguments (JSON-serialisable)."""
        return {
            "ambient_dim": self.ambient_dim,
            "hidden": self.hidden,
            "depth": self.depth,
            "embedding_dim": self.embedding_dim,
        }

    def _param(self) -> torch.Tensor:
        return self.out.weight

    @property
    def sigma_data(self) -> float:
        """``s = √mean(λ)``: the per-coordinate standard deviation of the data."""
        return float(self.cov_eigvals.mean().sqrt())

    @torch.no_grad()
    def set_data_statistics(self, data) -> None:
        """Set ``μ`` and ``Σ`` from samples ``data`` ``(N, n)`` (float64 estimate, ``1/N`` normalisation)."""
        x = as_points(data, "data", self.ambient_dim, allow_empty=False).to(torch.float64)
        mean = x.mean(0)
        xc = x - mean
        cov = xc.T @ xc / x.shape[0]
        lam, vec = torch.linalg.eigh(cov)
        lam_max = float(lam.max())
        if lam_max <= 0:
            raise ValueError("data must not be a single repeated point (zero covariance)")
        lam = lam.clamp_min(1e-6 * lam_max)
        p = self._param()
        self.data_mean.copy_(mean.to(p.dtype))
        self.cov_eigvecs.copy_(vec.to(p.dtype))
        self.cov_eigvals.copy_(lam.to(p.dtype))

    # -- model ----------------------------------------------------------------------
    def embed_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        """Sinusoidal features of ``log σ`` ``(B, embedding_dim)``."""
        phase = 2 * math.pi * torch.log(sigma).reshape(-1, 1) * self.freqs
        return torch.cat([torch.sin(phase), torch.cos(phase)], dim=1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``ε_θ(x, σ)`` for ``x`` ``(B, n)`` and ``sigma`` ``(B,)`` or ``(B, 1)`` (no validation)."""
        sigma = sigma.reshape(-1, 1).to(x.dtype)
        var = sigma * sigma
        lam = self.cov_eigvals
        s2 = lam.mean()
        c_in = torch.rsqrt(var + s2)
        coords = (x - self.data_mean) @ self.cov_eigvecs  # Vᵀ(x − μ): eigen-coordinates
        # Gaussian part: V diag(σ/(λ + σ²)) Vᵀ (x − μ), in ε form.
        lin = (coords * (sigma / (lam + var))) @ self.cov_eigvecs.T
        # Network input: the Gaussian (Wiener) estimate in eigen-coordinates, normalised
        # to variance λ/(λ + σ²) ≤ 1 per direction. Directions without data variance
        # carry pure noise; this input suppresses them instead of making the network
        # learn to ignore n − d noisy inputs.
        # The total variance Σ λ/(λ + σ²) ≈ (number of directions with data) is then
        # rescaled to n, so the first layer's pre-activations are O(1) (standard
        # initialisation assumes unit-variance inputs); otherwise the SiLUs start in their
        # linear range and the network spends hundreds of steps before it bends.
        snr = lam / (lam + var)
        z = coords * (lam.sqrt() / (lam + var)) * torch.sqrt(lam.shape[0] / snr.sum(1, keepdim=True))
        e = self.emb(self.embed_sigma(sigma))
        h = self.inp(z)
        for i, proj in enumerate(self.emb_proj):
            scale, shift = proj(e).chunk(2, dim=1)
            # Multiplicative conditioning lets the slope in x grow like 1/σ near the data,
            # which the ideal ε needs across the manifold's normal directions.
            z = self.act(h * (1 + scale) + shift)
            h = z if i == 0 else h + self.layers[i - 1](z)  # residual blocks
        return lin - (s2.sqrt() * c_in) * self.out(h)

    # A network runs in its own dtype (a float16 model on float16 input), not in float32.
    half_in_float32 = False

    def _eps(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.forward(x, sigma)

    def __call__(self, x, sigma) -> torch.Tensor:
        p = self._param()
        if isinstance(x, torch.Tensor):
            if x.dtype != p.dtype:
                raise ValueError(
                    f"x has dtype {x.dtype} but the model's parameters are {p.dtype}; "
                    f"convert x (x.to({p.dtype})) or the model (model.to({x.dtype}))"
                )
            if x.device != p.device:
                raise ValueError(f"x is on device {x.device} but the model is on {p.device}")
        else:
            x = as_tensor(x, "x", dtype=p.dtype, device=p.device)
        return Denoiser.__call__(self, x, sigma)

    def __repr__(self) -> str:
        return nn.Module.__repr__(self)

    # -- checkpoints ------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write ``path/config.json`` and ``path/model.safetensors`` (a directory).

        Each file is written to a temporary file in the same directory and renamed over
        the target (``os.replace``), so a crash never leaves a half-written file. The
        weights are written first; the config records the SHA-256 of the configuration
        and the weights together (:func:`_checkpoint_digest`), so ``load`` detects a
        truncated or mismatched weights file and an edited configuration alike.
        """
        from safetensors.torch import save as st_save

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        blob = st_save(tensors, metadata={"format": _FORMAT})
        _atomic_write(path / _WEIGHTS_NAME, blob)
        cfg = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "config": self.config(),
            "dtype": str(self._param().dtype).removeprefix("torch."),
        }
        cfg["sha256"] = _checkpoint_digest(cfg, blob)
        _atomic_write(path / _CONFIG_NAME, (json.dumps(cfg, indent=2) + "\n").encode())
        return path

    @classmethod
    def load(cls, path, device: torch.device | str | None = None) -> MLPDenoiser:
        """Read a model written by :meth:`save`; nothing in the files is executed.

        Raises ``FileNotFoundError`` if a file is missing and ``ValueError`` for a
        corrupt, truncated, edited or foreign checkpoint, and for weights holding NaN
        or inf (a diverged run is never loaded as a model).
        """
        from safetensors.torch import load as st_load

        path = Path(path)
        cfg_file, w_file = path / _CONFIG_NAME, path / _WEIGHTS_NAME
        for f in (cfg_file, w_file):
            if not f.is_file():
                raise FileNotFoundError(f"not an MLPDenoiser checkpoint: {f} is missing")
        try:
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"corrupt checkpoint config {cfg_file}: {exc}") from exc
        if not isinstance(cfg, dict) or cfg.get("format") != _FORMAT:
            raise ValueError(f"{cfg_file} is not an MLPDenoiser checkpoint config (format {_FORMAT!r} expected)")
        if cfg.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"unsupported checkpoint format_version {cfg.get('format_version')!r} in {cfg_file} (this version "
                f"reads {_FORMAT_VERSION}; version 1 checksummed the weights only: load it with the toymanifold "
                "that wrote it and save it again)"
            )
        blob = w_file.read_bytes()
        if _checkpoint_digest(cfg, blob) != cfg.get("sha256"):
            raise ValueError(
                f"corrupt checkpoint {path}: the SHA-256 of the configuration and the weights does not match "
                f"the one recorded in {cfg_file} (a truncated or replaced weights file, or an edited configuration)"
            )
        try:
            tensors = st_load(blob)
            model = cls(**cfg["config"])
            dtype = getattr(torch, str(cfg.get("dtype", "float32")))
            if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
                raise ValueError(f"bad dtype {cfg.get('dtype')!r}")
            model.to(dtype)
            model.load_state_dict(tensors, strict=True)
        except Exception as exc:  # safetensors, constructor and shape errors all mean a bad file
            raise ValueError(f"corrupt or foreign MLPDenoiser checkpoint {path}: {exc}") from exc
        for name, t in tensors.items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ValueError(f"checkpoint {path} holds non-finite weights (NaN or inf) in {name!r}: refused")
        return model.to(device) if device is not None else model


def _checkpoint_digest(cfg: dict, blob: bytes) -> str:
    """SHA-256 of the configuration (canonical JSON, without the digest itself) followed by the weights."""
    fields = {k: v for k, v in cfg.items() if k != "sha256"}
    h = hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())
    h.update(b"\0")
    h.update(blob)
    return h.hexdigest()


def _atomic_write(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def sample_sigmas(
    num: int,
    generator: torch.Generator,
    *,
    sigma_dist: str = "loguniform",
    sigma_min: float = 0.01,
    sigma_max: float = 10.0,
    log_mean: float = -1.2,
    log_std: float = 1.2,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``num`` noise levels: log-uniform on ``[sigma_min, sigma_max]`` or log-normal ``exp(N(log_mean, log_std²))``."""
    u = torch.rand(num, generator=generator, dtype=torch.float64)
    if sigma_dist == "loguniform":
        lo, hi = math.log(sigma_min), math.log(sigma_max)
        s = torch.exp(lo + (hi - lo) * u)
    elif sigma_dist == "lognormal":
        s = torch.exp(log_mean + log_std * torch.randn(num, generator=generator, dtype=torch.float64))
    else:
        raise ValueError(f"sigma_dist must be 'loguniform' or 'lognormal', got {sigma_dist!r}")
    return s.to(dtype)


def train_denoiser(
    model: MLPDenoiser,
    data,
    *,
    steps: int = 2000,
    batch_size: int = 512,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    sigma_dist: str = "loguniform",
    sigma_min: float = 0.01,
    sigma_max: float = 10.0,
    log_mean: float = -1.2,
    log_std: float = 1.2,
    seed: int = 0,
    progress: bool = True,
    fit_statistics: bool = True,
) -> list[float]:
    """Train ``model`` in place on ``E ‖ε_θ(x0 + σε, σ) − ε‖²`` (THEORY §1); return the loss per step.

    Parameters
    ----------
    model : MLPDenoiser
        Trained in place, in its own dtype and on its own device.
    data : Manifold or array-like of shape (N, n)
        A manifold gives fresh samples ``x0 ~ p`` every step (so the Bayes floor is
        that of ``ideal_denoiser(manifold)``); a tensor is sampled with replacement.
    steps, batch_size : int
        Number of AdamW steps and examples per step.
    lr, weight_decay : float
        AdamW settings; the learning rate follows a cosine decay to 0.
    sigma_dist : {"loguniform", "lognormal"}
        ``σ`` log-uniform on ``[sigma_min, sigma_max]`` or ``exp(N(log_mean, log_std²))``.
    seed : int
        Seeds the initialisation-independent randomness (data, σ, noise); the same seed
        and the same initial model give the same run.
    progress : bool
        Show a tqdm progress bar.
    fit_statistics : bool
        Set the model's data mean and covariance from the data first (see
        :class:`MLPDenoiser`); turn off to continue training a model.

    Returns
    -------
    list of float
        The training loss (mean over batch and coordinates) at every step.

    Raises
    ------
    FloatingPointError
        When the loss or its gradient becomes NaN or inf (divergence, float16 overflow).
        The check runs before each update, so the model is left with the last finite
        parameters; the message names the step and the likely cause.
    """
    from tqdm.auto import tqdm

    if not isinstance(model, MLPDenoiser):
        raise TypeError(f"model must be an MLPDenoiser, got {type(model).__name__}")
    steps = check_int(steps, "steps", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    lr = check_positive(lr, "lr")
    weight_decay = check_nonnegative(weight_decay, "weight_decay")
    log_mean = check_real(log_mean, "log_mean")
    log_std = check_positive(log_std, "log_std")
    sigma_min = check_positive(sigma_min, "sigma_min")
    sigma_max = check_positive(sigma_max, "sigma_max")
    if sigma_max <= sigma_min:
        raise ValueError(f"sigma_max must be > sigma_min, got {sigma_max} <= {sigma_min}")
    if sigma_dist not in ("loguniform", "lognormal"):
        raise ValueError(f"sigma_dist must be 'loguniform' or 'lognormal', got {sigma_dist!r}")
    seed = check_int(seed, "seed", minimum=0)
    p = model._param()
    dtype, device = p.dtype, p.device
    g = make_generator(seed)

    if isinstance(data, Manifold):
        if data.ambient_dim != model.ambient_dim:
            raise ValueError(f"data has ambient_dim {data.ambient_dim} but the model expects {model.ambient_dim}")

        def draw(num: int) -> torch.Tensor:
            return data.sample(num, g, dtype=dtype)

        estimate = data.sample(max(8192, 20 * data.ambient_dim), make_generator(seed + 1))
    else:
        pts = as_points(data, "data", model.ambient_dim, allow_empty=False).to(torch.float64)

        def draw(num: int) -> torch.Tensor:
            return pts[torch.randint(pts.shape[0], (num,), generator=g)].to(dtype)

        estimate = pts
    if fit_statistics:
        model.set_data_statistics(estimate.to(device))

    sigma_kw = dict(
        sigma_dist=sigma_dist,
        sigma_min=sigma_min,
        sigma_max=sigma_max,
        log_mean=log_mean,
        log_std=log_std,
        dtype=dtype,
    )
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps)))
    history: list[float] = []
    previous = [q.detach().clone() for q in params]  # the parameters before the last update
    model.train()
    bar = tqdm(range(steps), disable=not progress, desc="train_denoiser", leave=False)
    try:
        for _ in bar:
            x0 = draw(batch_size).to(device)
            sigma = sample_sigmas(batch_size, g, **sigma_kw).to(device)
            noise = torch.randn(x0.shape, generator=g, dtype=dtype).to(device)
            x = x0 + sigma[:, None] * noise
            loss = (model.forward(x, sigma) - noise).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # Checked before the update, so a non-finite loss or gradient never reaches the weights.
            loss_value = _finite_or_restore(loss, params, previous, len(history), dtype, lr)
            for kept, q in zip(previous, params):
                kept.copy_(q.detach())
            opt.step()
            sched.step()
            history.append(loss_value)
            if progress and len(history) % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(history[-50:]):.4f}")
    finally:
        bar.close()
        model.eval()
    return history


def _finite_or_restore(loss, params, previous, step: int, dtype: torch.dtype, lr: float) -> float:
    """The loss as a float if it and the gradient are finite; else restore finite parameters and raise.

    If the parameters themselves are no longer finite (an update with finite gradients
    can still overflow float16 weights), those before the last update (``previous``)
    are put back; otherwise the current ones are kept: either way the model is left
    with the last finite parameters.
    """
    grads = [q.grad.detach().float() for q in params if q.grad is not None]
    grad_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(gr) for gr in grads]))
    loss_value, grad_value = torch.stack([loss.detach().float(), grad_norm]).tolist()  # one synchronisation
    if math.isfinite(loss_value) and math.isfinite(grad_value):
        return loss_value
    with torch.no_grad():
        if all(bool(torch.isfinite(q).all()) for q in params):
            kept = "the current (finite) parameters were kept"
        else:
            for q, old in zip(params, previous):
                q.copy_(old)
            kept = f"the parameters were restored to those before step {step - 1}"
    raise FloatingPointError(
        f"training diverged at step {step}: loss = {loss_value}, gradient norm = {grad_value}; {kept}. "
        f"Likely cause: {_divergence_cause(dtype, lr)}"
    )


def _divergence_cause(dtype: torch.dtype, lr: float) -> str:
    if dtype == torch.float16:
        return (
            "float16 overflow (the loss, its gradient or AdamW's second moment exceeded 65504, or its eps "
            "underflowed): train in float32 (or bfloat16) and cast the trained model"
        )
    return f"the learning rate lr = {lr} is too high for this model and data: lower it"
