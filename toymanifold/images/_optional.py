"""Import of the optional ``images`` extra (diffusers) with a clear error."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install toymanifold[images]"


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` or raise ``ImportError`` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{feature} needs the optional package {module.split('.')[0]!r}, which is not installed; "
            f"install it with `{INSTALL_HINT}`"
        ) from exc
