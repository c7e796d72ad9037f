"""The API reference in docs/ is generated from the docstrings and must be current."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_api_reference_is_current():
    # Document this checkout's code, not an installed copy (the script's folder comes first on sys.path).
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    script = str(ROOT / "docs" / "make_api.py")
    out = subprocess.run([sys.executable, script], capture_output=True, text=True, check=True, cwd=ROOT, env=env).stdout
    assert out == (ROOT / "docs" / "api.md").read_text(), "run: python docs/make_api.py > docs/api.md"
