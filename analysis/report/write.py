"""Writing a report: ``results.json``, ``figures/*.png`` and ``report.html``, never half-written.

:func:`write_report` writes into a folder; :func:`write_report_atomically` writes into
a temporary folder beside the destination and moves it into place only when it is
complete, so an interrupted or failed run leaves the destination as it was.

The temporary folder is ``.NAME.tmp-HOST-PID-XXXX`` (``HOST`` a short hash of the host
name, ``PID`` the writing process). It is removed on any error and on SIGINT/SIGTERM
(the command turns SIGTERM into an exception, :mod:`analysis.cli`); a run killed
outright (SIGKILL, power loss) leaves it behind, and the next report into the same
folder removes it (:func:`remove_stale_temporaries`) — only when it is clearly stale:
made on this host by a process that no longer exists, or untouched for a day.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from .render import INTERACTIVE, make_figures, make_slider_figures, png_bytes, render_html

__all__ = [
    "REPORT_FILES",
    "OutputError",
    "check_output_folder",
    "remove_stale_temporaries",
    "write_report",
    "write_report_atomically",
]

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
    # Every plotly figure is written without plotly.js, which the page inlines once (in its head).
    plotly_options = {"full_html": False, "include_plotlyjs": False, "config": {"responsive": True}}
    for stem, fig in make_figures(results).items():
        if stem == INTERACTIVE:
            interactive = fig.to_html(**plotly_options)
            continue
        pngs[stem] = png_bytes(fig)
        (out / "figures" / f"{stem}.png").write_bytes(pngs[stem])
    sliders = {
        name: fig.to_html(div_id=f"slider_{name}", **plotly_options)
        for name, fig in make_slider_figures(results).items()
    }
    plotlyjs = None
    if interactive is not None or sliders:
        from plotly.offline import get_plotlyjs

        plotlyjs = get_plotlyjs()
    page = render_html(results, pngs, interactive, sliders, plotlyjs)
    (out / "report.html").write_text(page, encoding="utf-8")
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
    remove_stale_temporaries(out)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(out, "tmp"), dir=parent))
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
    old = Path(tempfile.mkdtemp(prefix=_temporary_prefix(out, "old"), dir=out.absolute().parent))
    os.rmdir(old)
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


#: A temporary folder untouched for this long is stale whoever made it (no report takes
#: a day to write its files).
STALE_AFTER_S = 24 * 3600.0


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _temporary_prefix(out: Path, kind: str) -> str:
    """``.NAME.KIND-HOST-PID-``: who made the folder, so that a later run can tell whether it is stale."""
    return f".{out.name}.{kind}-{_host_tag()}-{os.getpid()}-"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process (or an absurd pid): assume alive
        return True
    return True


def remove_stale_temporaries(out, *, now: float | None = None) -> list[Path]:
    """Remove the temporary folders that killed report runs into ``out`` left behind; return them.

    A ``.NAME.tmp-*`` folder beside ``out`` is removed only when it is clearly stale: its
    name says it was made on this host by a process that no longer exists, or it has
    not been modified for :data:`STALE_AFTER_S` (a day; the only rule for folders of
    other hosts on a shared file system and for names without an owner). The folder of
    a report being written right now (a live process of this host) is never touched. A
    ``.NAME.old-*`` folder (an earlier report set aside while the new one is moved in)
    follows the same rule, and only when ``out`` exists (otherwise it may be the only copy).
    """
    out = Path(out).expanduser()
    parent = out.absolute().parent
    now = time.time() if now is None else now
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(tmp|old)-(?:([0-9a-f]{{8}})-(\d+)-)?")
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None or entry.is_symlink() or not entry.is_dir():
            continue
        kind, host, pid = m.groups()
        if kind == "old" and not out.is_dir():
            continue
        try:
            age = now - entry.stat().st_mtime
        except OSError:
            continue
        orphan = host == _host_tag() and pid is not None and not _process_exists(int(pid))
        if orphan or age > STALE_AFTER_S:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
