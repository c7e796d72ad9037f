"""Image data sets: scikit-learn's digits (offline) and CIFAR-10 (optional download).

Images are returned as float32 tensors ``(N, C, H, W)`` in ``[−1, 1]`` with int64
labels, the layout diffusers' UNets take.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

__all__ = ["CIFAR10_FOLDER", "load_cifar10", "load_digits_images"]

CIFAR10_FOLDER = "cifar-10-batches-py"
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = ("test_batch",)


def load_digits_images(split: str = "all", *, test_fraction: float = 0.2, seed: int = 0):
    """scikit-learn's 8×8 digits as images ``(N, 1, 8, 8)`` in ``[−1, 1]`` and labels.

    The pixel map is that of ``tm.datasets.digits()`` (``v/8 − 1``), so a sample of the
    image model and a point of that :class:`FiniteSet` are the same vector after
    ``reshape(N, 64)``. ``split`` is ``"all"``, ``"train"`` or ``"test"``: a fixed,
    stratified split (``test_fraction``, ``seed``) used by the digits classifier.
    """
    from ..datasets import digits_arrays

    x, y = digits_arrays()
    x = x.to(torch.float32).reshape(-1, 1, 8, 8)
    if split == "all":
        return x, y
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'all', 'train' or 'test', got {split!r}")
    from sklearn.model_selection import train_test_split

    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=test_fraction, random_state=seed, stratify=y.numpy()
    )
    idx = torch.as_tensor(idx_train if split == "train" else idx_test)
    return x[idx], y[idx]


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """What protocol-2 pickles written by Python 3 call as ``_codecs.encode(text, "latin1")``.

    They store ``bytes`` that way; only that codec is accepted (no codec lookup by name).
    """
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r})")
    return text.encode("latin1")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only; any other global is refused.

    Accepts the original Python 2 batches and files pickled by Python 3 with protocols
    2 to 5 (protocol 2 stores bytes through ``_codecs.encode``, protocol 5 arrays
    through ``numpy``'s ``_frombuffer``).
    """

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module, name):
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to unpickle {module}.{name}: a CIFAR-10 batch holds only dicts, lists and NumPy arrays"
        )


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        batch = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    if not isinstance(batch, dict):
        raise ValueError(f"{path} is not a CIFAR-10 batch (expected a dict, got {type(batch).__name__})")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path} is not a CIFAR-10 batch: keys {sorted(map(str, batch))}")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{path}: expected uint8 data of shape (N, 3072) and N labels, got {data.dtype} {data.shape} "
            f"and {labels.shape[0]} labels"
        )
    return data, labels


def load_cifar10(root: str | os.PathLike, train: bool = True, *, download: bool = False):
    """CIFAR-10 from its standard python batches: images ``(N, 3, 32, 32)`` in ``[−1, 1]``, labels.

    Reads ``root/cifar-10-batches-py/data_batch_1..5`` (``train=True``) or
    ``test_batch`` with a restricted unpickler that accepts only containers and NumPy
    arrays (never arbitrary objects). ``download=True`` fetches the archive through
    torchvision (the optional ``cifar`` extra, needs internet) when the files are
    missing; nothing is downloaded otherwise.
    """
    folder = Path(root) / CIFAR10_FOLDER
    names = _CIFAR_TRAIN if train else _CIFAR_TEST
    missing = [n for n in names if not (folder / n).is_file()]
    if missing and download:
        try:
            from torchvision.datasets.utils import download_and_extract_archive
        except ImportError as exc:
            raise ImportError(
                "downloading CIFAR-10 needs torchvision: `pip install toymanifold[cifar]`, or place the python "
                f"batches in {folder}"
            ) from exc
        download_and_extract_archive(
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            str(root),
            md5="c58f30108f718f92721af3b95e74349a",
        )
        missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 batches {missing} not found in {folder} (pass download=True to fetch them)")
    parts = [_read_batch(folder / n) for n in names]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    x = torch.from_numpy(data.reshape(-1, 3, 32, 32).astype(np.float32) / 127.5 - 1.0)
    return x, torch.from_numpy(labels)
