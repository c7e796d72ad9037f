"""The ``toymanifold`` command.

Subcommands:

``toymanifold report --out DIR``
    The main job: trains a small MLP denoiser, measures how far the exact
    projection, the closed-form ideal denoiser and the trained MLP are from projection
    (THEORY §2), runs DDIM against Theorem 1's envelope (THEORY §3), compares the
    samplers of THEORY §5 at equal cost, and writes ``DIR/report.html`` (self-contained,
    viewable offline), ``DIR/figures/*.png`` and ``DIR/results.json``.
``toymanifold train-images ...``
    Train a small image model (registered by :mod:`toymanifold.images.train`).

Bad input (unknown manifold or option, ``--steps < 1``, an ambient dimension the data
set or the report's memory cannot take, an output folder that cannot be written) prints
one line ``toymanifold: error: ...`` and exits with status 2. The report is written into
a temporary folder beside ``--out`` and moved into place only when it is complete, so an
interrupted or failed run leaves nothing half-written behind: SIGINT and SIGTERM remove
the temporary folder (exit status 130 and 143), and the temporary folders of runs killed
outright are removed by the next run into the same folder once they are clearly stale.

This module is the top of the data flow (docs/design.md): it lives in :mod:`analysis`
because it runs the analysis; ``toymanifold`` never imports it. The console script
``toymanifold`` is ``analysis.cli:main``.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from toymanifold import __version__
from toymanifold.datasets import DATASETS, resolve_name
from toymanifold.validation import arg_int

__all__ = ["MAX_REPORT_AMBIENT_DIM", "build_parser", "main", "report_memory_bytes"]

#: Exit status for bad input, as argparse uses.
EXIT_USAGE = 2


#: Largest ``--ambient-dim`` of ``report``. The report's MLP denoiser keeps the data
#: covariance's n × n eigenvectors (4 n² bytes in float32: 40 GB at n = 100 000) and
#: estimates the covariance from 20 n samples of n float64 coordinates (160 n² bytes).
#: At n = 2048 that is about 0.7 GB, and the O(n³) eigendecomposition takes seconds.
MAX_REPORT_AMBIENT_DIM = 2048


def report_memory_bytes(ambient_dim: int) -> int:
    """The report's largest allocations for ``n = ambient_dim``: about ``(4 + 8 + 160) n²`` bytes.

    ``4 n²`` the MLP's float32 eigenvector buffer, ``8 n²`` the float64 covariance and
    ``160 n²`` its estimate from ``20 n`` float64 samples (:func:`toymanifold.train_denoiser`).
    """
    return 172 * ambient_dim * ambient_dim


class UsageError(Exception):
    """Bad input found after parsing (reported as one line, exit status 2)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that every ``finally``/cleanup runs (exit status 143)."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``prog: error: message``) and exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())}\n")


def _manifold_name(value: str) -> str:
    try:
        return resolve_name(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown manifold {value!r} (choose from {', '.join(DATASETS)})") from None


def _add_report_command(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="run the main job and write report.html, figures/*.png and results.json",
        description="Train a small MLP denoiser on a toy manifold, measure (η, ν) for the exact projection, "
        "the ideal and the trained denoiser, check DDIM against Theorem 1, compare samplers at equal NFE, and "
        "write a self-contained HTML report (docs/theory.md, §2–§5).",
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output folder (created; replaced if it holds an earlier report; refused if it holds anything else)",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--manifold",
        type=_manifold_name,
        default=None,
        metavar="NAME",
        help="data set K: " + "; ".join(f"{k}: {d.summary}" for k, d in DATASETS.items()) + " (default: sphere)",
    )
    what.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="PATH",
        help="report on a trained image model instead, with its training set as K: a `toymanifold train-images` "
        "output folder or a diffusers folder (save_pretrained of the UNet2DModel and its scheduler config)",
    )
    p.add_argument(
        "--data",
        choices=("digits", "cifar10"),
        default=None,
        help="with --model: the training set of the model (digits: scikit-learn's 8x8 digits; cifar10: needs "
        "--data-root)",
    )
    p.add_argument(
        "--data-root", default=None, metavar="DIR", help="with --data cifar10: the folder holding cifar-10-batches-py"
    )
    p.add_argument(
        "--ambient-dim",
        type=arg_int(1),
        default=None,
        metavar="N",
        help="ambient dimension n (default 64; the base manifold is embedded isometrically)",
    )
    p.add_argument(
        "--steps", type=arg_int(1), default=None, metavar="K", help="MLP training steps (default 1500, --quick 100)"
    )
    p.add_argument("--seed", type=arg_int(0), default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="torch device for the MLP and the samplers (default cpu)")
    p.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run in well under 30 s (--model: under a minute)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_report)


def _add_train_images_command(subparsers) -> None:
    """Register ``train-images`` from :mod:`toymanifold.images.train`, or a stub that explains why not."""
    try:
        from toymanifold.images.train import add_train_images_command
    except Exception as exc:  # any failure must not break `report`
        reason = f"{type(exc).__name__}: {exc}"

        def _unavailable(args) -> int:
            print(f"toymanifold: error: train-images is unavailable ({' '.join(reason.split())})", file=sys.stderr)
            return EXIT_USAGE

        p = subparsers.add_parser("train-images", help="train a small image model (unavailable here)", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=_unavailable)
        return
    add_train_images_command(subparsers)


