"""``toymanifold report``: the main job end to end, and its handling of bad input.

One ``--quick`` run (module fixture, ~15–40 s on two cores) is checked file by file;
the bad-input cases never start an experiment.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis import cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NFES = [5, 10, 20, 50]
SAMPLERS = ["DDIM", "DDPM", "GE (γ=2)", "Heun", "DPM++(2M)"]


def _strict_json(text: str):
    def no_constant(name):  # NaN, Infinity: not strict JSON
        raise ValueError(f"non-finite constant {name} in results.json")

    return json.loads(text, parse_constant=no_constant)


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick") / "report"
    rc = cli.main(["report", "--out", str(out), "--quick", "--no-progress", "--seed", "0"])
    assert rc == 0
    return out


# --------------------------------------------------------------------------- the files


def test_every_file_written(quick_report):
    from analysis.report.render import INTERACTIVE, make_figures

    results = _strict_json((quick_report / "results.json").read_text(encoding="utf-8"))
    expected = {f"{stem}.png" for stem in make_figures(results) if stem != INTERACTIVE}
    found = {p.name for p in (quick_report / "figures").iterdir()}
    assert found == expected
    assert len(expected) >= 8  # one PNG per figure of the report (and one per denoiser where there are two)
    for name in expected:
        data = (quick_report / "figures" / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, name
    assert sorted(p.name for p in quick_report.iterdir()) == ["figures", "report.html", "results.json"]
    # Nothing temporary left beside the output folder.
    assert [p.name for p in quick_report.parent.iterdir()] == ["report"]


def test_output_folder_has_normal_permissions(quick_report):
    """The temporary folder is private while it is written; the finished report is not."""
    import stat

    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(quick_report.stat().st_mode) == 0o777 & ~mask


def test_html_is_self_contained(quick_report):
    page = (quick_report / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    n_png = len(list((quick_report / "figures").iterdir()))
    assert len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]+">', page)) == n_png
    # Offline: no script, style sheet or image is loaded from elsewhere; plotly.js is inlined
    # for the 3-D view of the sphere (its code mentions URLs, so look at the tags only).
    assert not re.search(r"<script[^>]*\ssrc=", page)
    assert not re.search(r"<link[^>]*\shref=", page)
    outside_scripts = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    assert "http://" not in outside_scripts and "https://" not in outside_scripts
    assert "Plotly.newPlot" in page


def test_results_are_finite_for_every_sampler_and_nfe(quick_report):
    results = _strict_json((quick_report / "results.json").read_text(encoding="utf-8"))
    assert set(results["samplers"]) >= {"MLP"}
    for den, c in results["samplers"].items():
        assert c["nfe"] == NFES
        assert list(c["samplers"]) == SAMPLERS
        for s in SAMPLERS:
            for metric in ("ode_error", "mean_dist", "mmd"):
                vals = c["samplers"][s][metric]
                assert len(vals) == len(NFES), (den, s, metric)
                assert all(isinstance(v, float) and math.isfinite(v) for v in vals), (den, s, metric, vals)
            # Equal cost: never more model evaluations than the budget (Heun: 2 per step).
            assert all(a <= b for a, b in zip(c["nfe_actual"][s], NFES)), (s, c["nfe_actual"][s])
            if s != "Heun":
                assert c["nfe_actual"][s] == NFES
            assert all(v >= 0 for v in c["samplers"][s]["ode_error"] + c["samplers"][s]["mean_dist"])
        g = results["gamma_sweep"][den]
        assert g["nfe"] == 10 and 1.0 in g["gammas"] and 2.0 in g["gammas"]
        # γ = 1 is DDIM bit for bit (THEORY §6), so its ODE error equals DDIM's at 10 NFE.
        assert g["metrics"]["ode_error"][g["gammas"].index(1.0)] == c["samplers"]["DDIM"]["ode_error"][1]
        assert g["metrics"]["ode_error"][g["gammas"].index(2.0)] == c["samplers"]["GE (γ=2)"]["ode_error"][1]
    assert results["checks"]["all_sampler_numbers_finite"] is True


def test_gradient_estimation_beats_ddim_at_10_nfe_on_the_ideal_denoiser(quick_report):
    """The paper's claim, measured on the closed-form ideal denoiser (independent of training).

    On the default report the same check is made for the trained MLP too (``checks`` in
    results.json, summary table of report.html).
    """
    results = _strict_json((quick_report / "results.json").read_text(encoding="utf-8"))
    c = results["samplers"]["ideal"]
    i = c["nfe"].index(10)
    ge, ddim = c["samplers"]["GE (γ=2)"]["ode_error"][i], c["samplers"]["DDIM"]["ode_error"][i]
    assert ge < ddim
    assert results["checks"]["ge_beats_ddim_at_10_nfe"]["ideal"] is True
    assert results["checks"]["ode_error_at_10_nfe"]["ideal"] == {"DDIM": ddim, "GE (γ=2)": ge}
    # The reference is far more accurate than the differences it measures.
    assert c["reference"]["error_estimate"] < 0.1 * ge


def test_perturbed_ddim_inside_theorem1_envelope(quick_report):
    """Recompute Theorem 1's envelope from the stored schedule and check every stored distance.

    Envelope (THEORY §3): ``dist_N ∏_{s}(1 − β_s(1 + η)) ≤ dist_K(x_t) ≤ dist_N ∏_{s}(1 − β_s(1 − η))``.
    Allowance from the arithmetic: each DDIM step and each float64 distance is a length-n
    computation, so after N steps the stored distances carry at most about
    ``8 (N+1) n ε₆₄ max‖x_t‖`` absolute error, with ``‖x_t‖ ≤ dist_K(x_t) + R`` and R the
    data's radius (here the largest ``‖x_N‖ ≤ dist_N + R``).
    """
    results = _strict_json((quick_report / "results.json").read_text(encoding="utf-8"))
    env = results["envelope"]
    eta, nu = env["eta"], env["nu"]
    sig = torch.tensor(env["sigmas"], dtype=torch.float64)
    N = sig.numel() - 1
    n = results["manifold"]["n"]
    beta = 1.0 - sig[1:] / sig[:-1]
    one = torch.ones(1, dtype=torch.float64)
    up = torch.cat([one, torch.cumprod(1 - beta * (1 - eta), 0)])
    lo = torch.cat([one, torch.cumprod(1 - beta * (1 + eta), 0)])
    dist_N = torch.tensor(env["dist_N"], dtype=torch.float64)
    r_N = torch.tensor(env["r_N"], dtype=torch.float64)
    # Theorem 1's conditions for every start (so the envelope is a guarantee, not a hope).
    rho = sig[:-1] / sig[1:]
    U0 = torch.prod(1 + eta * (rho - 1))
    L0 = torch.prod(1 - eta * (rho - 1))
    assert bool((eta * (rho - 1) < 1).all())
    assert bool(((r_N >= 1 / nu) & (r_N <= nu) & (r_N * U0 <= nu) & (r_N * L0 >= 1 / nu)).all())
    assert env["conditions_hold"] is True
    radius = results["manifold"]["rms_norm"]  # the sphere: every point has norm R
    slack = 8 * (N + 1) * n * torch.finfo(torch.float64).eps * float(dist_N.max() + radius)
    perturbed = [k for k in env["runs"] if k.startswith("perturbed")]
    assert sorted(perturbed) == ["perturbed inward", "perturbed outward", "perturbed random"]
    for label in perturbed:
        D = torch.tensor(env["runs"][label], dtype=torch.float64)  # (B, N+1)
        assert D.shape == (dist_N.numel(), N + 1)
        torch.testing.assert_close(D[:, 0], dist_N, rtol=0, atol=0)
        assert bool((D <= dist_N[:, None] * up + slack).all()), label
        assert bool((D >= dist_N[:, None] * lo - slack).all()), label
        assert env["inside"][label] is True
        assert env["lemma1_violations"][label] == 0
    # Tightness (Lemma 1 with equality): "outward" rides the upper envelope.
    D = torch.tensor(env["runs"]["perturbed outward"], dtype=torch.float64)
    torch.testing.assert_close(D, dist_N[:, None] * up, rtol=0, atol=slack)
    # The exact projection keeps r_t constant: dist_K(x_t) = dist_N σ_t/σ_N.
    D = torch.tensor(env["runs"]["exact projection (η = 0)"], dtype=torch.float64)
    torch.testing.assert_close(D, dist_N[:, None] * sig / sig[0], rtol=0, atol=slack)
    assert results["checks"]["perturbed_inside_envelope"] is True


def test_measured_eta_of_reference_denoisers(quick_report):
    """η̂ of the exact projection is 0 and of PerturbedProjectionDenoiser(0.1) is 0.1, to rounding.

    ``η = ‖x − σε_θ − p‖ / dist_K(x)`` is formed in float64 from length-n vectors of norm
    up to ``‖x‖ ≤ R + dist_K(x)``, so its rounding error is at most about
    ``8 n ε₆₄ (1 + R/dist_K(x))`` with ``dist_K(x) = √n σ r ≥ √n σ_min r_min``.
    """
    results = _strict_json((quick_report / "results.json").read_text(encoding="utf-8"))
    curves = results["eta_nu"]["denoisers"]
    n = results["manifold"]["n"]
    R = results["manifold"]["rms_norm"]
    sigma_min = results["eta_nu"]["sigma_range"][0]
    eps = torch.finfo(torch.float64).eps
    for name in ("projection", "perturbed (η=0.1)"):
        r_min = results["projection_error_summary"][name]["r_min"]
        tol = 8 * n * eps * (1 + R / (math.sqrt(n) * sigma_min * r_min))
        target = 0.0 if name == "projection" else 0.1
        vals = [v for v in curves[name] if v is not None]
        assert vals, name
        assert all(abs(v - target) <= tol for v in vals), (name, vals, tol)
    assert results["projection_error_summary"]["projection"]["eta_max"] <= 8 * n * eps * (
        1 + R / (math.sqrt(n) * sigma_min * results["projection_error_summary"]["projection"]["r_min"])
    )


def test_meta_and_config(quick_report):
    results = _strict_json((quick_report / "results.json").read_text(encoding="utf-8"))
    cfg = results["meta"]["config"]
    assert cfg["quick"] is True and cfg["seed"] == 0 and cfg["manifold"] == "sphere"
    m = results["manifold"]
    assert m["n"] == 64 and m["d"] == 2 and "Embedded" in m["repr"]
    assert results["training"]["steps"] == 100


# --------------------------------------------------------------------------- the kernel-free sliders


def plotly_figures(page: str) -> dict[str, tuple[list, dict]]:
    """Every ``Plotly.newPlot(id, data, layout, config)`` call of the page: ``{id: (data, layout)}``."""
    decoder = json.JSONDecoder()
    figures = {}
    for m in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', page):
        data, end = decoder.raw_decode(page, m.end())
        layout, _ = decoder.raw_decode(page, re.compile(r",\s*").match(page, end).end())
        figures[m.group(1)] = (data, layout)
    return figures


def nan_array(values) -> np.ndarray:
    """A plotly array as floats: a JSON list (null → NaN) or plotly's base64 typed array."""
    if isinstance(values, dict):
        import base64

        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).astype(float)
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def joined(x, ys) -> np.ndarray:
    """Runs ``ys`` (B, T) against a shared x, one line with NaN gaps (as the figures draw them)."""
    ys = np.atleast_2d(np.asarray(ys, dtype=float))
    return np.hstack([ys, np.full((ys.shape[0], 1), np.nan)]).ravel()


