"""Regenerate docs/api.md from the docstrings: ``python docs/make_api.py > docs/api.md``."""

import inspect
import sys
from pathlib import Path

# Document the repository this script lives in (not whichever copy is installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import analysis
import analysis.model_report as model_report
import toymanifold as tm
import toymanifold.datasets as ds
import toymanifold.images as im
import toymanifold.testing as tt


def first(obj) -> str:
    return (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ")


def sig(obj) -> str:
    try:
        s = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""
    return s if len(s) < 110 else s[:107] + "…)"


GROUPS = [
    (
        "Geometry (`toymanifold`)",
        tm,
        ["Manifold", "Circle", "Sphere", "Torus", "AffineSubspace", "Spiral", "SwissRoll", "FiniteSet", "Embedded"],
    ),
    ("Data sets (`toymanifold.datasets`)", ds, ["digits", "digits_arrays"]),
    ("Denoisers (`toymanifold`, `toymanifold.denoisers`)", tm.denoisers, tm.denoisers.__all__),
    (
        "Schedules (`toymanifold.schedules`)",
        tm.schedules,
        ["loglinear", "karras", "betas", "alphas_cumprod", "ddpm_sigmas", "timesteps", "discrete", "paper"],
    ),
    (
        "Samplers (`toymanifold`)",
        tm,
        ["sample", "ddim", "ddpm", "gradient_estimation", "heun", "dpmpp_2m", "nfe", "Trajectory", "StepInfo"],
    ),
    ("Analysis (`analysis`)", analysis, analysis.__all__),
    (
        "Model report (`analysis.model_report`)",
        model_report,
        [n for n in model_report.__all__ if not n.isupper() and n not in ("LoadedModel", "ModelSizes")],
    ),
    ("Image models (`toymanifold.images`)", im, [n for n in im.__all__ if n != "TIMESTEP_RULES"]),
    ("Hypothesis strategies (`toymanifold.testing`)", tt, [n for n in tt.__all__ if n != "FAMILIES"]),
]

if __name__ == "__main__":
    print("# API reference\n")
    print("Generated from the docstrings by `docs/make_api.py` (first paragraph of each); `help(name)`")
    print("shows the rest. Conventions (DESIGN.md): torch tensors throughout, NumPy accepted at the")
    print("boundary; points `(B, n)`; geometry and analysis in float64, samplers in the caller's dtype")
    print("and device; bad input raises `ValueError`/`TypeError` naming the argument.\n")
    for title, mod, names in GROUPS:
        print(f"## {title}\n")
        for n in names:
            obj = getattr(mod, n)
            print(f"- **`{n}{sig(obj)}`** — {first(obj)}")
        print()
