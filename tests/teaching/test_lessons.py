"""The lessons run, and their exercise checks tell right from wrong.

Every `lessons/*.ipynb` is executed top to bottom with nbclient in fast mode (TINYFACE_FAST=1), as committed: with
its exercises unanswered every check must say "not answered yet" and none may fail. Each exercise's reference
solution (kept in the exercise cell's metadata) is also run, with its check, just before the placeholder, and every
such check must say ✓. The checks themselves are called directly with right, wrong and missing answers in
exercises/, one test module per lesson.

The lessons read real faces from $TINYFACE_DATA: these tests skip when it is unset and fail when it is set but the
files are missing (see conftest.py).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))
CELL_TIMEOUT_S = 300


def read(path: Path):
    nbformat = pytest.importorskip("nbformat")
    return nbformat.read(path, as_version=4)


def exercise_cells(notebook) -> list:
    return [cell for cell in notebook.cells if "exercise" in cell.metadata.get("tags", [])]


def outputs_text(cells) -> str:
    """Everything the cells printed or displayed as text."""
    pieces = []
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                pieces.append(output.get("text", ""))
            elif "data" in output:
                pieces.append(output["data"].get("text/plain", ""))
    return "\n".join(pieces)


def execute(path: Path):
    """Run the notebook as committed, in one kernel, top to bottom. Just before each exercise cell runs, its
    reference solution and (a copy of) its check cell run first: so every check sees both the solution and then
    the placeholder, while the cells after it see the notebook exactly as a student opening it would.

    Returns (notebook with outputs, verdict lines of the solution runs, seconds)."""
    nbclient = pytest.importorskip("nbclient")
    notebook = read(path)
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    solved = []
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if "exercise" in cell.metadata.get("tags", []):
                solution, check = copy.deepcopy(cell), copy.deepcopy(notebook.cells[index + 1])
                solution.source = cell.metadata["solution"]
                client.execute_cell(solution, index)
                client.execute_cell(check, index + 1)
                solved += verdict_lines(outputs_text([check]))
            client.execute_cell(cell, index)
    return notebook, solved, time.perf_counter() - start


def verdict_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line[:2] in ("✓ ", "✗ ", "… ")]


@pytest.fixture
def fast_mode(monkeypatch, olivetti_path):
    """The kernel inherits this environment: fast mode on, and TINYFACE_DATA checked by `olivetti_path`."""
    monkeypatch.setenv("TINYFACE_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")


def test_there_are_lessons():
    assert len(LESSONS) >= 4, f"expected lesson notebooks in {ROOT / 'lessons'}"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_committed_notebook_is_stripped_and_has_exercises(path):
    notebook = read(path)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip the outputs"
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    exercises = exercise_cells(notebook)
    assert 2 <= len(exercises) <= 4, f"{path.name}: a lesson has two to four exercises"
    for cell in exercises:
        assert cell.metadata.get("solution"), f"{path.name}: exercise cell without a reference solution"
        following = notebook.cells[notebook.cells.index(cell) + 1]
        assert following.cell_type == "code" and "ex.check_" in following.source, (
            f"{path.name}: each exercise is followed by its check cell"
        )


@pytest.mark.slow
@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs(path, fast_mode):
    notebook, solved, seconds = execute(path)
    exercises = len(exercise_cells(notebook))
    as_committed = verdict_lines(outputs_text(notebook.cells))
    assert len(as_committed) == exercises and all(line.startswith("… ") for line in as_committed), as_committed
    assert len(solved) == exercises and all(line.startswith("✓ ") for line in solved), solved
    assert seconds < 150, f"{path.name} took {seconds:.0f} s in fast mode"


def test_lessons_readme_documents_the_environment():
    readme = (ROOT / "lessons" / "README.md").read_text()
    assert "TINYFACE_FAST" in readme and "TINYFACE_DATA" in readme