@pytest.fixture(scope="module")
def page_and_results(quick_report):
    page = (quick_report / "report.html").read_text(encoding="utf-8")
    return page, _strict_json((quick_report / "results.json").read_text(encoding="utf-8"))


def test_plotly_js_is_inlined_once_for_every_figure(page_and_results):
    page, _ = page_and_results
    assert len(re.findall(r"\* plotly\.js v\d", page)) == 1
    head, body = page.split("</head>", 1)
    assert "* plotly.js v" in head  # before the first figure that needs it
    figures = plotly_figures(body)
    assert {"slider_theorem1_eta", "slider_gamma_mlp", "slider_gamma_ideal"} <= set(figures)
    assert len(figures) == 4  # the three sliders and the interactive trajectory view


def test_theorem1_slider_steps_hold_theorem1_at_each_eta(page_and_results):
    import analysis

    page, results = page_and_results
    env, grid = results["envelope"], results["envelope"]["eta_grid"]
    data, layout = plotly_figures(page)["slider_theorem1_eta"]
    (slider,) = layout["sliders"]
    assert [float(s["label"]) for s in slider["steps"]] == grid["etas"]
    assert grid["etas"][slider["active"]] == env["eta"]
    names = [tr["name"] for tr in data]
    sig = torch.tensor(env["sigmas"], dtype=torch.float64)
    r_N = torch.tensor(env["r_N"], dtype=torch.float64)
    failing = 0
    for eta, step in zip(grid["etas"], slider["steps"]):
        assert step["method"] == "update"
        restyle, relayout, indices = step["args"]
        y = {names[j]: nan_array(v) for j, v in zip(indices, restyle["y"])}
        b = analysis.theorem1_bounds(sig, eta, grid["nu"], r_N)
        np.testing.assert_allclose(y["Theorem 1 envelope"], b.upper[:, 0].numpy(), rtol=1e-12, atol=0)
        np.testing.assert_allclose(y["Theorem 1 lower"], b.lower[:, 0].numpy(), rtol=1e-12, atol=0)
        np.testing.assert_allclose(y["max r_N · U_t"], (r_N.max() * b.U).numpy(), rtol=1e-12)
        # The run traces are the precomputed distances, relative to dist_K(x_N).
        i = grid["etas"].index(eta)
        for mode in ("random", "outward", "inward"):
            D = np.asarray(grid["runs"][f"perturbed {mode}"][i])
            j = names.index(f"perturbed {mode}")  # the distance trace (the ratio trace comes after it)
            np.testing.assert_array_equal(nan_array(restyle["y"][indices.index(j)]), joined(None, D / D[:, :1]))
        holds = bool(b.conditions_hold.all())
        failing += not holds
        expected = "Theorem 1's conditions hold" if holds else "Theorem 1's conditions FAIL"
        assert relayout["title.text"].startswith(expected)
    assert 0 < failing < len(grid["etas"])  # ν is fixed: the conditions fail for the larger η
    # At the report's η the grid repeats the envelope runs (the same experiment).
    i = grid["etas"].index(env["eta"])
    for mode in ("random", "outward", "inward"):
        assert grid["runs"][f"perturbed {mode}"][i] == env["runs"][f"perturbed {mode}"]
    # At η = 0 every mode is the exact projection.
    exact = np.asarray(env["runs"]["exact projection (η = 0)"])
    for mode in ("random", "outward", "inward"):
        np.testing.assert_allclose(grid["runs"][f"perturbed {mode}"][0], exact, rtol=1e-12)


