"""MkDocs hooks: the notebooks of ``notebooks/`` as pages, executed at small size, and offline math.

- The notebooks live in ``notebooks/`` (outside ``docs/``, without outputs in git). They join
  the site as ``notebooks/<name>.ipynb`` pages; mkdocs-jupyter executes them during the build
  with ``TOYMANIFOLD_NOTEBOOK_SMALL=1`` (the sizes the test suite uses) and the repository on
  ``PYTHONPATH``, so the pages show the outputs of the code in this checkout.
- ``<!-- public-names: PACKAGE -->`` in a page becomes a table of the package's public names
  (its ``__all__`` and its public submodules), each linked to the place the API reference
  documents it, with the first line of its docstring: the top-level pages of the API
  reference index the names instead of rendering every re-exported object a second time.
- Notebook pages come with a MathJax loader from nbconvert's template. The site renders all
  math with the KaTeX copy it ships (``docs/assets/katex``), so that loader is removed: no
  page requests anything from another host.
- Notebooks with live widgets (the explorers of ``07_explore``) store the widgets' state, and
  nbconvert then adds scripts from a CDN that would replay them. The site cannot run them
  offline, so those scripts and the stored state are removed; the notebook's static
  snapshots (PNG outputs) show what the widgets show.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import sys
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parent))
from griffe_docstrings import ROLE  # the docstrings' Sphinx roles, shared with the API reference

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"

_PUBLIC_NAMES = re.compile(r"^<!-- public-names: ([\w.]+) -->$", re.MULTILINE)
_MATHJAX = re.compile(
    r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->",
    re.DOTALL,
)
# Scripts loaded from another host, and the widget state nbconvert embeds for them.
_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>", re.IGNORECASE)
_WIDGET_STATE = re.compile(
    r"<script[^>]*application/vnd\.jupyter\.widget-(?:state|view)\+json[^>]*>.*?</script>"
    r"|<script>\s*\(function\(\) \{\s*function addWidgetsRenderer\(\).*?</script>",
    re.DOTALL,
)


def on_config(config, **kwargs):
    os.environ.setdefault("TOYMANIFOLD_NOTEBOOK_SMALL", "1")
    # One thread per kernel: small tensors, and the build shares the CPU with other work.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    path = os.environ.get("PYTHONPATH", "")
    if str(ROOT) not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), path) if p)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the public-names tables import this checkout's packages
    return config


@event_priority(100)  # before mkdocs-jupyter turns .ipynb files into pages
def on_files(files, config, **kwargs):
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        files.append(
            File(
                f"notebooks/{path.name}",
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files


def on_page_content(html, page, config, files, **kwargs):
    if page.file.src_uri.endswith(".ipynb"):
        html, count = _MATHJAX.subn("", html)
        if count != 1:
            raise RuntimeError(f"{page.file.src_uri}: expected one MathJax loader from nbconvert, found {count}")
        html = _WIDGET_STATE.sub("", _REMOTE_SCRIPT.sub("", html))
    return html


def on_page_markdown(markdown, page, config, files, **kwargs):
    return _PUBLIC_NAMES.sub(lambda m: public_names_table(m.group(1)), markdown)


def public_names_table(package: str) -> str:
    """A Markdown table of ``package``'s public names, linked to their API reference entries."""
    pkg = importlib.import_module(package)
    submodules = [m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")]
    rows = ["| name | what it is |", "|---|---|"]
    for name in sorted(set(pkg.__all__) | set(submodules), key=str.lower):
        obj = importlib.import_module(f"{package}.{name}") if name in submodules else getattr(pkg, name)
        if inspect.ismodule(obj):
            target, kind = obj.__name__, "module"
        else:
            target = f"{obj.__module__}.{obj.__qualname__}"
            kind = "class" if inspect.isclass(obj) else "function"
        summary = (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ")
        summary = ROLE.sub(lambda m: f"`{m['name'].rsplit('.', 1)[-1] if m['tilde'] else m['name']}`", summary)
        summary = summary.replace("|", "\\|")
        rows.append(f"| [`{package}.{name}`][{target}] <small>{kind}</small> | {summary} |")
    return "\n".join(rows)
