"""Train a small diffusers ``UNet2DModel`` as an ε-prediction DDPM (THEORY §1).

``toymanifold train-images --dataset digits --device cpu --out DIR`` trains on
scikit-learn's 8×8 digits (offline); ``--dataset cifar10`` reads the CIFAR-10 python
batches (optional extra). Loss: ``E ‖ε_θ(√ᾱ_t x0 + √(1 − ᾱ_t) ε, t) − ε‖²`` with
``t`` uniform on ``0 … T − 1`` and linear betas 1e-4 … 0.02, T = 1000.

Checkpoint layout (``DIR/checkpoint``, replaced atomically: written to a temporary
folder, then renamed):

- ``model/config.json`` + ``model/diffusion_pytorch_model.safetensors``: the EMA
  weights, loadable with ``UNet2DModel.from_pretrained``;
- ``scheduler/scheduler_config.json``: the DDPM betas (``pipe.scheduler.config``);
- ``state.safetensors`` + ``state.json``: raw weights, optimizer moments, the data/
  noise generator state and the step, so ``--resume`` continues exactly where the
  run stopped (same numbers as an uninterrupted run on the same device).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..validation import arg_int, arg_positive_float, check_int, check_nonnegative, check_positive
from ._optional import require

__all__ = [
    "CHECKPOINT",
    "add_train_images_command",
    "cifar10_unet_config",
    "digits_unet_config",
    "load_unet",
    "resolve_device",
    "train_unet",
]

CHECKPOINT = "checkpoint"


def digits_unet_config() -> dict:
    """A small ``UNet2DModel`` config for 8×8 single-channel digits (8 → 4, ≈ 0.65 M parameters).

    Sized to train on a CPU in minutes; convolutional blocks only (attention at this
    size costs more than it helps).
    """
    return dict(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )


def cifar10_unet_config() -> dict:
    """A ``UNet2DModel`` config for 32×32 RGB images (a small DDPM-style UNet)."""
    return dict(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        layers_per_block=2,
        block_out_channels=(64, 128, 128, 128),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    )


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)``, with a clear error when CUDA is asked for but absent."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {str(device)!r} was requested but no CUDA GPU is available "
            "(torch.cuda.is_available() is False); use --device cpu"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RuntimeError(f"device {str(device)!r} was requested but only {torch.cuda.device_count()} GPU(s) exist")
    return dev


def _load_data(dataset: str, data_root: str | None) -> torch.Tensor:
    from .data import load_cifar10, load_digits_images

    if dataset == "digits":
        return load_digits_images("all")[0]
    if dataset == "cifar10":
        if data_root is None:
            raise ValueError("--dataset cifar10 needs --data-root (the folder holding cifar-10-batches-py)")
        return load_cifar10(data_root, train=True)[0]
    raise ValueError(f"dataset must be 'digits' or 'cifar10', got {dataset!r}")


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"opt.{idx}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    return tensors, {"param_groups": sd["param_groups"]}


def _save_checkpoint(out: Path, unet, ema, sched, opt, gen, step: int, meta: dict) -> None:
    from safetensors.torch import save_file

    final = out / CHECKPOINT
    tmp = out / f".{CHECKPOINT}.tmp"
    old = out / f".{CHECKPOINT}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    ema.save_pretrained(tmp / "model", safe_serialization=True)
    sched.save_pretrained(tmp / "scheduler")
    tensors = {f"param.{k}": v.detach().cpu().contiguous() for k, v in unet.state_dict().items()}
    opt_t, opt_meta = _optimizer_tensors(opt)
    tensors.update(opt_t)
    tensors["rng"] = gen.get_state()
    save_file(tensors, str(tmp / "state.safetensors"))
    _write_json(tmp / "state.json", dict(meta, step=step, optimizer=opt_meta))
    # swap folders: the previous checkpoint stays readable until the new one is complete
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _find_checkpoint(path: str | os.PathLike) -> Path:
    p = Path(path)
    for cand in (p, p / CHECKPOINT, p / f".{CHECKPOINT}.old"):
        if (cand / "model" / "config.json").is_file() and (cand / "scheduler").is_dir():
            return cand
    raise FileNotFoundError(f"no checkpoint found in {p} (expected {p / CHECKPOINT}/model and scheduler)")


def _existing_checkpoint(out: Path) -> Path | None:
    """The checkpoint a run in ``out`` would replace (``out/checkpoint`` or its ``.old`` copy), if any."""
    for cand in (out / CHECKPOINT, out / f".{CHECKPOINT}.old"):
        if cand.exists():
            return cand
    return None


def _check_finite_tensors(tensors: dict[str, torch.Tensor], where: Path) -> None:
    """Refuse weights holding NaN or inf: a diverged run's checkpoint, never something to sample from."""
    for name, t in tensors.items():
        if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"checkpoint {where} holds non-finite values (NaN or inf) in {name!r}: refused")