def test_gamma_slider_steps_hold_the_sweep(page_and_results):
    page, results = page_and_results
    view = results["trajectories"]
    lim = np.asarray(view["limits"])
    for den, sweep in results["gamma_sweep"].items():
        data, layout = plotly_figures(page)[f"slider_gamma_{den.lower()}"]
        (slider,) = layout["sliders"]
        gammas = sweep["gammas"]
        assert [float(s["label"]) for s in slider["steps"]] == gammas
        ode = next(tr for tr in data if tr["name"] == "ODE error (all γ)")
        assert ode["x"] == gammas and ode["y"] == sweep["metrics"]["ode_error"]
        ddim = next(tr for tr in data if tr["name"] == "DDIM")
        for g, step in zip(gammas, slider["steps"]):
            restyle, relayout, _ = step["args"]
            assert restyle["name"][0] == f"GE (γ={g:g})" and relayout["shapes[0].x0"] == g
            coords = np.asarray(sweep["trajectories"]["coords"][gammas.index(g)])  # (T, B, 3)
            outside = ((coords < lim[:, 0]) | (coords > lim[:, 1])).any(-1)
            shown = np.where(outside[..., None], np.nan, coords)
            for k, axis in enumerate("xyz"):
                np.testing.assert_array_equal(nan_array(restyle[axis][0]), joined(None, shown[..., k].T))
                np.testing.assert_array_equal(nan_array(restyle[axis][1]), shown[-1, :, k])
            if g == 1.0:  # DDIM's fixed traces are the γ = 1 run
                np.testing.assert_array_equal(nan_array(ddim["x"]), nan_array(restyle["x"][0]))
            m = sweep["metrics"]
            assert f"ODE error {m['ode_error'][gammas.index(g)]:.3g}" in relayout["title.text"]


