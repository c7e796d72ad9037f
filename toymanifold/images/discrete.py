"""Discrete-time ε-prediction models as σ-space denoisers (THEORY §1, §5).

A DDPM-style model predicts the noise of ``z_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε`` from
``(z_t, t)`` with an integer timestep ``t = 0 … T − 1``. THEORY §1 maps it to the
σ-parameterization: ``x = z/√ᾱ_t`` and ``σ_t = √((1 − ᾱ_t)/ᾱ_t)``, so that
``x = x0 + σ_t ε`` with the *same* ε. Evaluating the model at a noise level ``σ``
therefore means: feed ``z = x/√(1 + σ²)`` (because ``ᾱ = 1/(1 + σ²)``) and a
timestep whose ``σ_t`` matches ``σ``; the model output is ε unchanged.
"""

from __future__ import annotations

from typing import Any

import torch

from ..denoisers.base import Denoiser
from ..validation import as_tensor, check_positive, check_sigma

__all__ = ["TIMESTEP_RULES", "DiscreteTimeEpsModel", "sigmas_from_alphas_cumprod", "validate_alphas_cumprod"]

#: The σ → timestep rules understood by :class:`DiscreteTimeEpsModel`.
TIMESTEP_RULES = ("interpolate", "nearest", "paper")


def validate_alphas_cumprod(alphas_cumprod: Any, name: str = "alphas_cumprod") -> torch.Tensor:
    """Check ``ᾱ_t`` (1-D, at least 2 entries, finite, in (0, 1], strictly decreasing).

    Returns a float64 CPU copy.
    """
    a = as_tensor(alphas_cumprod, name, dtype=torch.float64).detach().to("cpu")
    if a.ndim != 1 or a.shape[0] < 2:
        raise ValueError(f"{name} must be a 1-D array with at least 2 entries, got shape {tuple(a.shape)}")
    if bool((a <= 0).any()) or bool((a > 1).any()):
        raise ValueError(f"{name} must lie in (0, 1], got min {a.min().item():.6g} and max {a.max().item():.6g}")
    d = a[1:] - a[:-1]
    if not bool((d < 0).all()):
        i = int(torch.nonzero(d >= 0)[0, 0])
        raise ValueError(
            f"{name} must be strictly decreasing in t, got {name}[{i}] = {a[i].item():.9g} "
            f"<= {name}[{i + 1}] = {a[i + 1].item():.9g}"
        )
    return a.clone()


def sigmas_from_alphas_cumprod(alphas_cumprod: Any) -> torch.Tensor:
    """``σ_t = √((1 − ᾱ_t)/ᾱ_t)`` for ``t = 0 … T − 1`` in float64 (THEORY §1); increasing in t."""
    a = validate_alphas_cumprod(alphas_cumprod)
    return ((1.0 - a) / a).sqrt()


def _model_dtype_device(model: Any) -> tuple[torch.dtype | None, torch.device | None]:
    """The dtype and device of a model's first floating parameter, if it has any."""
    params = getattr(model, "parameters", None)
    if callable(params):
        try:
            for p in params():
                if p.is_floating_point():
                    return p.dtype, p.device
        except TypeError:  # a non-Module object with an unrelated `parameters`
            pass
    return None, None


