"""MLPDenoiser and train_denoiser: a tiny training run, checkpoints, bad input.

The 1.2×-of-Bayes-floor claim is measured by benchmarks/denoisers.py, not here.
"""

import json
import os
import pickle

import pytest
import torch

import toymanifold as tm
from toymanifold.denoisers.mlp import _checkpoint_digest, sample_sigmas


def _eval_loss(model, K, seed=5, num=2000):
    g = torch.Generator().manual_seed(seed)
    x0 = K.sample(num, g, dtype=torch.float32)
    s = sample_sigmas(num, g)
    e = torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        return float((model(x0 + s[:, None] * e, s) - e).square().sum(1).mean())


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    K = tm.Embedded(tm.Circle(), 8, seed=1)
    model = tm.MLPDenoiser(8, hidden=32, depth=2)
    before = _eval_loss(model, K)
    history = tm.train_denoiser(model, K, steps=150, batch_size=128, progress=False, seed=3)
    return K, model, before, history


def test_training_reduces_loss_toward_the_floor(trained):
    K, model, before, history = trained
    assert len(history) == 150 and all(isinstance(v, float) for v in history)
    after = _eval_loss(model, K)
    g = torch.Generator().manual_seed(5)
    x0 = K.sample(2000, g, dtype=torch.float32)
    s = sample_sigmas(2000, g)
    e = torch.randn(x0.shape, generator=g)
    floor = float((tm.ideal_denoiser(K)(x0 + s[:, None] * e, s) - e).square().sum(1).mean())
    assert after < 0.8 * before
    assert floor < after  # a 150-step model is still far above the Bayes floor
    assert sum(history[-20:]) < sum(history[:20])


def test_training_is_reproducible_and_accepts_tensors():
    pts = tm.Sphere(2).sample(256, 0, dtype=torch.float32)
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        m = tm.MLPDenoiser(3, hidden=16, depth=1)
        runs.append(tm.train_denoiser(m, pts, steps=10, batch_size=32, progress=False, sigma_dist="lognormal"))
    assert runs[0] == runs[1]


def test_save_load_roundtrip(tmp_path, trained):
    K, model, _, _ = trained
    path = model.save(tmp_path / "ckpt")
    loaded = tm.MLPDenoiser.load(path)
    assert loaded.config() == model.config()
    x = K.sample(16, 0, dtype=torch.float32)
    torch.testing.assert_close(loaded(x, 0.1), model(x, 0.1), rtol=0, atol=0)
    # Overwriting works and leaves no temporary files behind.
    model.save(path)
    assert sorted(os.listdir(path)) == ["config.json", "model.safetensors"]
    # float64 models round-trip in float64.
    m64 = tm.MLPDenoiser(3, hidden=8, depth=1).double()
    m64.save(tmp_path / "m64")
    assert tm.MLPDenoiser.load(tmp_path / "m64")._param().dtype == torch.float64


def test_corrupt_truncated_and_foreign_checkpoints(tmp_path, trained):
    _, model, _, _ = trained
    path = model.save(tmp_path / "c")
    w = path / "model.safetensors"
    good = w.read_bytes()
    w.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(ValueError, match="SHA-256"):
        tm.MLPDenoiser.load(path)
    w.write_bytes(good)
    (path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        tm.MLPDenoiser.load(path)
    (path / "config.json").write_text(json.dumps({"format": "something.else"}))
    with pytest.raises(ValueError, match="not an MLPDenoiser"):
        tm.MLPDenoiser.load(path)
    with pytest.raises(FileNotFoundError):
        tm.MLPDenoiser.load(tmp_path / "missing")


class _Boom:
    def __reduce__(self):
        return (os.mkdir, (str(_Boom.marker),))


def test_pickle_payload_is_never_executed(tmp_path, trained):
    """A foreign file whose hash matches the config must fail to parse, not run."""
    _, model, _, _ = trained
    path = model.save(tmp_path / "evil")
    _Boom.marker = tmp_path / "pwned"
    payload = pickle.dumps({"x": _Boom()})
    (path / "model.safetensors").write_bytes(payload)
    cfg = json.loads((path / "config.json").read_text())
    cfg["sha256"] = _checkpoint_digest(cfg, payload)
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="corrupt or foreign"):
        tm.MLPDenoiser.load(path)
    assert not _Boom.marker.exists()


