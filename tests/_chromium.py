"""Debian's Chromium driven by Playwright, shared by the browser tests (never a downloaded browser).

Importing this module skips the importing test module, with the reason, where Playwright or
Chromium is missing (``/usr/bin/chromium``, or ``$TOYMANIFOLD_CHROMIUM``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("TOYMANIFOLD_CHROMIUM", "/usr/bin/chromium"))
# Headless, and nothing that phones home: without the background-networking flags Chromium
# opens connections of its own, which fail without network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # WebGL (plotly's 3-D views) on the CPU, through Chromium's own software renderer.
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]

try:
    from playwright.sync_api import sync_playwright
except ImportError as error:  # pragma: no cover - depends on the environment
    pytest.skip(f"playwright is not installed ({error}): pip install -e '.[dev]'", allow_module_level=True)
if not CHROMIUM.exists():  # pragma: no cover - depends on the environment
    pytest.skip(
        f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set TOYMANIFOLD_CHROMIUM)",
        allow_module_level=True,
    )


def launch(p, profile: Path, width: int = 1280, height: int = 900):
    """A fresh Chromium context (user-data dir ``profile``) with a ``width`` × ``height`` viewport."""
    return p.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
        viewport={"width": width, "height": height},
    )  # fmt: skip


__all__ = ["CHROMIUM", "launch", "sync_playwright"]