class DiscreteTimeEpsModel(Denoiser):
    """A discrete-time ε-prediction model ``model(z, t)`` as a σ-space denoiser (THEORY §1).

    ``denoiser(x, sigma)`` feeds the model ``z = x/√(1 + σ²)`` and the timestep
    ``t(σ)`` chosen by ``timestep`` (below), and returns the model's ε. Because
    ``x = z/√ᾱ`` and ``ε`` is the same noise in both parameterizations (THEORY §1),
    every σ-space sampler (``tm.ddim``, ``tm.gradient_estimation``, ...) runs on the
    model unchanged.

    Parameters
    ----------
    model : callable
        ``model(z, t)`` with ``z`` of shape ``(B, *shape)`` and ``t`` a ``(B,)``
        tensor; returns ε of the shape of ``z``, a tuple whose first entry is ε, or an
        object with a ``.sample`` attribute (diffusers' ``UNet2DModel`` output). The
        model is never moved or cast: inputs go to its device and dtype (of its first
        floating parameter, if it has parameters) and ``x`` must already be on that
        device; ε comes back in ``x``'s dtype.
    alphas_cumprod : array-like, shape (T,)
        ``ᾱ_t`` for ``t = 0 … T − 1``: 1-D, in (0, 1], strictly decreasing.
    timestep : {"interpolate", "nearest", "paper"}
        How ``σ`` becomes a timestep, with ``σ(t) = √((1 − ᾱ_t)/ᾱ_t)`` increasing in t:

        - ``"interpolate"`` (default): a fractional ``t`` by linear interpolation of
          ``t`` in ``log σ`` between the two table entries that bracket ``σ``, as
          k-diffusion's ``DiscreteEpsDDPMDenoiser`` does (the model receives a float
          timestep; diffusers' UNets accept one). If ``ᾱ_0 = 1`` (``σ(0) = 0``) the first
          interval ``[0, σ(1)]`` is interpolated linearly in ``σ`` instead.
        - ``"nearest"``: the integer nearest to the ``"interpolate"`` value, i.e. the
          ``t`` whose ``log σ(t)`` is nearest to ``log σ`` (a tie goes to the smaller t).
        - ``"paper"``: the integer rule of the paper's diffusers scheduler,
          ``torch.searchsorted(σ_table, σ)``: the *smallest* ``t`` with ``σ(t) ≥ σ``,
          i.e. ``σ(t − 1) < σ ≤ σ(t)``. A ``σ`` equal to a table entry ``σ(t)`` maps to
          that ``t`` (THEORY §5). (The paper code's docstrings write
          ``σ(t−1) ≤ σ < σ(t)``, which differs only when ``σ`` equals a table entry,
          where it would give ``t + 1``; no σ of the paper's schedule is one.)

        ``σ`` outside ``[σ(0), σ(T−1)]`` is clamped to the nearest end of the table for
        the timestep only (``t = 0`` or ``t = T − 1``); ``z`` always uses the given ``σ``.
    clip_sample : bool
        Clip the denoised estimate ``x̂0 = x − σ ε`` to ``[−clip_sample_range,
        clip_sample_range]`` and return ``ε = (x − x̂0)/σ`` of the clipped ``x̂0``: the
        σ-space form of diffusers' ``clip_sample`` as the paper's scheduler and
        :class:`toymanifold.images.GradientEstimationScheduler` apply it (to ε, before
        ``γ`` combines outputs). Default ``False``: ε as the model returns it.
    clip_sample_range : float
        The clipping bound (1 for data in [−1, 1]).

    Examples
    --------
    >>> import torch, toymanifold as tm
    >>> abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    >>> model = lambda z, t: torch.zeros_like(z)
    >>> den = tm.images.DiscreteTimeEpsModel(model, abar)
    >>> den(torch.ones(2, 1, 4, 4), 1.0).shape
    torch.Size([2, 1, 4, 4])
    """

    ambient_dim = None

    def __init__(
        self,
        model: Any,
        alphas_cumprod: Any,
        timestep: str = "interpolate",
        *,
        clip_sample: bool = False,
        clip_sample_range: float = 1.0,
    ) -> None:
        if not callable(model):
            raise TypeError(f"model must be callable as model(z, t), got {type(model).__name__}")
        if timestep not in TIMESTEP_RULES:
            raise ValueError(f"timestep must be one of {TIMESTEP_RULES}, got {timestep!r}")
        if not isinstance(clip_sample, bool):
            raise TypeError(f"clip_sample must be a bool, got {type(clip_sample).__name__}")
        self.model = model
        self.timestep = timestep
        self.clip_sample = clip_sample
        self.clip_sample_range = check_positive(clip_sample_range, "clip_sample_range")
        self.alphas_cumprod = validate_alphas_cumprod(alphas_cumprod)
        #: σ(t) for t = 0 … T − 1, float64 on the CPU, increasing.
        self.sigmas = ((1.0 - self.alphas_cumprod) / self.alphas_cumprod).sqrt()
        self.num_train_timesteps = int(self.sigmas.shape[0])
        self._tables: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    # -- timestep mapping -------------------------------------------------------------

    @property
    def sigma_min(self) -> float:
        """``σ(0)``, the smallest noise level of the table."""
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        """``σ(T − 1)``, the largest noise level of the table."""
        return float(self.sigmas[-1])

    def _table(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._tables:
            s = self.sigmas.to(device)
            self._tables[device] = (s, s.log())
        return self._tables[device]

    def _fractional_t(self, sigma: torch.Tensor) -> torch.Tensor:
        sig, log_sig = self._table(sigma.device)
        T = sig.shape[0]
        s = sigma.clamp(min=sig[0], max=sig[-1])
        # hi = smallest index with σ(hi) >= s, in [1, T-1]; lo = hi - 1.
        hi = torch.searchsorted(sig, s).clamp(1, T - 1)
        lo = hi - 1
        s_lo, s_hi = sig[lo], sig[hi]
        if bool((s_lo == 0).any()):  # ᾱ_0 = 1: interpolate the first interval linearly in σ
            w_lin = (s - s_lo) / (s_hi - s_lo)
            w_log = (s.log() - log_sig[lo]) / (log_sig[hi] - log_sig[lo])
            w = torch.where(s_lo == 0, w_lin, w_log)
        else:
            w = (s.log() - log_sig[lo]) / (log_sig[hi] - log_sig[lo])
        return lo.to(torch.float64) + w.clamp(0.0, 1.0)

    def sigma_to_t(self, sigma: Any) -> torch.Tensor:
        """The timestep(s) fed to the model at noise level(s) ``sigma`` (rule: ``self.timestep``).

        Returns a float64 tensor for ``"interpolate"`` and an int64 tensor otherwise,
        of the shape of ``sigma`` (a scalar becomes a 0-d tensor).
        """
        s = as_tensor(sigma, "sigma", dtype=torch.float64)
        if bool((s <= 0).any()):
            raise ValueError(f"sigma must be > 0, got min {s.min().item()}")
        flat = s.reshape(-1)
        if self.timestep == "paper":
            sig, _ = self._table(flat.device)
            t = torch.searchsorted(sig, flat).clamp(max=sig.shape[0] - 1)
        else:
            t = self._fractional_t(flat)
            if self.timestep == "nearest":
                t = torch.ceil(t - 0.5).to(torch.int64)  # round half down
        return t.reshape(s.shape)

    def t_to_sigma(self, t: Any) -> torch.Tensor:
        """``σ(t) = √((1 − ᾱ_t)/ᾱ_t)`` at integer timesteps ``t`` (float64)."""
        idx = torch.as_tensor(t)
        if idx.is_floating_point() or idx.is_complex():
            raise TypeError(f"t must hold integers, got dtype {idx.dtype}")
        if bool((idx < 0).any()) or bool((idx >= self.num_train_timesteps).any()):
            raise ValueError(f"t must lie in [0, {self.num_train_timesteps - 1}], got {idx.tolist()}")
        return self.sigmas[idx.to("cpu")]

    # -- evaluation ---------------------------------------------------------------------

    def __call__(self, x, sigma) -> torch.Tensor:
        """ε at ``(x, σ)``: ``model(x/√(1 + σ²), t(σ))`` (THEORY §1), shape/dtype of ``x``."""
        x = as_tensor(x, "x")
        if x.ndim < 2:
            raise ValueError(f"x must have shape (B, *shape), got shape {tuple(x.shape)}")
        s = check_sigma(sigma, x)  # (B, 1, ..., 1), x's dtype and device
        if isinstance(sigma, torch.Tensor):
            s64 = sigma.detach().to(torch.float64).reshape(-1).expand(x.shape[0])
        else:
            s64 = torch.full((x.shape[0],), float(sigma), dtype=torch.float64, device=x.device)
        return self._evaluate(x, s, s64)

    def _eps(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        # Flat-batch entry point of the Denoiser interface; __call__ keeps the image shape.
        return self._evaluate(x, sigma, sigma.detach().to(torch.float64).reshape(-1))

    def _evaluate(self, x: torch.Tensor, s: torch.Tensor, s64: torch.Tensor) -> torch.Tensor:
        m_dtype, m_device = _model_dtype_device(self._model_for_dtype())
        if m_device is not None and x.device != m_device:
            raise ValueError(
                f"x is on device {x.device} but the model's parameters are on {m_device}; "
                "move x (and the sampler's starting point) to the model's device"
            )
        s64 = s64.to(x.device)
        # 1/√(1 + σ²) = √ᾱ computed in float64, then one multiplication in x's dtype
        scale = torch.rsqrt(1.0 + s64 * s64).to(x.dtype).reshape(s.shape)
        z = x * scale
        t = self.sigma_to_t(s64)
        if m_dtype is not None:
            z = z.to(m_dtype)
        if self.timestep == "interpolate":
            t = t.to(torch.float32)
        out = self.model(z, t)
        if hasattr(out, "sample"):
            out = out.sample
        elif isinstance(out, (tuple, list)):
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"model must return a tensor (or .sample / a tuple of one), got {type(out).__name__}")
        if out.shape != x.shape:
            raise ValueError(
                f"model returned shape {tuple(out.shape)} for input of shape {tuple(x.shape)}; "
                "an ε-prediction model must return the shape of its input"
            )
        eps = out.to(x.dtype)
        if self.clip_sample:
            r = self.clip_sample_range
            eps = (x - (x - s * eps).clamp(-r, r)) / s
        return eps

    def _model_for_dtype(self) -> Any:
        """The object whose parameters give the model's dtype and device."""
        return self.model

    def __repr__(self) -> str:
        clip = f", clip_sample_range={self.clip_sample_range:g}" if self.clip_sample else ""
        return (
            f"DiscreteTimeEpsModel(model={type(self.model).__name__}, T={self.num_train_timesteps}, "
            f"sigma_range=[{self.sigma_min:.4g}, {self.sigma_max:.4g}], timestep={self.timestep!r}{clip})"
        )
