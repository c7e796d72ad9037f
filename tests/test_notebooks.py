"""Every notebook in notebooks/ executes from top to bottom at small size.

Notebooks read ``TOYMANIFOLD_NOTEBOOK_SMALL=1`` and shrink their sample sizes and training
runs. They run in a fresh ``python3`` kernel with the repository on ``PYTHONPATH``, from the
notebooks folder, exactly as a user opens them. Committed notebooks carry no outputs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


CORE = {
    "01_manifolds_and_projections",
    "02_denoising_is_projection",
    "03_ddim_versus_the_bounds",
    "04_gradient_estimation_sampler",
}


def test_the_four_core_notebooks_exist():
    assert CORE <= {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_outputs_are_stripped(path):
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs not stripped"
    if path.stem in CORE:
        # The story is told in prose between cells: a markdown cell for every two code cells.
        code = sum(c.cell_type == "code" for c in book.cells)
        prose = sum(c.cell_type == "markdown" for c in book.cells)
        assert prose * 2 >= code, f"{path.name}: {prose} markdown cells for {code} code cells"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, monkeypatch):
    monkeypatch.setenv("TOYMANIFOLD_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # One thread per kernel: small tensors, and no oversubscription when tests run in parallel.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError (with the traceback) on the first failing cell
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
