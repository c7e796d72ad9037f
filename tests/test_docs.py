"""The README and the documentation pages say only what runs and cite only what exists.

- Every fenced code block in README.md and docs/ runs. ``python`` blocks run, in page
  order, in one fresh interpreter per page (a page reads top to bottom, like a notebook);
  ``bash`` blocks run in a temporary folder. Blocks the test cannot run are tagged
  ``console`` and open with a ``#`` comment saying why (installs that need a package
  index, or the CI command itself, which CI runs: see ``test_ci_runs_the_readme_commands``).
  ``text`` and untagged blocks are printed output or file listings, not code.
- Names the pages cite (``tm.sample``, ``analysis.theorem1_bounds``, ...) exist, and the
  repository files they, the docstrings and the notebooks cite (``docs/theory.md``,
  ``benchmarks/analysis.py``, ...) exist.
- The API reference has a page for every public module (docs/api/), and every page is in
  the site's navigation (mkdocs.yml).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
RUN, SKIP = {"python", "bash"}, {"console", "text", ""}


def blocks(path: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(path.read_text(encoding="utf-8"))]


def page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def run_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOYMANIFOLD_NOTEBOOK_SMALL="1")
    return env


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_every_code_block_is_tagged(path):
    for lang, body in blocks(path):
        assert lang in RUN | SKIP, f"{page_id(path)}: a code block tagged {lang!r}; use one of {sorted(RUN | SKIP)}"
        if lang == "console":
            first = body.lstrip().splitlines()[0] if body.strip() else ""
            assert re.match(r"#\s*\S", first), f"{page_id(path)}: a console block must open with '# why it is not run'"


# Pages whose blocks are known not to run yet. Strict: the test fails once such a page runs,
# so that its entry goes.
KNOWN_FRAGMENTS: dict[str, str] = {}


def runnable_pages():
    for path in PAGES:
        if any(lang in RUN for lang, _ in blocks(path)):
            reason = KNOWN_FRAGMENTS.get(page_id(path))
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            yield pytest.param(path, marks=marks, id=page_id(path))


@pytest.mark.parametrize("path", runnable_pages())
def test_code_blocks_run(path, tmp_path):
    python = "\n\n".join(body for lang, body in blocks(path) if lang == "python")
    if python:
        script = tmp_path / "page.py"
        script.write_text(python, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=run_env(), capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, (
            f"{page_id(path)}: its python blocks fail:\n{done.stdout[-3000:]}{done.stderr[-6000:]}"
        )
    for lang, body in blocks(path):
        if lang == "bash":
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", body],
                cwd=tmp_path,
                env=run_env(),
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, f"{page_id(path)}: bash block fails:\n{body}\n{done.stderr[-6000:]}"


def test_readme_main_job_runs(tmp_path):
    """The README's first command installs the toolkit and runs the main job; the install needs
    PyPI, the job itself runs here exactly as written after the ``&&``, and writes what the README says."""
    commands = [body for lang, body in blocks(ROOT / "README.md") if lang == "console" and "toymanifold report" in body]
    assert commands, "README.md: no console block with the main job"
    line = next(ln for ln in commands[0].splitlines() if "toymanifold report" in ln)
    install, _, job = line.partition(" && ")
    assert "pip install" in install and job.startswith("toymanifold report"), line
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", job],
        cwd=tmp_path,
        env=run_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"README's main job fails: {job}\n{done.stderr[-6000:]}"
    out = tmp_path / "report"
    assert sorted(p.name for p in out.iterdir()) == ["figures", "report.html", "results.json"]
    assert len(list((out / "figures").glob("*.png"))) >= 8


def test_ci_runs_the_readme_commands():
    """.ci/run is the README's install and test commands, so the README's test command is what CI runs."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    test_blocks = [body for lang, body in blocks(ROOT / "README.md") if lang == "console" and "pytest" in body]
    assert test_blocks, "README.md: no console block with the test command"
    for body in test_blocks:
        for line in body.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                assert line.strip() in ci, f".ci/run does not run the README's command {line.strip()!r}"
    assert "mkdocs build --strict" in ci and "mkdocs build --strict" in readme


# --------------------------------------------------------------------------------------
# Citations: names and files
# --------------------------------------------------------------------------------------

NAME = re.compile(r"(?<![\w./])(tm|toymanifold|analysis)((?:\.[A-Za-z_]\w*)+)")


