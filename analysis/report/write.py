"""Writing a report: ``results.json``, ``figures/*.png`` and ``report.html``, never half-written.

:func:`write_report` writes into a folder; :func:`write_report_atomically` writes into
a temporary folder beside the destination and moves it into place only when it is
complete, so an interrupted or failed run leaves the destination as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .render import make_figures, png_bytes, render_html

__all__ = ["REPORT_FILES", "OutputError", "check_output_folder", "write_report", "write_report_atomically"]

#: What a report folder holds; a folder with anything else is never replaced.
REPORT_FILES = frozenset({"report.html", "results.json", "figures"})


class OutputError(ValueError):
    """The output folder cannot take a report (the message names the reason)."""


def write_report(results: dict[str, Any], out_dir) -> Path:
    """Write ``results.json``, ``figures/*.png`` and ``report.html`` into ``out_dir`` (which must exist).

    Returns the path of ``report.html``.
    """
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=1, allow_nan=False, ensure_ascii=False)
    (out / "results.json").write_text(text, encoding="utf-8")
    pngs: dict[str, bytes] = {}
    interactive = None
    for stem, fig in make_figures(results).items():
        if stem == "trajectories_3d":
            interactive = fig.to_html(full_html=False, include_plotlyjs=True)
            continue
        pngs[stem] = png_bytes(fig)
        (out / "figures" / f"{stem}.png").write_bytes(pngs[stem])
    (out / "report.html").write_text(render_html(results, pngs, interactive), encoding="utf-8")
    return out / "report.html"


def check_output_folder(out) -> Path:
    """``out`` if a report may be written there: absent, empty or an earlier report; else :class:`OutputError`."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputError(f"{str(out)!r} exists and is not a folder")
    if out.is_dir():
        entries = {p.name for p in out.iterdir()}
        if entries and not entries <= REPORT_FILES:
            raise OutputError(f"{str(out)!r} is not empty and does not hold an earlier report; choose a new folder")
    parent = out.absolute().parent
    if not parent.is_dir():
        raise OutputError(f"parent folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write in {str(parent)!r}")
    return out


def write_report_atomically(results: dict[str, Any], out, *, writer=None) -> Path:
    """:func:`write_report` into a temporary folder beside ``out``, then rename it to ``out``.

    An earlier report in ``out`` is replaced only once the new one is complete.
    ``writer(results, folder)`` replaces :func:`write_report` for another kind of report
    with the same files (the model report's ``write_model_report``). Returns the path of
    ``report.html``.
    """
    out = check_output_folder(out)
    parent = out.absolute().parent
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    except OSError as exc:
        raise OutputError(f"cannot write in {str(parent)!r} ({exc.strerror or exc})") from None
    try:
        # mkdtemp makes the folder private (0700); the report gets the permissions of any new folder.
        os.chmod(tmp, 0o777 & ~_umask())
        (writer or write_report)(results, tmp)
        _install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "report.html"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _install(tmp: Path, out: Path) -> None:
    """Move the finished report ``tmp`` to ``out`` (replacing an earlier report there)."""
    if not out.is_dir():
        os.rename(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.absolute().parent))
    os.rmdir(old)
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
