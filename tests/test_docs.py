"""The API reference in docs/ is generated from the docstrings and must be current."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_api_reference_is_current():
    out = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_api.py")], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out == (ROOT / "docs" / "api.md").read_text(), "run: python docs/make_api.py > docs/api.md"
