"""The documentation site and the report, opened in a real browser.

Playwright drives Debian's Chromium (``/usr/bin/chromium``, or ``$TOYMANIFOLD_CHROMIUM``;
no browser is ever downloaded) against the built site served from a local port:

- every page loads with no console error, no uncaught exception, no failed request and no
  request to any other host (the site works offline);
- formulas are typeset: every ``.arithmatex`` element holds KaTeX output and no raw
  ``$$``, ``\\(`` or ``\\[`` is left in the text;
- search finds ``gradient_estimation``; every notebook page shows its plots;
- ``report.html`` of ``toymanifold report --quick`` loads with no console error and every
  plotly 3-D view draws.

The site is ``site/`` when it is newer than every source it is built from (CI builds it
with ``mkdocs build --strict`` just before the tests); otherwise the test builds it. It
takes two screenshots (a theory page with formulas, a notebook page) into a temporary
folder, or into ``$TOYMANIFOLD_SCREENSHOTS`` when set (docs/assets/ holds the committed ones).
Without Playwright or Chromium the tests skip and say why.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["mkdocs.yml", "docs", "notebooks", "toymanifold", "analysis"]

from _chromium import launch, sync_playwright  # noqa: E402 (skips this module without a browser)

pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------------------
# Fixtures: the site, a local server, the browser
# --------------------------------------------------------------------------------------


def newest_source_mtime() -> float:
    """The newest modification time of the site's sources (not caches, not this test's screenshots)."""
    newest = 0.0
    for name in SOURCES:
        path = ROOT / name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for p in files:
            if "__pycache__" not in p.parts and not p.name.startswith("screenshot_"):
                newest = max(newest, p.stat().st_mtime)
    return newest


def run_module(*args: str) -> None:
    """``python -m ARGS`` from the repository root, with this checkout first on the path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    command = [sys.executable, "-m", *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"python -m {' '.join(args)} failed:\n{done.stderr[-6000:]}"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    built = ROOT / "site"
    if (built / "index.html").exists() and (built / "sitemap.xml").stat().st_mtime > newest_source_mtime():
        return built
    out = tmp_path_factory.mktemp("site")
    run_module("mkdocs", "build", "--strict", "--site-dir", str(out))
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "quick"
    run_module("analysis.cli", "report", "--out", str(out), "--quick", "--no-progress")
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def origin(site):
    """The site served over HTTP from a local port (the search index loads through fetch, not from file://)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with sync_playwright() as p:
        context = launch(p, tmp_path_factory.mktemp("chromium-profile"))
        yield context
        context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("TOYMANIFOLD_SCREENSHOTS")
    return Path(folder) if folder else tmp_path_factory.mktemp("screenshots")


class Visit:
    """One page load with everything the browser reported: console errors, exceptions, requests."""

    def __init__(self, context, url: str, origin: str):
        self.errors: list[str] = []
        self.page = page = context.new_page()
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url} ({r.failure})"))
        page.on("response", lambda r: self.errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
        page.on(
            "request",
            lambda r: (
                None
                if r.url.startswith((origin, "data:", "blob:", "about:"))
                else self.errors.append(f"request to another host: {r.url}")
            ),
        )
        page.set_default_timeout(120_000)  # generous: CI machines are shared
        page.goto(url, wait_until="load")
        # Ready when every image has loaded and KaTeX has typeset every formula it will.
        page.wait_for_function(
            """() => [...document.images].every(i => i.complete)
                && [...document.querySelectorAll('.arithmatex')].every(e => e.querySelector('.katex'))"""
        )

    def close(self):
        self.page.close()


def site_pages(site: Path) -> list[str]:
    pages = sorted(p.relative_to(site).parent.as_posix() for p in site.rglob("index.html"))
    return ["/" if p == "." else f"/{p}/" for p in pages]


# --------------------------------------------------------------------------------------
# The documentation site
# --------------------------------------------------------------------------------------

UNTYPESET_MATH = """() => {
    const walker = document.createTreeWalker(document.querySelector("article") || document.body, NodeFilter.SHOW_TEXT);
    const raw = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (node.parentElement.closest("pre, code, script, style, .katex, textarea")) continue;
        const text = node.textContent;
        if (text.includes("$$") || text.includes("\\\\(") || text.includes("\\\\[")) raw.push(text.trim().slice(0, 80));
    }
    const untypeset = [...document.querySelectorAll(".arithmatex")].filter(e => !e.querySelector(".katex"));
    return {raw, untypeset: untypeset.length, typeset: document.querySelectorAll(".katex").length};
}"""


def test_every_page_loads_cleanly_with_typeset_math(site, origin, browser):
    pages = site_pages(site)
    assert len(pages) >= 30, f"only {len(pages)} pages built"
    problems, typeset = {}, {}
    for path in pages:
        try:
            visit = Visit(browser, origin + path, origin)
        except Exception as error:
            problems[path] = [f"did not load: {error}"]
            continue
        math = visit.page.evaluate(UNTYPESET_MATH)
        typeset[path] = math["typeset"]
        found = list(visit.errors)
        if math["raw"]:
            found.append(f"raw math delimiters left: {math['raw'][:3]}")
        if math["untypeset"]:
            found.append(f"{math['untypeset']} formulas not typeset")
        if found:
            problems[path] = found
        visit.close()
    assert not problems, "\n".join(f"{p}: {e}" for p, e in problems.items())
    assert typeset["/theory/"] >= 200, f"the theory page has {typeset['/theory/']} typeset formulas"


def test_search_finds_gradient_estimation(origin, browser):
    visit = Visit(browser, origin + "/", origin)
    page = visit.page
    page.fill("input.md-search__input", "gradient_estimation")
    page.wait_for_selector(".md-search-result__item", timeout=20_000)
    results = page.inner_text(".md-search-result")
    assert "gradient_estimation" in results, results[:2000]
    links = page.eval_on_selector_all(".md-search-result__link", "links => links.map(a => a.href)")
    assert any("api/samplers/" in link for link in links), f"no result leads to the samplers' API page: {links}"
    assert not visit.errors, visit.errors
    visit.close()


def test_notebooks_show_their_plots(origin, browser, screenshots):
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for name in notebooks:
        visit = Visit(browser, f"{origin}/notebooks/{name}/", origin)
        page = visit.page
        outputs = page.locator(".jp-OutputArea-output").count()
        plots = page.eval_on_selector_all(
            ".jp-OutputArea-output img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        assert outputs > 0, f"{name}: no cell outputs on the page"
        assert plots and all(ok and w > 100 and h > 100 for ok, w, h in plots), f"{name}: plots {plots}"
        assert not visit.errors, f"{name}: {visit.errors}"
        if name.startswith("03"):
            page.locator(".jp-OutputArea-output img").first.evaluate("img => img.scrollIntoView({block: 'center'})")
            page.wait_for_timeout(1000)  # let the header's title transition finish
            page.screenshot(path=str(screenshots / "screenshot_notebook.png"))
        visit.close()


def test_theory_screenshot(origin, browser, screenshots):
    visit = Visit(browser, origin + "/theory/", origin)
    visit.page.evaluate("document.getElementById('3-ddim-is-gradient-descent-on-f').scrollIntoView()")
    visit.page.wait_for_timeout(1000)  # let the header's title transition finish
    visit.page.screenshot(path=str(screenshots / "screenshot_theory.png"))
    assert not visit.errors, visit.errors
    visit.close()


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------


def drawn_fraction(png: bytes) -> float:
    """Fraction of pixels that differ from the most common colour (the background)."""
    import matplotlib.image

    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")[..., :3].reshape(-1, 3)
    _, counts = np.unique((pixels * 255).round().astype(np.uint8), axis=0, return_counts=True)
    return 1.0 - counts.max() / counts.sum()


def test_report_opens_and_draws_every_3d_view(report, browser):
    """report.html is one self-contained file: opened from disk, as a user opens it, it requests nothing."""
    html = report / "report.html"
    visit = Visit(browser, html.as_uri(), html.as_uri())
    page = visit.page
    plots = page.evaluate(
        """() => [...document.querySelectorAll('.js-plotly-plot')].map(div =>
            Object.keys(div._fullLayout || {}).filter(k => /^scene\\d*$/.test(k)).length)"""
    )
    assert sum(plots) > 0, f"report.html has no plotly 3-D view ({len(plots)} plotly figures)"
    views = page.locator(".js-plotly-plot div[id^='scene']")
    assert views.count() == sum(plots), f"{views.count()} 3-D views drawn for {sum(plots)} scenes"
    for i in range(views.count()):
        view = views.nth(i)
        view.scroll_into_view_if_needed()
        page.wait_for_timeout(300)  # a frame for WebGL
        fraction = drawn_fraction(view.screenshot())
        assert fraction > 0.05, f"3-D view {i} looks blank: {fraction:.2%} of its pixels differ from the background"
    assert not visit.errors, visit.errors
    visit.close()
