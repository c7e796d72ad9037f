"""Commands never destroy work: train-images refuses to overwrite, report cleans up after signals.

Every refusal is one line on stderr and exit status 2, before any work starts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from analysis import cli
from analysis.report import write

ROOT = Path(__file__).resolve().parents[1]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("toymanifold")
    return err


# --------------------------------------------------------------------------- report: refused up front


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--manifold", "subspace", "--ambient-dim", "2"], ["must be >= 3 for subspace", "no normal space"]),
        (["--ambient-dim", "100000"], ["must be <= 2048", "n x n data covariance", "GiB"]),
    ],
)
def test_report_refuses_ambient_dims_it_cannot_run(tmp_path, capsys, args, fragments):
    out = tmp_path / "out"
    assert cli.main(["report", "--out", str(out), "--quick", "--no-progress", *args]) == 2
    err = _one_line_error(capsys)
    assert all(f in err for f in fragments), err
    assert list(tmp_path.iterdir()) == []


def test_report_memory_estimate_explains_the_limit():
    # The float32 n × n eigenvector buffer alone is 40 GB at n = 100 000.
    assert 4 * 100_000**2 == 40_000_000_000
    assert cli.report_memory_bytes(100_000) > 4 * 100_000**2
    assert cli.report_memory_bytes(cli.MAX_REPORT_AMBIENT_DIM) < 2**30


# --------------------------------------------------------------------------- report: signals


_SLOW_REPORT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import analysis.report as report
    import analysis.report.write as writing
    from analysis import cli

    report.run_report = lambda cfg: {"meta": {"wall_time_s": 0.0}}

    def slow_write(results, folder):
        (Path(folder) / "results.json").write_text("partial")
        print("writing", flush=True)
        time.sleep(120)

    writing.write_report = slow_write
    sys.exit(cli.main(["report", "--out", sys.argv[1], "--no-progress"]))
    """
)


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_report_removes_its_temporary_folder_on_a_signal(tmp_path, signum, status):
    """A real process, stopped by a real signal while it writes the report: nothing is left behind."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_REPORT, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout.readline().strip() == "writing"  # the temporary folder exists now
        assert [p.name.startswith(".out.tmp-") for p in tmp_path.iterdir()] == [True]
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    assert err.strip() in ("toymanifold: terminated", "toymanifold: interrupted")
    assert list(tmp_path.iterdir()) == []


def test_stale_temporary_folders_are_removed_and_live_ones_kept(tmp_path):
    out = tmp_path / "out"
    host = write._host_tag()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    folders = {
        "orphan": tmp_path / f".out.tmp-{host}-{dead.pid}-abc",  # this host, process gone: stale
        "live": tmp_path / f".out.tmp-{host}-{os.getpid()}-def",  # a running process: kept
        "other_host": tmp_path / f".out.tmp-0badc0de-{dead.pid}-ghi",  # cannot check its pid: kept
        "legacy_fresh": tmp_path / ".out.tmp-x1y2z3",  # no owner, recent: kept
        "legacy_old": tmp_path / ".out.tmp-q9w8e7",  # no owner, a day old: stale
        "old_copy": tmp_path / f".out.old-{host}-{dead.pid}-jkl",  # set-aside report, out missing: kept
        "someone_else": tmp_path / ".other.tmp-aaaa",  # another report's folder: never touched
    }
    for f in folders.values():
        f.mkdir()
    two_days_ago = time.time() - 2 * 86400
    os.utime(folders["legacy_old"], (two_days_ago, two_days_ago))
    removed = write.remove_stale_temporaries(out)
    assert sorted(removed) == sorted([folders["orphan"], folders["legacy_old"]])
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {f.name for k, f in folders.items() if k not in ("orphan", "legacy_old")}
    # Once out exists, an orphaned set-aside copy of an earlier report is redundant.
    out.mkdir()
    assert write.remove_stale_temporaries(out) == [folders["old_copy"]]
    assert write.remove_stale_temporaries(out) == [] and folders["live"].is_dir()


def test_next_report_cleans_up_a_killed_run(tmp_path, monkeypatch):
    """A run killed outright (SIGKILL) leaves its folder; the next report into the same folder removes it."""
    import analysis.report as report

    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_REPORT, str(out)], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert len(list(tmp_path.glob(".out.tmp-*"))) == 1  # no handler runs on SIGKILL

    def fake_write(results, folder):
        (Path(folder) / "figures").mkdir()
        (Path(folder) / "results.json").write_text("new")
        (Path(folder) / "report.html").write_text("<html></html>")

    monkeypatch.setattr(report, "run_report", lambda cfg: {"meta": {"wall_time_s": 0.0}})
    monkeypatch.setattr(write, "write_report", fake_write)
    assert cli.main(["report", "--out", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --------------------------------------------------------------------------- train-images


needs_diffusers = pytest.mark.skipif(importlib.util.find_spec("diffusers") is None, reason="needs diffusers")

TRAIN = ["train-images", "--batch-size", "2", "--checkpoint-every", "0", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-step digits UNet checkpoint made by the command itself."""
    out = tmp_path_factory.mktemp("train") / "run"
    assert cli.main([*TRAIN, "--out", str(out), "--steps", "2"]) == 0
    return out


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@needs_diffusers
def test_train_images_refuses_to_overwrite_a_checkpoint(trained, tmp_path, capsys):
    out = _copy(trained, tmp_path / "run")
    before = (out / "checkpoint" / "state.safetensors").read_bytes()
    assert cli.main([*TRAIN, "--out", str(out), "--steps", "1"]) == 2
    err = _one_line_error(capsys)
    assert "already holds a checkpoint" in err and "--resume" in err and "--overwrite" in err
    assert (out / "checkpoint" / "state.safetensors").read_bytes() == before
    assert cli.main([*TRAIN, "--out", str(out), "--steps", "1", "--overwrite", "--resume"]) == 2
    _one_line_error(capsys)
    # --overwrite replaces it.
    assert cli.main([*TRAIN, "--out", str(out), "--steps", "1", "--overwrite"]) == 0
    capsys.readouterr()
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == 1


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--steps", "0"], "--steps"),
        (["--steps", "-5"], "--steps"),
        (["--checkpoint-every", "-1"], "--checkpoint-every"),
        (["--batch-size", "0"], "--batch-size"),
        (["--lr", "-1e-3"], "--lr"),
        (["--lr", "nan"], "--lr"),
    ],
)
def test_train_images_bad_numbers_are_one_line(tmp_path, capsys, args, fragment):
    out = tmp_path / "run"
    assert cli.main(["train-images", "--out", str(out), "--no-progress", *args]) == 2
    assert fragment in _one_line_error(capsys)
    assert not out.exists()


