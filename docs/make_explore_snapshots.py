"""Regenerate the explorers' snapshots in ``docs/figures/``: ``python docs/make_explore_snapshots.py``.

Each PNG is an explorer's own plotly figure (the ``FigureWidget`` without its controls) in a
stated state, or one of the report's slider figures from a ``--quick`` report, written by
kaleido. Kaleido draws with a local Chromium: ``BROWSER_PATH`` (default ``/usr/bin/chromium``);
nothing is downloaded. Needs ``pip install kaleido`` (not a dependency of the package).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BROWSER_PATH", "/usr/bin/chromium")

import toymanifold as tm  # noqa: E402
from analysis import explore  # noqa: E402
from analysis import figures as F  # noqa: E402

OUT = ROOT / "docs" / "figures"
WIDTH = 1100


def write(fig, name: str, height: int) -> None:
    fig.write_image(OUT / f"{name}.png", width=WIDTH, height=height, scale=1)
    print(f"wrote docs/figures/{name}.png")


def main() -> None:
    t1 = explore.theorem1("sphere", 64, progress=False)
    write(t1.figure, "explore_theorem1", 540)
    t1.controls["eta"].value = 0.2
    write(t1.figure, "explore_theorem1_fails", 540)

    smp = explore.samplers("sphere", progress=False)
    write(smp.figure, "explore_samplers", 600)

    K = tm.datasets.build("sphere", 64).manifold
    pe = explore.projection_error(tm.ideal_denoiser(K), K, progress=False)
    pe.controls["nu"].value = 1.2
    write(pe.figure, "explore_projection_error", 500)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        cmd = [sys.executable, "-m", "analysis.cli", "report", "--out", str(out), "--quick", "--no-progress"]
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    write(F.envelope_slider_figure(results["envelope"]), "report_slider_theorem1", 640)
    write(F.gamma_slider_figure(results["gamma_sweep"]["ideal"], results["trajectories"]), "report_slider_gamma", 680)


if __name__ == "__main__":
    main()
