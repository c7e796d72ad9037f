"""A small CNN classifier for the 8×8 digits: test accuracy and features for a Fréchet distance.

The image benchmark scores samples by the Fréchet distance between Gaussians fitted
to classifier features of samples and of real digits (as FID does with Inception
features), and by the share of samples the classifier labels confidently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

__all__ = ["DigitsClassifier", "load_classifier", "save_classifier", "train_classifier"]


class DigitsClassifier(nn.Module):
    """CNN on ``(B, 1, 8, 8)`` images in [−1, 1]: two 3×3 convolutions, 2×2 pooling, 128-d features.

    Eleven outputs: the digits 0–9 and a *reject* class 10 ("not a digit"), trained on
    noise, heavily noised digits and pixel-scrambled digits, so that a confident digit
    label means a recognisable digit rather than the least unlikely of ten.
    """

    feature_dim = 128
    num_classes = 11
    reject_class = 10

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, self.feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(self.feature_dim, self.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features ``(B, 128)``; inputs are clamped to [−1, 1]."""
        return self.body(x.reshape(-1, 1, 8, 8).clamp(-1.0, 1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 11)`` (class 10: not a digit)."""
        return self.head(self.features(x))

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(B, 11)`` (class 10: not a digit)."""
        return torch.softmax(self(x), dim=1)


def _negatives(xb: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Non-digits for the reject class: Gaussian noise, heavily noised digits (σ ∈ [1, 2]),
    and digits with scrambled pixels (a digit's intensities without its shape)."""
    b = xb.shape[0]
    kind = torch.randint(0, 3, (b, 1, 1, 1), generator=g)
    noise = torch.randn(xb.shape, generator=g)
    sigma = 1.0 + torch.rand((b, 1, 1, 1), generator=g)
    noised = xb + sigma * noise
    flat = xb.reshape(b, -1)
    scrambled = torch.stack([row[torch.randperm(flat.shape[1], generator=g)] for row in flat]).reshape(xb.shape)
    out = torch.where(kind == 0, noise, torch.where(kind == 1, noised, scrambled))
    return out.clamp(-1.0, 1.0)


def train_classifier(
    *, epochs: int = 25, seed: int = 0, device: str | torch.device = "cpu", batch_size: int = 64, progress: bool = False
) -> tuple[DigitsClassifier, float]:
    """Train :class:`DigitsClassifier` on the fixed train split; return it (eval mode) and its test accuracy.

    Each batch adds random ±1-pixel shifts and small pixel noise (σ = 0.05) to the
    digits, and half as many non-digits (:func:`_negatives`, labelled 10). The test
    accuracy is over the held-out digits only, with a "not a digit" answer counted wrong.
    """
    from tqdm.auto import trange

    from .data import load_digits_images

    x_tr, y_tr = load_digits_images("train")
    x_te, y_te = load_digits_images("test")
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = DigitsClassifier().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in trange(epochs, disable=not progress, desc="classifier"):
        perm = torch.randperm(len(y_tr), generator=g)
        for b in range(0, len(perm), batch_size):
            idx = perm[b : b + batch_size]
            xb = x_tr[idx]
            shift = torch.randint(-1, 2, (2,), generator=g).tolist()
            xb = torch.roll(xb, shifts=shift, dims=(2, 3))
            xb = (xb + 0.05 * torch.randn(xb.shape, generator=g)).clamp(-1.0, 1.0)
            neg = _negatives(x_tr[idx[: len(idx) // 2]], g)
            inputs = torch.cat([xb, neg]).to(dev)
            labels = torch.cat([y_tr[idx], torch.full((len(neg),), DigitsClassifier.reject_class)]).to(dev)
            loss = nn.functional.cross_entropy(model(inputs), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x_te.to(dev)).argmax(1).cpu() == y_te).float().mean().item()
    return model, acc


def save_classifier(model: DigitsClassifier, folder: str | os.PathLike, test_accuracy: float | None = None) -> None:
    """Weights as safetensors + a JSON sidecar, each written atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "classifier.safetensors.tmp"
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    os.replace(tmp, folder / "classifier.safetensors")
    tmp = folder / "classifier.json.tmp"
    tmp.write_text(json.dumps({"class": "DigitsClassifier", "test_accuracy": test_accuracy}))
    os.replace(tmp, folder / "classifier.json")


def load_classifier(folder: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[DigitsClassifier, float]:
    """Load a classifier saved by :func:`save_classifier`: ``(model, test_accuracy)``."""
    from safetensors.torch import load_file

    folder = Path(folder)
    model = DigitsClassifier()
    model.load_state_dict(load_file(str(folder / "classifier.safetensors")))
    meta = json.loads((folder / "classifier.json").read_text())
    return model.to(device).eval(), meta.get("test_accuracy")