@needs_diffusers
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--steps", "1"], "below the checkpoint's step 2"),
        (["--steps", "3", "--lr", "1e-3"], "lr differs"),
        (["--steps", "3", "--seed", "4"], "seed differs"),
    ],
)
def test_train_images_resume_mismatch_is_one_line(trained, tmp_path, capsys, args, fragment):
    out = _copy(trained, tmp_path / "run")
    assert cli.main([*TRAIN, "--out", str(out), "--resume", *args]) == 2
    assert fragment in _one_line_error(capsys)


def _damage_state_json(ckpt: Path) -> None:
    (ckpt / "state.json").write_text("{not json")


def _truncate_state(ckpt: Path) -> None:
    blob = (ckpt / "state.safetensors").read_bytes()
    (ckpt / "state.safetensors").write_bytes(blob[: len(blob) // 3])


def _drop_model_weights(ckpt: Path) -> None:
    (ckpt / "model" / "diffusion_pytorch_model.safetensors").unlink()


def _nan_weights(ckpt: Path) -> None:
    from safetensors.torch import load_file, save_file

    f = ckpt / "model" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(str(f))
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(f))


@needs_diffusers
@pytest.mark.parametrize(
    "damage, fragment",
    [
        (_damage_state_json, "damaged checkpoint"),
        (_truncate_state, "damaged checkpoint"),
        (_drop_model_weights, "damaged checkpoint"),
        (_nan_weights, "non-finite"),
    ],
)
def test_train_images_damaged_checkpoint_is_one_line(trained, tmp_path, capsys, damage, fragment):
    from toymanifold.images.train import load_unet

    out = _copy(trained, tmp_path / "run")
    damage(out / "checkpoint")
    assert cli.main([*TRAIN, "--out", str(out), "--resume", "--steps", "3"]) == 2
    assert fragment in _one_line_error(capsys)
    if damage in (_nan_weights, _drop_model_weights):
        with pytest.raises(ValueError, match=fragment):
            load_unet(out)


@needs_diffusers
def test_train_images_divergence_keeps_the_last_checkpoint(trained, tmp_path, capsys):
    """A loss that turns NaN stops the run before that update; the checkpoint on disk stays finite."""
    from toymanifold.images import train

    out = _copy(trained, tmp_path / "run")
    before = (out / "checkpoint" / "state.safetensors").read_bytes()
    with pytest.raises(FloatingPointError, match="diverged at step 2"):
        train.train_unet(
            out,
            steps=4,
            batch_size=2,
            resume=True,
            progress=False,
            checkpoint_every=1,
            data=torch.full((4, 1, 8, 8), float("inf")),
        )
    assert (out / "checkpoint" / "state.safetensors").read_bytes() == before
    capsys.readouterr()