def test_bad_input(trained):
    K, model, _, _ = trained
    x = K.sample(4, 0, dtype=torch.float32)
    with pytest.raises(ValueError, match="x"):
        model(x.double(), 0.1)  # dtype mismatch
    with pytest.raises(ValueError, match="x"):
        model(x[:, :5], 0.1)  # shape mismatch
    for sigma in (0.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            model(x, sigma)
    assert model(x.double().numpy(), 0.1).dtype == torch.float32  # NumPy input is converted
    with pytest.raises(ValueError, match="sigma_dist"):
        tm.train_denoiser(model, K, steps=1, sigma_dist="uniform", progress=False)
    with pytest.raises(ValueError, match="ambient_dim"):
        tm.train_denoiser(tm.MLPDenoiser(3), K, steps=1, progress=False)
    with pytest.raises(ValueError, match="sigma_max"):
        tm.train_denoiser(model, K, steps=1, sigma_min=1.0, sigma_max=0.5, progress=False)
    with pytest.raises(TypeError, match="model"):
        tm.train_denoiser(torch.nn.Linear(2, 2), K, steps=1, progress=False)


def test_checksum_covers_the_configuration(tmp_path, trained):
    """Editing config.json (a different width, dtype, or format field) is detected, not loaded."""
    _, model, _, _ = trained
    path = model.save(tmp_path / "c")
    cfg = json.loads((path / "config.json").read_text())
    for key, value in (("dtype", "float64"), ("config", {**cfg["config"], "embedding_dim": 16})):
        edited = {**cfg, key: value}
        (path / "config.json").write_text(json.dumps(edited))
        with pytest.raises(ValueError, match="SHA-256"):
            tm.MLPDenoiser.load(path)
    (path / "config.json").write_text(json.dumps(cfg))
    assert tm.MLPDenoiser.load(path).config() == model.config()


def test_nonfinite_weights_are_refused_on_load(tmp_path, trained):
    """A checkpoint whose hash matches but whose weights hold NaN (a diverged run) is refused."""
    _, model, _, _ = trained
    bad = tm.MLPDenoiser(**model.config())
    bad.load_state_dict(model.state_dict())
    with torch.no_grad():
        bad.out.weight[0, 0] = float("nan")
    path = bad.save(tmp_path / "nan")
    with pytest.raises(ValueError, match="non-finite"):
        tm.MLPDenoiser.load(path)


def test_training_arguments_are_validated(trained):
    K, model, _, _ = trained
    for kw, exc, name in (
        (dict(log_std=0.0), ValueError, "log_std"),
        (dict(log_std=-1.0), ValueError, "log_std"),
        (dict(log_mean=float("nan")), ValueError, "log_mean"),
        (dict(log_mean="big"), TypeError, "log_mean"),
        (dict(weight_decay=-1e-4), ValueError, "weight_decay"),
        (dict(weight_decay=float("inf")), ValueError, "weight_decay"),
        (dict(weight_decay=True), TypeError, "weight_decay"),
    ):
        with pytest.raises(exc, match=name):
            tm.train_denoiser(model, K, steps=1, progress=False, **kw)


@pytest.mark.parametrize("dtype, cause", [(torch.float32, "learning rate"), (torch.float16, "float16")])
def test_divergence_restores_finite_parameters_and_names_the_cause(dtype, cause):
    """A run that diverges leaves the last finite parameters and says why (float16 included)."""
    K = tm.Embedded(tm.Circle(), 8, seed=1)
    torch.manual_seed(0)
    model = tm.MLPDenoiser(8, hidden=16, depth=1).to(dtype)
    lr = 1e8 if dtype == torch.float32 else 2e-3
    with pytest.raises(FloatingPointError, match=cause) as info:
        tm.train_denoiser(model, K, steps=50, batch_size=32, lr=lr, progress=False)
    assert "training diverged at step" in str(info.value)
    assert all(bool(torch.isfinite(q).all()) for q in model.parameters())
    assert not model.training  # left in eval mode, as after a successful run


def test_format_version_1_is_refused_with_the_reason(tmp_path, trained):
    _, model, _, _ = trained
    path = model.save(tmp_path / "old")
    cfg = json.loads((path / "config.json").read_text())
    cfg["format_version"] = 1
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="version 1 checksummed the weights only"):
        tm.MLPDenoiser.load(path)