def build_parser() -> argparse.ArgumentParser:
    """The ``toymanifold`` argument parser (subcommands ``report`` and ``train-images``)."""
    parser = _Parser(
        prog="toymanifold",
        description="Denoising as projection, DDIM as gradient descent: "
        "exact toy manifolds, samplers and the bounds of Permenter & Yuan (ICML 2024).",
    )
    parser.add_argument("--version", action="version", version=f"toymanifold {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{report,train-images}", parser_class=_Parser)
    _add_report_command(sub)
    _add_train_images_command(sub)
    return parser


# --------------------------------------------------------------------------- report


def _check_device(name: str):
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device: not a torch device: {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device: {name!r} requested but CUDA is not available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UsageError(f"--device: {name!r} does not exist ({torch.cuda.device_count()} CUDA devices)")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise UsageError(f"--device: {name!r} requested but MPS is not available")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"--device: unsupported device type {dev.type!r} (use cpu, cuda or mps)")
    return dev


def _run_report(args) -> int:
    device = _check_device(args.device)
    if args.model is not None:
        return _run_model_report(args, device)
    for flag, value in (("--data", args.data), ("--data-root", args.data_root)):
        if value is not None:
            raise UsageError(f"{flag} is an option of the model report: use it with --model PATH")
    from .report import OutputError, ReportConfig, check_output_folder, run_report, write_report_atomically

    config = ReportConfig(
        manifold=args.manifold or "sphere",
        ambient_dim=args.ambient_dim,
        steps=args.steps,
        seed=args.seed,
        device=str(device),
        quick=args.quick,
        progress=not args.no_progress,
    )
    # Everything that can be refused is refused before minutes of work.
    if args.ambient_dim is not None:
        try:
            DATASETS[config.manifold].check_ambient_dim(args.ambient_dim)
        except ValueError as exc:
            raise UsageError("--ambient-dim: " + str(exc).removeprefix("ambient_dim ")) from None
        if args.ambient_dim > MAX_REPORT_AMBIENT_DIM:
            gib = report_memory_bytes(args.ambient_dim) / 2**30
            raise UsageError(
                f"--ambient-dim: must be <= {MAX_REPORT_AMBIENT_DIM} for the report, got {args.ambient_dim}: its MLP "
                f"denoiser keeps the n x n data covariance and fits it from 20 n samples, about {gib:.3g} GiB "
                f"at n = {args.ambient_dim}"
            )
    try:
        check_output_folder(args.out)
        results = run_report(config)
        out = write_report_atomically(results, args.out).parent
    except OutputError as exc:
        raise UsageError(f"--out: {exc}") from None
    if not args.no_progress:
        print(f"report written to {out}/report.html ({results['meta']['wall_time_s']:.1f} s)", file=sys.stderr)
    return 0


def _run_model_report(args, device) -> int:
    """``report --model PATH --data NAME``: the model report (:mod:`analysis.model_report`)."""
    for flag, value in (("--ambient-dim", args.ambient_dim), ("--steps", args.steps)):
        if value is not None:
            raise UsageError(f"{flag} is an option of the toy report and cannot be used with --model")
    if args.data is None:
        raise UsageError("--model needs --data (digits or cifar10): the data set the model was trained on")
    if args.data_root is not None and args.data != "cifar10":
        raise UsageError("--data-root is only used with --data cifar10")
    from .model_report import InputError, ModelReportConfig, ModelReportContext, run_model_report, write_model_report
    from .report import OutputError, check_output_folder, write_report_atomically

    config = ModelReportConfig(
        model=str(args.model),
        data=args.data,
        data_root=args.data_root,
        seed=args.seed,
        device=str(device),
        quick=args.quick,
        progress=not args.no_progress,
    )
    # Everything that can be refused (output folder, model, data, their fit) is refused before minutes of work.
    try:
        check_output_folder(args.out)
        ctx = ModelReportContext.build(config)
    except OutputError as exc:
        raise UsageError(f"--out: {exc}") from None
    except InputError as exc:
        raise UsageError(f"{exc.option}: {exc}") from None
    results = run_model_report(config, ctx)
    try:
        out = write_report_atomically(results, args.out, writer=write_model_report).parent
    except OutputError as exc:
        raise UsageError(f"--out: {exc}") from None
    if not args.no_progress:
        print(f"report written to {out}/report.html ({results['meta']['wall_time_s']:.1f} s)", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``toymanifold`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or bad input (2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    if getattr(args, "func", None) is None:
        print("toymanifold: error: a command is required (report or train-images; see --help)", file=sys.stderr)
        return EXIT_USAGE
    try:
        with _sigterm_raises():
            return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"toymanifold: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Terminated:
        print("toymanifold: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("toymanifold: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


@contextlib.contextmanager
def _sigterm_raises():
    """While the command runs, SIGTERM raises :class:`Terminated` (like SIGINT's KeyboardInterrupt).

    The default SIGTERM action ends the process at once, skipping the cleanup that
    removes a half-written report's temporary folder; an exception runs it. Signal
    handlers can only be set in the main thread; elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