# --------------------------------------------------------------------------- bad input


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("toymanifold") and "error" in lines[0]
    return lines[0]


def _no_leftovers(folder: Path, name: str) -> None:
    left = [p.name for p in folder.iterdir() if p.name.startswith(f".{name}.")]
    assert left == [], left


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--manifold", "klein-bottle"], "unknown manifold"),
        (["--bogus-option"], "unrecognized arguments"),
        (["--steps", "0"], "--steps"),
        (["--steps", "-3"], "--steps"),
        (["--steps", "ten"], "--steps"),
        (["--ambient-dim", "2"], "ambient-dim"),  # S² needs n ≥ 3
        (["--manifold", "digits", "--ambient-dim", "32"], "ambient-dim"),
        (["--seed", "-1"], "--seed"),
        (["--device", "nonsense"], "--device"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, fragment):
    out = tmp_path / "out"
    rc = cli.main(["report", "--out", str(out), "--quick", "--no-progress", *args])
    assert rc == 2
    assert fragment in _one_line_error(capsys)
    assert not out.exists()
    _no_leftovers(tmp_path, "out")


def test_cuda_requested_without_cuda(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    rc = cli.main(["report", "--out", str(tmp_path / "out"), "--device", "cuda", "--no-progress"])
    assert rc == 2
    assert "CUDA is not available" in _one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_missing_out_and_command(capsys):
    assert cli.main(["report"]) == 2
    assert "--out" in _one_line_error(capsys)
    assert cli.main([]) == 2
    assert "command is required" in _one_line_error(capsys)
    assert cli.main(["frobnicate"]) == 2
    _one_line_error(capsys)


def test_help_exits_0(capsys):
    assert cli.main(["--help"]) == 0
    assert "report" in capsys.readouterr().out
    assert cli.main(["report", "--help"]) == 0
    text = capsys.readouterr().out
    for opt in ("--out", "--manifold", "--ambient-dim", "--steps", "--seed", "--device", "--quick", "--no-progress"):
        assert opt in text


def test_unwritable_output(tmp_path, capsys):
    # The parent of --out is a file: nothing can be written there.
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert cli.main(["report", "--out", str(blocker / "out"), "--quick", "--no-progress"]) == 2
    assert "--out" in _one_line_error(capsys)
    # --out is an existing file.
    assert cli.main(["report", "--out", str(blocker), "--quick", "--no-progress"]) == 2
    assert "not a folder" in _one_line_error(capsys)
    assert blocker.read_text() == "x"
    # A folder that cannot be written in: permissions (not for root, who ignores them) or /proc.
    if os.name == "posix" and os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            assert cli.main(["report", "--out", str(locked / "out"), "--quick", "--no-progress"]) == 2
            assert "cannot write" in _one_line_error(capsys)
            assert list(locked.iterdir()) == []
        finally:
            locked.chmod(0o700)
    if sys.platform.startswith("linux") and Path("/proc/self").is_dir():
        assert cli.main(["report", "--out", "/proc/toymanifold-report-test", "--quick", "--no-progress"]) == 2
        assert "cannot write" in _one_line_error(capsys)


def test_foreign_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    assert cli.main(["report", "--out", str(out), "--quick", "--no-progress"]) == 2
    assert "not empty" in _one_line_error(capsys)
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]
    _no_leftovers(tmp_path, "out")


