"""Griffe extension: Sphinx markup in the NumPy docstrings of toymanifold and analysis, for the API reference.

Griffe parses NumPy sections but leaves reStructuredText markup as it is. Once per package,
when Griffe has loaded it, this extension rewrites every docstring:

- **Cross-reference roles** (``:class:`FiniteSet```, ``:func:`~toymanifold.gradient_estimation```,
  ``:meth:`step```, ``:mod:`analysis.bounds```) in descriptions become Markdown
  cross-references ``[`text`][canonical.path]`` that mkdocs-autorefs turns into links.
  The name is resolved the way Python sees it from the object holding the docstring (its
  members, the enclosing class and module, that module's imports, and names a package
  provides lazily from its submodules), then followed through re-exports to where the
  object is defined. Names outside the documented packages (torch, NumPy, matplotlib,
  ...) and private names (not rendered) become plain code. Any other name that does not
  resolve is a broken reference: the extension logs a warning, which fails
  ``mkdocs build --strict``.
- **Item lines of NumPy sections** (``name : type`` under *Parameters*, the type line under
  *Returns*, ...) are shown as code in the parameter tables, so markup inside them —
  roles and reStructuredText's double backticks — is reduced to its text.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

logger = griffe.get_logger(__name__)

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|obj|exc|const):`(?P<tilde>~?)(?P<name>[\w.]+)`")
DOCUMENTED = ("toymanifold", "analysis")
EXTERNAL = ("torch", "numpy", "np", "scipy", "matplotlib", "plotly", "diffusers", "hypothesis", "sklearn", "jinja2")
# NumPy sections whose entries start with an item line ("name : type" or a bare type).
ITEM_SECTIONS = {
    "parameters",
    "other parameters",
    "returns",
    "yields",
    "receives",
    "raises",
    "warns",
    "attributes",
}


class NumpyDocstringMarkup(griffe.Extension):
    """Rewrite the Sphinx markup of every docstring of a documented package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.name not in DOCUMENTED:
            return
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = rewrite(obj.docstring.value, obj, loader)


def rewrite(text: str, obj: griffe.Object, loader: griffe.GriffeLoader) -> str:
    lines = text.split("\n")
    section, indent = None, 0
    for i, line in enumerate(lines):
        underline = lines[i + 1] if i + 1 < len(lines) else ""
        if re.fullmatch(r"\s*-{3,}\s*", underline) and line.strip():
            section, indent = line.strip().lower(), len(line) - len(line.lstrip())
            continue
        if section in ITEM_SECTIONS and line.strip() and len(line) - len(line.lstrip()) == indent:
            lines[i] = ROLE.sub(lambda m: _text(m), line).replace("``", "")
        else:
            lines[i] = ROLE.sub(lambda m, o=obj: _link(m, o, loader), line)
    return "\n".join(lines)


def _walk(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


def _text(match: re.Match) -> str:
    name = match["name"]
    return name.rsplit(".", 1)[-1] if match["tilde"] else name


def _link(match: re.Match, obj: griffe.Object, loader: griffe.GriffeLoader) -> str:
    name, text = match["name"], _text(match)
    path = _resolve(name, obj, loader)
    if path is None:
        if name.split(".")[0] not in EXTERNAL:
            logger.warning("%s: cannot resolve the cross-reference %r in its docstring", obj.path, match[0])
        return f"`{text}`"
    if any(part.startswith("_") for part in path.split(".")):
        return f"`{text}`"  # private objects are not rendered: nothing to link to
    return f"[`{text}`][{path}]"


def _lazy_export(name: str, obj: griffe.Object) -> str | None:
    """A name a package provides from one of its submodules through a module ``__getattr__``."""
    module = obj if obj.is_module else obj.module
    if "__getattr__" not in module.members:
        return None
    found = [
        sub.members[name].path
        for sub in module.modules.values()
        if name in sub.members and not sub.members[name].is_alias
    ]
    return found[0] if len(found) == 1 else None


def _resolve(name: str, obj: griffe.Object, loader: griffe.GriffeLoader) -> str | None:
    """The canonical path of ``name`` as seen from ``obj``, or None outside the documented packages."""
    first, _, rest = name.partition(".")
    if first in DOCUMENTED:
        path = name
    else:
        try:
            scoped = obj.resolve(first)
        except griffe.NameResolutionError:
            scoped = _lazy_export(first, obj)
            if scoped is None:
                return None
        path = f"{scoped}.{rest}" if rest else scoped
    top = path.split(".")[0]
    if top not in DOCUMENTED:
        return None
    if top not in loader.modules_collection:
        loader.load(top)
    target = _lookup(path, loader.modules_collection)
    if target is None:
        return None
    try:
        return target.canonical_path
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return path


def _lookup(path: str, collection: griffe.ModulesCollection) -> griffe.Object | griffe.Alias | None:
    """The object at ``path``, also when a package exports it lazily (``module.__getattr__``)."""
    try:
        return collection[path]
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        pass
    parent, _, name = path.rpartition(".")
    try:
        module = collection[parent]
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    if not getattr(module, "is_module", False):
        return None
    lazy = _lazy_export(name, module)
    return None if lazy is None else collection[lazy]
