"""The Theorem 1 explorer: DDIM runs of a perturbed projection against the envelope (THEORY §3)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import ipywidgets as widgets
import torch

import toymanifold as tm
from toymanifold.validation import check_int

from .. import figures as F
from .._common import one_cpu_thread
from ..bounds import theorem1_bounds
from ._base import (
    _F64,
    Explorer,
    _Cache,
    _Counted,
    _default_sigma_max,
    _figure_widget,
    _toy_data,
)

# --------------------------------------------------------------------------- Theorem 1


class Theorem1Explorer(Explorer):
    """DDIM with ``PerturbedProjectionDenoiser(η)`` against Theorem 1's envelope (THEORY §3), live.

    Controls: ``eta`` (η), ``mode`` (the error's direction), ``n_steps`` (N), ``sigma_max``,
    ``sigma_min`` (a log-linear schedule, σ_0 = σ_min > 0), ``nu`` (ν). The starts are
    ``x_N = σ_max ξ`` with one fixed ``ξ``; the exact projection runs beside the perturbed one.

    What each control recomputes: ``eta`` and ``mode`` — the perturbed DDIM runs and the
    bounds; ``n_steps``, ``sigma_min`` — both runs and the bounds; ``sigma_max`` — the starts,
    both runs and the bounds; ``nu`` — the bounds only (no denoiser call). Runs are cached by
    (schedule, η, mode), so returning to a setting costs no denoiser call.

    Trace roles (:meth:`~Explorer.trace`): ``"envelope lower"``, ``"envelope upper"`` (the
    envelope in units of ``dist_K(x_N)``, i.e. ``theorem1_bounds(...).lower``/``.upper``
    without ``dist_N``), ``"band lower"``, ``"band upper"`` (``min r_N · L_t``,
    ``max r_N · U_t``), ``"nu lines"``, ``"perturbed distance"``, ``"perturbed ratio"``,
    ``"exact distance"``, ``"exact ratio"`` (runs joined by NaN gaps: distance relative to
    ``dist_K(x_N)``, and ``r_t``).
    """

    _roles: ClassVar[dict[str, int]] = {
        "envelope lower": 0, "envelope upper": 1, "band lower": 2, "band upper": 3, "nu lines": 4,
        "perturbed distance": 5, "perturbed ratio": 6, "exact distance": 7, "exact ratio": 8,
    }  # fmt: skip
    EXACT = "exact projection (η = 0)"

    def __init__(self, manifold, *, eta, mode, n_steps, sigma_max, sigma_min, nu, batch, seed, progress):
        self.manifold = K = manifold
        self.seed = seed
        n = K.ambient_dim
        self.xi = torch.randn(batch, n, generator=torch.Generator().manual_seed(seed), dtype=_F64)
        self.model_calls = 0
        self._starts = _Cache(8)
        self._runs = _Cache(256)
        hi = math.log10(sigma_max)
        lo = math.log10(sigma_min)
        cont = {"continuous_update": False}
        controls = {
            "eta": widgets.FloatSlider(value=eta, min=0.0, max=0.95, step=0.01, description="η", **cont),
            "mode": widgets.ToggleButtons(options=["random", "outward", "inward"], value=mode, description="error"),
            "n_steps": widgets.IntSlider(value=n_steps, min=1, max=max(200, n_steps), description="N", **cont),
            "sigma_max": widgets.FloatLogSlider(value=sigma_max, base=10, min=hi - 2, max=hi + 2, step=0.05,
                                                description="σ_max", **cont),
            "sigma_min": widgets.FloatLogSlider(value=sigma_min, base=10, min=min(-4.0, lo - 1), max=max(0.0, lo + 1),
                                                step=0.05, description="σ_min", **cont),
            "nu": widgets.FloatSlider(value=nu, min=1.0, max=max(10.0, nu), step=0.05, description="ν"),
        }  # fmt: skip
        super().__init__(controls, progress=progress)
        with one_cpu_thread():
            state = self._state([])
        self._attach(_figure_widget(F.theorem1_view_traces(state), F.theorem1_view_layout("", n_steps=n_steps)))
        self._show(state)

    def _ddim_distances(self, den, sig, x) -> torch.Tensor:
        """``dist_K(x_t)`` along DDIM, ``(B, N+1)``."""
        traj = tm.ddim(_Counted(den, self), sig, x, return_trajectory=True)
        N, B, n = traj.xs.shape
        return self.manifold.distance(traj.xs.reshape(-1, n)).reshape(N, B).T

    def _state(self, missed: list[str]) -> dict[str, Any]:
        v = {name: w.value for name, w in self.controls.items()}
        eta, mode, nu = float(v["eta"]), v["mode"], float(v["nu"])
        sig = tm.schedules.loglinear(float(v["sigma_max"]), float(v["sigma_min"]), int(v["n_steps"]))
        K, n = self.manifold, self.manifold.ambient_dim
        s_max = float(sig[0])

        def start():
            x = s_max * self.xi
            d = K.distance(x)
            return x, d, d / (math.sqrt(n) * s_max)

        x, _, r_N = self._starts.get_or(s_max, start, missed, "starts")
        key = tuple(sig.tolist())
        pert = self._runs.get_or(
            (key, eta, mode),
            lambda: self._ddim_distances(tm.PerturbedProjectionDenoiser(K, eta, mode=mode, seed=self.seed), sig, x),
            missed,
            "perturbed runs",
        )
        exact = self._runs.get_or(
            (key, "exact"), lambda: self._ddim_distances(tm.ProjectionDenoiser(K), sig, x), missed, "exact runs"
        )
        b = theorem1_bounds(sig, eta, nu, r_N)
        missed.append("bounds")
        self.bounds = b
        return {
            "sigmas": sig, "n": n, "nu": nu, "r_N": r_N, "lower": b.lower[:, 0], "upper": b.upper[:, 0],
            "L": b.L, "U": b.U, "conditions": b.conditions(), "runs": {f"perturbed {mode}": pert, self.EXACT: exact},
        }  # fmt: skip

    def _show(self, state: dict[str, Any]) -> None:
        self.state = state
        self._restyle(F.theorem1_view_traces(state))
        n_steps = len(state["sigmas"]) - 1
        self.figure.layout.xaxis.title.text = self.figure.layout.xaxis2.title.text = f"σ_t (DDIM, N = {n_steps} →)"
        c = state["conditions"]
        self._say(F.theorem1_conditions_text(c), ok=c["hold"] == c["runs"])

    def _update(self, missed: list[str]) -> None:
        self._show(self._state(missed))

    def snapshot(self):
        """The current state as the report's matplotlib figure 7 (:func:`analysis.figures.envelope_figure`)."""
        s, b = self.state, self.bounds
        data = {"eta": b.eta, "nu": b.nu, "sigmas": s["sigmas"].tolist(), "L": b.L.tolist(), "U": b.U.tolist()}
        return F.envelope_figure({**data, "runs": {k: v.tolist() for k, v in s["runs"].items()}})


def theorem1(
    manifold: Any = "sphere",
    ambient_dim: int | None = 64,
    *,
    eta: float = 0.1,
    mode: str = "random",
    n_steps: int = 20,
    sigma_max: float | None = None,
    sigma_min: float = 0.01,
    nu: float = 3.5,
    batch: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> Theorem1Explorer:
    """Explore Theorem 1 (THEORY §3): DDIM with a projection of known error η against its envelope.

    Parameters
    ----------
    manifold : str, ToyData or Manifold
        A name of :data:`toymanifold.datasets.DATASETS` (built in ``R^ambient_dim``), a built
        data set, or any manifold.
    ambient_dim : int or None
        ``n`` for a data-set name (None: the registry's default, 64).
    eta, mode, n_steps, sigma_max, sigma_min, nu : initial values of the controls
        ``sigma_max`` None: 10 × the RMS norm of the data (the report's σ_max).
    batch : int
        Starting points ``x_N = σ_max ξ``.
    seed : int
        Seeds ``ξ`` and the random error directions.
    progress : bool
        Show progress during long recomputations.

    Returns
    -------
    Theorem1Explorer
    """
    K = _toy_data(manifold, ambient_dim, seed).manifold if not isinstance(manifold, tm.Manifold) else manifold
    batch = check_int(batch, "batch", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    sigma_max = _default_sigma_max(K, seed) if sigma_max is None else float(sigma_max)
    # Validate the initial values once, with the library's own messages.
    tm.schedules.loglinear(sigma_max, sigma_min, n_steps)
    tm.PerturbedProjectionDenoiser(K, eta, mode=mode)
    theorem1_bounds([2.0, 1.0], eta, nu, 1.0)
    return Theorem1Explorer(
        K, eta=eta, mode=mode, n_steps=n_steps, sigma_max=sigma_max, sigma_min=sigma_min, nu=nu,
        batch=batch, seed=seed, progress=progress,
    )  # fmt: skip