def test_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    """An error after the experiments started removes the temporary folder; --out is untouched."""
    import analysis.report as report

    def fail(cfg):
        raise RuntimeError("boom")

    monkeypatch.setattr(report, "run_report", fail)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["report", "--out", str(out), "--quick", "--no-progress"])
    assert list(tmp_path.iterdir()) == []


def test_earlier_report_is_replaced_atomically(tmp_path, monkeypatch):
    """A folder holding an earlier report is replaced as a whole, only once the new one is complete."""
    import analysis.report as report
    import analysis.report.write as writing

    out = tmp_path / "out"
    (out / "figures").mkdir(parents=True)
    (out / "results.json").write_text("old")
    (out / "figures" / "stale.png").write_bytes(b"old")

    def fake_run(cfg):
        # While the new report is being made, the old one is still complete in place.
        assert (out / "results.json").read_text() == "old"
        return {"meta": {"wall_time_s": 0.0}}

    def fake_write(results, folder):
        folder = Path(folder)
        assert folder.parent == tmp_path and folder.name.startswith(".out.tmp-")
        (folder / "figures").mkdir()
        (folder / "results.json").write_text("new")
        (folder / "report.html").write_text("<html></html>")

    monkeypatch.setattr(report, "run_report", fake_run)
    monkeypatch.setattr(writing, "write_report", fake_write)
    assert cli.main(["report", "--out", str(out), "--no-progress"]) == 0
    assert (out / "results.json").read_text() == "new"
    assert not (out / "figures" / "stale.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_train_images_is_registered():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"report", "train-images"} <= set(sub.choices)


def test_module_entry_point(tmp_path):
    """``python -m analysis.cli`` is the console script (setup.cfg: analysis.cli:main)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "analysis.cli", "report", "--out", str(tmp_path / "o"), "--manifold", "nope"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown manifold" in proc.stderr
    assert list(tmp_path.iterdir()) == []