def load_unet(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Load a trained model: ``(unet, scheduler_config)`` from ``DIR`` or ``DIR/checkpoint``.

    Weights come from safetensors (no unpickling). The UNet is in eval mode on ``device``.
    Raises ``FileNotFoundError`` without a checkpoint and ``ValueError`` for a damaged one
    or weights holding NaN or inf.
    """
    diffusers = require("diffusers", "load_unet")
    ckpt = _find_checkpoint(path)
    try:
        unet = diffusers.UNet2DModel.from_pretrained(ckpt / "model", use_safetensors=True)
        sched = diffusers.DDPMScheduler.from_pretrained(ckpt / "scheduler")
    except Exception as exc:  # diffusers raises OSError, ValueError, JSON and safetensors errors
        raise ValueError(f"damaged checkpoint {ckpt}: {type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    _check_finite_tensors(unet.state_dict(), ckpt / "model")
    return unet.to(resolve_device(device)).eval(), sched.config


def _lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10 % of ``lr``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    frac = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0))))


def train_unet(
    out: str | os.PathLike,
    *,
    dataset: str = "digits",
    steps: int = 6000,
    batch_size: int = 128,
    lr: float = 2e-3,
    warmup: int = 200,
    ema_decay: float = 0.999,
    seed: int = 0,
    device: str | torch.device = "cpu",
    resume: bool = False,
    checkpoint_every: int = 1000,
    data_root: str | None = None,
    unet_config: dict | None = None,
    progress: bool = True,
    data: torch.Tensor | None = None,
    max_seconds: float | None = None,
    overwrite: bool = False,
) -> dict:
    """Train an ε-prediction ``UNet2DModel`` (THEORY §1) and checkpoint it under ``out``.

    Parameters
    ----------
    out : path
        Output folder; the checkpoint is ``out/checkpoint`` (see the module docstring).
    dataset : {"digits", "cifar10"}
        Training images (``data`` overrides it with a tensor ``(N, C, H, W)`` in [−1, 1]).
    steps : int
        Total optimizer steps, ``≥ 1`` (a resumed run continues up to ``steps``; fewer
        than the checkpoint's step is refused).
    resume : bool
        Continue from ``out/checkpoint`` (weights, optimizer, generator state, step). The
        settings that shape the run (dataset, batch size, learning rate, warm-up, EMA
        decay, seed, UNet config) must equal the checkpoint's.
    overwrite : bool
        Without ``resume``, a folder that already holds a checkpoint is refused (it would
        be replaced at the first save); ``overwrite=True`` replaces it.
    checkpoint_every : int
        Save every that many steps (``0``: only at the end).
    max_seconds : float, optional
        Stop (and checkpoint) once this run has taken that long, even before ``steps``.
    unet_config : dict, optional
        ``UNet2DModel`` keyword arguments (default :func:`digits_unet_config` or
        :func:`cifar10_unet_config`); must match the data's channels and size.

    Returns
    -------
    dict
        ``step``, ``loss`` (mean of the last 100 steps), ``seconds`` (this run),
        ``checkpoint`` (path).

    Raises
    ------
    ValueError
        Bad settings, a checkpoint in ``out`` without ``resume``/``overwrite``, a resume
        whose settings differ from the checkpoint's, or a damaged checkpoint (one line
        each; nothing is written).
    FloatingPointError
        The loss became NaN or inf: training stops before that step's update and the
        last checkpoint on disk is kept.
    """
    diffusers = require("diffusers", "train_unet")
    from tqdm.auto import tqdm

    steps = check_int(steps, "steps", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    lr = check_positive(lr, "lr")
    warmup = check_int(warmup, "warmup", minimum=0)
    ema_decay = check_nonnegative(ema_decay, "ema_decay")
    if ema_decay >= 1:
        raise ValueError(f"ema_decay must lie in [0, 1), got {ema_decay}")
    seed = check_int(seed, "seed", minimum=0)
    checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=0)
    if max_seconds is not None:
        max_seconds = check_positive(max_seconds, "max_seconds")
    out = Path(out)
    if resume and overwrite:
        raise ValueError("give at most one of resume and overwrite")
    existing = None if resume else _existing_checkpoint(out)
    if existing is not None and not overwrite:
        raise ValueError(
            f"{out} already holds a checkpoint ({existing}); pass --resume to continue it or --overwrite to replace it"
        )
    dev = resolve_device(device)
    x_all = _load_data(dataset, data_root) if data is None else torch.as_tensor(data, dtype=torch.float32)
    if unet_config is None:
        unet_config = digits_unet_config() if x_all.shape[-1] == 8 else cifar10_unet_config()
    c, h = unet_config["in_channels"], unet_config["sample_size"]
    if tuple(x_all.shape[1:]) != (c, h, h):
        raise ValueError(f"data images have shape {tuple(x_all.shape[1:])} but the UNet expects {(c, h, h)}")
    meta = dict(
        dataset=dataset,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup=warmup,
        ema_decay=ema_decay,
        seed=seed,
        unet_config=unet_config,
    )

    torch.manual_seed(seed)  # UNet initialisation
    unet = diffusers.UNet2DModel(**unet_config).to(dev).train()
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
    opt = torch.optim.Adam(unet.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)  # data indices, timesteps, noise (CPU: same on every device)
    start = 0
    history: list = []
    if resume:
        ckpt = _find_checkpoint(out)
        state, tensors, ema = _read_resume_state(ckpt, diffusers)
        for k in ("dataset", "batch_size", "lr", "warmup", "ema_decay", "seed", "unet_config"):
            if json.loads(json.dumps(meta[k])) != state.get(k):
                raise ValueError(f"--resume: {k} differs from the checkpoint ({meta[k]} vs {state.get(k)})")
        start = int(state["step"])
        if steps < start:
            raise ValueError(f"--resume: steps = {steps} is below the checkpoint's step {start}")
        try:
            unet.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("param.")})
            opt_state: dict = {}
            for k, v in tensors.items():
                if k.startswith("opt."):
                    _, idx, name = k.split(".", 2)
                    opt_state.setdefault(int(idx), {})[name] = v.to(dev) if name != "step" else v
            opt.load_state_dict({"state": opt_state, "param_groups": state["optimizer"]["param_groups"]})
            gen.set_state(tensors["rng"])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ValueError(f"damaged checkpoint {ckpt}: {type(exc).__name__}: {' '.join(str(exc).split())}") from exc
        history = state.get("history", [])
        ema = ema.to(dev)
    else:
        ema = diffusers.UNet2DModel(**unet_config).to(dev)
        ema.load_state_dict(unet.state_dict())
    ema.eval().requires_grad_(False)
    abar = sched.alphas_cumprod.to(dev)
    x_all = x_all.to(dev)
    n, T = x_all.shape[0], sched.config.num_train_timesteps

    t0 = time.time()
    recent: list[float] = []
    bar = tqdm(range(start, steps), initial=start, total=steps, disable=not progress, desc="train-images")
    end = start
    for step in bar:
        idx = torch.randint(n, (batch_size,), generator=gen)
        t = torch.randint(T, (batch_size,), generator=gen)
        eps = torch.randn((batch_size, *x_all.shape[1:]), generator=gen).to(dev)
        idx, t = idx.to(dev), t.to(dev)
        a = abar[t].reshape(-1, 1, 1, 1)
        z = a.sqrt() * x_all[idx] + (1 - a).sqrt() * eps
        loss = torch.nn.functional.mse_loss(unet(z, t).sample, eps)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            # Before the update: the weights in memory and the last checkpoint stay finite.
            raise FloatingPointError(
                f"training diverged at step {step}: loss = {loss_value} (lr = {lr}); the last checkpoint in {out} "
                "is kept; resume from it with a lower --lr"
            )
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, steps, lr, warmup)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), unet.parameters()):
                pe.lerp_(p, 1.0 - decay)
        recent.append(loss_value)
        recent = recent[-100:]
        if (step + 1) % 50 == 0:
            history.append([step + 1, sum(recent) / len(recent)])
            bar.set_postfix(loss=f"{history[-1][1]:.4f}")
        end = step + 1
        if checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            _save_checkpoint(out, unet, ema, sched, opt, gen, step + 1, dict(meta, history=history))
        if max_seconds is not None and time.time() - t0 > max_seconds:
            break
    bar.close()
    _save_checkpoint(out, unet, ema, sched, opt, gen, end, dict(meta, history=history))
    return {
        "step": end,
        "loss": sum(recent) / len(recent) if recent else float("nan"),
        "seconds": time.time() - t0,
        "checkpoint": str(out / CHECKPOINT),
    }


def _read_resume_state(ckpt: Path, diffusers) -> tuple[dict, dict[str, torch.Tensor], Any]:
    """``(state.json, state.safetensors tensors, EMA UNet)`` of a checkpoint, or a ``ValueError`` if damaged."""
    from safetensors.torch import load_file

    try:
        state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
        if not isinstance(state, dict) or not isinstance(state.get("step"), int):
            raise ValueError("state.json has no integer 'step'")
        tensors = load_file(str(ckpt / "state.safetensors"))
        ema = diffusers.UNet2DModel.from_pretrained(ckpt / "model", use_safetensors=True)
    except Exception as exc:  # JSON, safetensors, diffusers and file errors all mean a damaged checkpoint
        raise ValueError(f"damaged checkpoint {ckpt}: {type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    _check_finite_tensors(tensors, ckpt / "state.safetensors")
    _check_finite_tensors(ema.state_dict(), ckpt / "model")
    return state, tensors, ema


# ----------------------------------------------------------------------------- CLI


def _handler(args: argparse.Namespace) -> int:
    try:
        summary = train_unet(
            args.out,
            dataset=args.dataset,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            device=args.device,
            resume=args.resume,
            checkpoint_every=args.checkpoint_every,
            data_root=args.data_root,
            progress=not args.no_progress,
            overwrite=args.overwrite,
        )
    except FloatingPointError as exc:
        print(f"toymanifold train-images: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except (RuntimeError, ValueError, OSError, ImportError) as exc:
        print(f"toymanifold train-images: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(
        f"trained {summary['step']} steps in {summary['seconds']:.1f} s, loss {summary['loss']:.4f}; "
        f"checkpoint: {summary['checkpoint']}"
    )
    return 0


def add_train_images_command(subparsers) -> argparse.ArgumentParser:
    """Register ``train-images`` on an argparse ``subparsers`` object (``set_defaults(func=handler)``)."""
    p = subparsers.add_parser(
        "train-images",
        help="train a small diffusers UNet2DModel (ε-prediction DDPM) on digits or CIFAR-10",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--dataset", choices=("digits", "cifar10"), default="digits")
    p.add_argument("--data-root", default=None, help="folder holding cifar-10-batches-py (cifar10 only)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--out", required=True, help="output folder (checkpoint in OUT/checkpoint)")
    p.add_argument("--steps", type=arg_int(1), default=6000, help="total optimizer steps")
    p.add_argument("--batch-size", type=arg_int(1), default=128)
    p.add_argument("--lr", type=arg_positive_float, default=2e-3)
    p.add_argument("--seed", type=arg_int(0), default=0)
    p.add_argument("--checkpoint-every", type=arg_int(0), default=1000, help="save every K steps (0: only at the end)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    p.add_argument(
        "--overwrite", action="store_true", help="replace a checkpoint already in OUT (refused without this flag)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_handler)
    return p