def resolve(root: str, dotted: str):
    obj = importlib.import_module("toymanifold" if root == "tm" else root)
    for part in dotted.strip(".").split("."):
        # A submodule first: ``analysis.projection_error`` is a module and also the function it re-exports.
        submodule = f"{obj.__name__}.{part}" if hasattr(obj, "__path__") else None  # a package
        if submodule and importlib.util.find_spec(submodule) is not None:
            obj = importlib.import_module(submodule)
        else:
            obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_cited_names_exist(path):
    text = path.read_text(encoding="utf-8")
    missing = []
    for m in NAME.finditer(text):
        if text[m.end() : m.end() + 1] == "/" or re.match(r"\.(md|py|ipynb|json|yml|png)\b", m.group(2)):
            continue  # a file path, checked below
        try:
            resolve(m.group(1), m.group(2))
        except (AttributeError, ImportError):
            missing.append(m.group(0))
    assert not missing, f"{page_id(path)} cites names that do not exist: {sorted(set(missing))}"


FILE = re.compile(r"(?<![\w/.-])((?:docs|benchmarks|tests|notebooks|toymanifold|analysis|\.ci)/[\w./-]*\w)")
SOURCES = [
    *PAGES,
    *sorted((ROOT / "toymanifold").rglob("*.py")),
    *sorted((ROOT / "analysis").rglob("*.py")),
    *sorted((ROOT / "notebooks").glob("*.ipynb")),
    *sorted((ROOT / "tests").glob("*.py")),
]


MARKDOWN = re.compile(r"(?<![\w/.-])([\w./-]*\w\.md)(?![\w-])")  # not CSS classes like input.md-search
CLIMB = re.compile(r"(?<![\w/.-])((?:\.\./)+[\w.-]+)")
REPO_FILES = {p.name for p in ROOT.rglob("*") if ".git" not in p.parts}


def cites_a_file_outside(path: Path, text: str) -> list[str]:
    """Markdown files the text names that the repository does not hold (case-sensitive), and
    relative paths that climb out of the repository or to nothing: what a reader of the repository cannot open."""
    outside = [
        name
        for name in MARKDOWN.findall(text)
        if not ((ROOT / name).exists() or (path.parent / name).exists() or Path(name).name in REPO_FILES)
    ]
    for rel in CLIMB.findall(text):
        target = (path.parent / rel).resolve()
        # The docs site serves notebooks/ beside docs/: a link climbing to it names a repository folder.
        in_repo = target.exists() or (ROOT / rel.replace("../", "")).exists()
        if ROOT not in target.parents or not in_repo:
            outside.append(rel)
    return sorted(set(outside))


def test_outside_citations_are_caught():
    page = ROOT / "docs" / "guide" / "page.md"
    assert cites_a_file_outside(page, "see ../theory.md and docs/design.md") == []
    assert cites_a_file_outside(page, "see SPEC.md and ../../../notes/x") == ["../../../notes", "SPEC.md"]


@pytest.mark.parametrize("path", SOURCES, ids=page_id)
def test_cited_files_exist(path):
    text = path.read_text(encoding="utf-8")
    # This file's own examples of what the check refuses are not citations.
    outside = cites_a_file_outside(path, text) if path.name != Path(__file__).name else []
    assert not outside, f"{page_id(path)} cites files a reader of the repository cannot open: {outside}"
    missing = sorted({m.group(1) for m in FILE.finditer(text) if not (ROOT / m.group(1).rstrip(".")).exists()})
    assert not missing, f"{page_id(path)} cites files that do not exist: {missing}"


# --------------------------------------------------------------------------------------
# The API reference and the navigation
# --------------------------------------------------------------------------------------


def public_modules(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def documented_modules() -> set[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs" / "api").glob("*.md"))
    return set(re.findall(r"^::: ([\w.]+)\s*$", text, re.MULTILINE))


@pytest.mark.parametrize("package", ["toymanifold", "analysis"])
def test_api_reference_covers_every_public_module(package):
    """Each public module has a ``::: module`` entry, or its package's page renders all its public names."""
    documented = documented_modules()
    for name in public_modules(package):
        if name in documented:
            continue
        parent = importlib.import_module(name.rpartition(".")[0])
        module = importlib.import_module(name)
        defined = set(getattr(module, "__all__", ())) or {
            n
            for n, obj in vars(module).items()
            if not n.startswith("_") and getattr(obj, "__module__", None) == name and callable(obj)
        }
        assert parent.__name__ in documented, f"{name}: no API page documents it or its package"
        not_exported = defined - set(getattr(parent, "__all__", ()))
        assert not not_exported, f"{name}: public names {sorted(not_exported)} appear on no API page"


def test_every_page_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    pages -= {p for p in pages if p.startswith("hooks/")}
    missing = sorted(p for p in pages if p not in nav)
    assert not missing, f"pages missing from mkdocs.yml's nav: {missing}"
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert all(f"notebooks/{n}" in nav for n in notebooks), "every notebook is a page of the site"
