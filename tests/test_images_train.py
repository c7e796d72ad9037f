"""Training the digits UNet (resume, checkpoints, CLI errors) and the image data loaders."""

import argparse
import pickle

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
from safetensors.torch import load_file

from toymanifold.images.data import load_cifar10, load_digits_images
from toymanifold.images.train import add_train_images_command, load_unet, train_unet

TINY = dict(
    sample_size=8,
    in_channels=1,
    out_channels=1,
    layers_per_block=1,
    block_out_channels=(8, 8),
    down_block_types=("DownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "UpBlock2D"),
    norm_num_groups=4,
)


def small_data():
    return load_digits_images("all")[0][:64]


def state(path):
    return load_file(str(path / "checkpoint" / "state.safetensors"))


def test_resume_from_interrupted_run(tmp_path, monkeypatch):
    kw = dict(batch_size=8, unet_config=TINY, data=small_data(), progress=False, warmup=2)
    ref = train_unet(tmp_path / "ref", steps=4, checkpoint_every=0, **kw)
    assert ref["step"] == 4

    # interrupt a run right after its step-2 checkpoint
    import toymanifold.images.train as tr

    real_save = tr._save_checkpoint

    def save_then_stop(out, *args):
        real_save(out, *args)
        if args[-2] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(tr, "_save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train_unet(tmp_path / "run", steps=4, checkpoint_every=2, **kw)
    monkeypatch.setattr(tr, "_save_checkpoint", real_save)
    assert load_file(str(tmp_path / "run" / "checkpoint" / "state.safetensors"))  # step-2 checkpoint exists
    again = train_unet(tmp_path / "run", steps=4, checkpoint_every=2, resume=True, **kw)
    assert again["step"] == 4
    sa, sb = state(tmp_path / "ref"), state(tmp_path / "run")
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0)
    # the saved EMA model loads (safetensors + JSON config) and runs
    unet, cfg = load_unet(tmp_path / "run")
    assert cfg["num_train_timesteps"] == 1000 and cfg["beta_schedule"] == "linear"
    assert unet(torch.zeros(2, 1, 8, 8), torch.tensor([3, 4])).sample.shape == (2, 1, 8, 8)
    assert not any(p.name.startswith(".") for p in (tmp_path / "run").iterdir())  # no temporary folders left


def test_resume_with_other_settings_is_refused(tmp_path):
    kw = dict(unet_config=TINY, data=small_data(), progress=False, warmup=1, checkpoint_every=0)
    train_unet(tmp_path, steps=1, batch_size=4, **kw)
    with pytest.raises(ValueError, match="batch_size"):
        train_unet(tmp_path, steps=2, batch_size=8, resume=True, **kw)
    with pytest.raises(FileNotFoundError):
        train_unet(tmp_path / "none", steps=2, batch_size=4, resume=True, **kw)


def test_data_shape_mismatch(tmp_path):
    with pytest.raises(ValueError, match="UNet expects"):
        train_unet(tmp_path, steps=1, unet_config=dict(TINY, sample_size=16), data=small_data(), progress=False)


def parse(argv):
    parser = argparse.ArgumentParser(prog="toymanifold")
    add_train_images_command(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without a GPU")
def test_cli_device_cuda_without_gpu(tmp_path, capsys):
    args = parse(["train-images", "--dataset", "digits", "--device", "cuda", "--out", str(tmp_path), "--steps", "1"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "no CUDA GPU is available" in err and "--device cpu" in err
    assert not (tmp_path / "checkpoint").exists()


def test_cli_arguments(tmp_path):
    args = parse(["train-images", "--out", str(tmp_path), "--steps", "3", "--seed", "5", "--resume", "--no-progress"])
    assert (args.dataset, args.device, args.steps, args.seed, args.resume) == ("digits", "cpu", 3, 5, True)
    args = parse(["train-images", "--dataset", "cifar10", "--out", str(tmp_path), "--steps", "1", "--no-progress"])
    assert args.func(args) == 2  # cifar10 without --data-root: a clear error, not a crash


def test_digits_images():
    x, _ = load_digits_images()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == torch.float32
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    xt, yt = load_digits_images("test")
    xr, _ = load_digits_images("train")
    assert len(xt) + len(xr) == 1797 and set(yt.tolist()) == set(range(10))


def write_cifar(root, n_per_batch=4, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n_per_batch).tolist()
        batches[name] = (data, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": b"x", b"labels": labels, b"data": data, b"filenames": [b"a"] * n_per_batch}, f)
    return batches


def test_cifar10_loader_on_local_files(tmp_path):
    batches = write_cifar(tmp_path)
    x, y = load_cifar10(tmp_path, train=True)
    assert x.shape == (20, 3, 32, 32) and y.shape == (20,) and x.dtype == torch.float32
    data, labels = batches["data_batch_2"]
    # rows are R, G, B planes of 32×32 in row-major order; v ↦ v/127.5 − 1
    expected = torch.from_numpy(data[1].reshape(3, 32, 32).astype(np.float32) / 127.5 - 1.0)
    torch.testing.assert_close(x[5], expected, rtol=0, atol=0)
    assert y[4:8].tolist() == labels
    xt, _ = load_cifar10(tmp_path, train=False)
    assert xt.shape == (4, 3, 32, 32)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar10_loader_refuses_arbitrary_objects(tmp_path, capsys):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_cifar10(tmp_path, train=False)
    assert "pwned" not in capsys.readouterr().out


def test_cifar10_missing_files_and_bad_batches(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_cifar10(tmp_path, train=True)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 10), dtype=np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match="3072"):
        load_cifar10(tmp_path, train=False)
