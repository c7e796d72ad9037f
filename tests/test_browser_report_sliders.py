"""The report's kernel-free sliders (η over the Theorem 1 view, γ over the GE trajectories), in a real browser.

``report.html`` of ``toymanifold report --quick`` is opened from disk in Debian's Chromium
(``/usr/bin/chromium``, driven by Playwright; no browser is ever downloaded). For every
slider figure a click on another step of the slider must change the moving trace to exactly
that step's precomputed values, with no console error, no uncaught exception and no request
to any other host. Without Playwright or Chromium the test skips and says why.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
from _chromium import launch, sync_playwright  # noqa: E402 (skips this module without a browser)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "quick"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    done = subprocess.run(
        [sys.executable, "-m", "analysis.cli", "report", "--out", str(out), "--quick", "--no-progress"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"toymanifold report --quick failed:\n{done.stderr[-6000:]}"
    return out / "report.html"


# What a slider figure holds in the page: its active step, and per step the label and the values
# of the moving traces (the restyle of Plotly.update), next to what those traces show now.
STATE = """(id) => {
    const div = document.getElementById(id);
    const slider = div._fullLayout.sliders[0];
    const steps = div.layout.sliders[0].steps;
    const [restyle, , indices] = steps[0].args;
    const axis = 'z' in restyle ? 'z' : 'y';
    return {
        active: slider.active,
        labels: steps.map(s => s.label),
        axis: axis,
        // What plotly draws: the traces as it decoded them (typed arrays, NaN gaps).
        shown: indices.map(j => Array.from(div._fullData.find(t => t.index === j)[axis], v => v === null ? NaN : v)),
        steps: steps.map(s => s.args[0][axis].map(a => Array.from(a, v => v === null ? NaN : v))),
    };
}"""


def settled(page, fig_id: str, target: int, timeout_s: float = 20.0) -> dict:
    """The figure's state once the slider is at ``target`` and its update has been drawn (it may take a frame)."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = page.evaluate(STATE, fig_id)
        drawn = all(
            np.array_equal(np.array(a), np.array(b), equal_nan=True)
            for a, b in zip(state["shown"], state["steps"][target])
        )
        if (state["active"] == target and drawn) or time.monotonic() > deadline:
            return state
        page.wait_for_timeout(100)


def test_moving_a_slider_changes_the_traces_to_that_steps_values(report, tmp_path):
    errors: list[str] = []
    origin = report.as_uri()
    with sync_playwright() as p:
        context = launch(p, tmp_path / "chromium-profile")
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
            page.on(
                "request",
                lambda r: (
                    None
                    if r.url.startswith((origin, "data:", "blob:", "about:"))
                    else errors.append(f"request to another host: {r.url}")
                ),
            )
            page.goto(origin, wait_until="load")
            ids = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].map(d => d.id)")
            sliders = [i for i in ids if i.startswith("slider_")]
            assert {"slider_theorem1_eta", "slider_gamma_mlp", "slider_gamma_ideal"} <= set(sliders), ids
            for fig_id in sliders:
                before = page.evaluate(STATE, fig_id)
                start = before["active"]
                np.testing.assert_array_equal(np.array(before["shown"][0]), np.array(before["steps"][start][0]))
                target = len(before["labels"]) - 1 if start != len(before["labels"]) - 1 else 0
                # Click the slider's rail at the target step's tick, as a reader does.
                div = page.locator(f"#{fig_id}")
                div.scroll_into_view_if_needed()
                tick = div.locator(".slider-tick-rect").nth(target).bounding_box()
                rail = div.locator(".slider-rail-touch-rect").bounding_box()
                page.mouse.click(tick["x"] + tick["width"] / 2, rail["y"] + rail["height"] / 2)
                after = settled(page, fig_id, target)
                for shown, expected in zip(after["shown"], after["steps"][target]):
                    np.testing.assert_array_equal(np.array(shown), np.array(expected))
                moved = f"{fig_id}: slider from {before['labels'][start]} to {before['labels'][target]}"
                assert not all(
                    np.array_equal(np.array(a), np.array(b), equal_nan=True)
                    for a, b in zip(after["shown"], before["shown"])
                ), f"{moved} changed no trace"
            page.wait_for_timeout(300)  # a frame for WebGL to report a failure, if any
        finally:
            context.close()
    assert not errors, errors


def test_the_page_does_not_overflow_sideways_at_800_px(report, tmp_path):
    """A reader on a narrow window scrolls down, never sideways: the page is no wider than 800 px
    (wide tables and figures scroll inside their own boxes)."""
    with sync_playwright() as p:
        context = launch(p, tmp_path / "chromium-profile", width=800)
        try:
            page = context.new_page()
            page.goto(report.as_uri(), wait_until="load")
            page.wait_for_timeout(500)  # plotly lays its figures out after load
            widths = page.evaluate(
                "() => ({page: document.documentElement.scrollWidth, view: document.documentElement.clientWidth})"
            )
            wide = page.evaluate(
                """() => [...document.body.querySelectorAll('*')]
                    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
                    .filter(e => !e.closest('.scroll'))
                    .slice(0, 5).map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)"""
            )
        finally:
            context.close()
    assert widths["page"] <= widths["view"], f"the page is {widths['page']} px wide at {widths['view']} px: {wide}"
