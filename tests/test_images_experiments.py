"""The real-image experiment (η along DDIM on the digits) and the digits classifier plumbing."""

import math

import torch

from toymanifold.images.classifier import DigitsClassifier, _negatives, load_classifier, save_classifier
from toymanifold.images.experiments import eta_along_ddim


def test_eta_along_ddim_on_digits():
    res = eta_along_ddim(n_steps=6, num_samples=4, seed=1)
    N, B = 6, 4
    assert res["sigma"].shape == (N,) and res["eta"].shape == (N, B) and res["r"].shape == (N, B)
    assert bool((res["eta"] >= 0).all()) and bool(torch.isfinite(res["eta"]).all())
    # Corollary 3: r_N ≈ 1 once σ_N ≫ R/√n (σ_N = 80, R/√n ≤ 1 for data in [−1, 1]^64);
    # |‖ξ‖/√n − 1| is O(1/√(2n)) ≈ 0.09 and R/(√n σ_N) ≤ 0.0125, so 0.3 is loose but safe.
    assert bool(((res["r"][0] - 1).abs() < 0.3).all())
    # Lemma 2: η → 0 as σ → 0 (at σ_1 ≈ 0.045 the nearest digit has all the weight)
    assert float(res["sigma"][-1]) < 0.05
    assert float(res["eta"][-1].max()) < 1e-6
    # the DDIM output of the ideal denoiser ends next to a training digit
    assert float(res["final_dist"].max()) < 0.05 * math.sqrt(64)


def test_eta_of_another_denoiser_along_the_ideal_trajectory():
    import toymanifold as tm

    K = tm.datasets.digits()
    zero = lambda x, s: torch.zeros_like(x)  # noqa: E731  x̂0 = x: η = dist/dist = 1 exactly
    res = eta_along_ddim(n_steps=3, num_samples=2, denoiser=zero)
    torch.testing.assert_close(res["eta"], torch.ones_like(res["eta"]), rtol=1e-12, atol=0)
    assert K.ambient_dim == 64


def test_classifier_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = DigitsClassifier().eval()
    save_classifier(model, tmp_path, 0.5)
    again, acc = load_classifier(tmp_path)
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)
    assert acc == 0.5 and model.features(x).shape == (3, DigitsClassifier.feature_dim)
    assert model.predict_proba(x).shape == (3, 11)
    neg = _negatives(x, torch.Generator().manual_seed(0))
    assert neg.shape == x.shape and float(neg.abs().max()) <= 1.0
