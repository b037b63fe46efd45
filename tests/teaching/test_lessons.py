"""The lessons run, and their exercise checks tell right from wrong.

Every `lessons/*.ipynb` is executed top to bottom with nbclient in fast mode (TINYFACE_FAST=1), as committed: with
its exercises unanswered every check must say "not answered yet" and none may fail. Each exercise's reference
solution (kept in the exercise cell's metadata) is also run, with its check, just before the placeholder, and every
such check must say ✓. The check functions of
`tinyface.teaching.exercises` are also called directly with right, wrong and missing answers.

The lessons read real faces from $TINYFACE_DATA: these tests skip when it is unset and fail when it is set but the
files are missing (see conftest.py).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import pytest

from tinyface.eval import auc, roc_curve
from tinyface.teaching import exercises as ex
from tinyface.tensor import Function

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


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs(path, fast_mode):
    notebook, solved, seconds = execute(path)
    exercises = len(exercise_cells(notebook))
    as_committed = verdict_lines(outputs_text(notebook.cells))
    assert len(as_committed) == exercises and all(line.startswith("… ") for line in as_committed), as_committed
    assert len(solved) == exercises and all(line.startswith("✓ ") for line in solved), solved
    assert seconds < 150, f"{path.name} took {seconds:.0f} s in fast mode"


# -- the checks themselves, called with right, wrong and missing answers ---------------------------------------


def status(verdict: ex.Verdict) -> str:
    assert isinstance(verdict, ex.Verdict)
    assert repr(verdict).startswith(ex.SYMBOLS[verdict.status])
    return verdict.status


def unanswered(*args):
    raise NotImplementedError


def test_placeholders_are_not_answered_yet():
    d, s = np.array([0.1, 0.5]), np.array([True, False])
    assert status(ex.check_squared_distance(unanswered)) == "unanswered"
    assert status(ex.check_far_frr(None, d, s, 0.2)) == "unanswered"
    assert status(ex.check_auc(..., [0, 1], [0, 1])) == "unanswered"
    assert status(ex.check_max_pool(lambda x: None)) == "unanswered"
    assert not ex.check_identify(None)


def test_an_error_in_the_students_code_is_a_wrong_answer_not_a_crash():
    verdict = ex.check_squared_distance(lambda a, b: 1 / 0)
    assert status(verdict) == "wrong" and "ZeroDivisionError" in verdict.message


def test_check_squared_distance():
    def right(a, b):
        x, y = (v.reshape(-1).astype(float) for v in (a, b))
        return np.sum((x / np.linalg.norm(x) - y / np.linalg.norm(y)) ** 2)

    def not_normalised(a, b):
        return np.sum((a.reshape(-1).astype(float) - b.reshape(-1).astype(float)) ** 2)

    assert status(ex.check_squared_distance(right)) == "right"
    assert status(ex.check_squared_distance(lambda a, b: np.sqrt(right(a, b)))) == "wrong"
    assert "unit length" in ex.check_squared_distance(not_normalised).message


def test_check_far_frr():
    d = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    s = np.array([True, True, False, True, False, False])
    assert status(ex.check_far_frr((1 / 3, 1 / 3), d, s, 0.35)) == "right"
    assert "swapped" in ex.check_far_frr((1 / 3, 0.0), d, s, 0.2).message
    assert status(ex.check_far_frr((1 / 3, 2 / 3), d, s, 0.35)) == "wrong"
    assert status(ex.check_far_frr(0.3, d, s, 0.35)) == "wrong"


def test_check_identify():
    def right(probe, gallery, labels, tau):
        d = np.sum((gallery - probe) ** 2, axis=1)
        return int(labels[d.argmin()]) if d.min() <= tau else -1

    assert status(ex.check_identify(right)) == "right"
    index = ex.check_identify(lambda p, g, labels, tau: int(np.sum((g - p) ** 2, axis=1).argmin()))
    assert "label" in index.message
    closed_set = ex.check_identify(lambda p, g, labels, tau: int(labels[np.sum((g - p) ** 2, axis=1).argmin()]))
    assert "-1" in closed_set.message


def test_check_anchor_gradient():
    assert status(ex.check_anchor_gradient(lambda a, p, n: 2 * (n - p))) == "right"
    assert "sign" in ex.check_anchor_gradient(lambda a, p, n: 2 * (p - n)).message
    assert "factor of 2" in ex.check_anchor_gradient(lambda a, p, n: n - p).message


def test_check_numerical_gradient():
    def central(f, x, eps):
        grad = np.zeros_like(x)
        for k in np.ndindex(x.shape):
            x_plus, x_minus = x.copy(), x.copy()
            x_plus[k] += eps
            x_minus[k] -= eps
            grad[k] = (f(x_plus) - f(x_minus)) / (2 * eps)
        return grad

    def forward(f, x, eps):
        grad = np.zeros_like(x)
        for k in np.ndindex(x.shape):
            x_plus = x.copy()
            x_plus[k] += eps
            grad[k] = (f(x_plus) - f(x)) / eps
        return grad

    def mutating(f, x, eps):
        grad = central(f, x, eps)
        x += 1
        return grad

    assert status(ex.check_numerical_gradient(central)) == "right"
    assert "central" in ex.check_numerical_gradient(forward).message
    assert "changed" in ex.check_numerical_gradient(mutating).message


class Softsign(Function):
    def forward(self, x):
        self.x = x
        return x / (1 + np.abs(x))

    def backward(self, grad):
        return grad / (1 + np.abs(self.x)) ** 2


class WrongSoftsign(Softsign):
    def backward(self, grad):
        return grad / (1 + np.abs(self.x))


class OpenSoftsign(Function):
    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError


def test_check_function():
    def reference(x):
        return x / (1 + np.abs(x))

    assert status(ex.check_function(Softsign, reference)) == "right"
    wrong = ex.check_function(WrongSoftsign, reference)
    assert status(wrong) == "wrong" and "GradcheckError" in wrong.message
    assert status(ex.check_function(OpenSoftsign, reference)) == "unanswered"


def test_check_conv_output_size():
    assert status(ex.check_conv_output_size(lambda h, k, s, p: (h + 2 * p - k) // s + 1)) == "right"
    assert "off by one" in ex.check_conv_output_size(lambda h, k, s, p: (h + 2 * p - k) // s).message
    assert "round down" in ex.check_conv_output_size(lambda h, k, s, p: (h + 2 * p - k) / s + 1).message


def test_check_conv_parameter_count():
    assert status(ex.check_conv_parameter_count(lambda i, o, k, b: o * i * k * k + (o if b else 0))) == "right"
    assert "every input channel" in ex.check_conv_parameter_count(lambda i, o, k, b: o * k * k).message
    assert "bias" in ex.check_conv_parameter_count(lambda i, o, k, b: o * i * k * k).message


def test_check_max_pool():
    def right(x):
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))

    def average(x):
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))

    assert status(ex.check_max_pool(right)) == "right"
    assert "average" in ex.check_max_pool(average).message
    assert status(ex.check_max_pool(lambda x: x[:, :, ::2, ::2])) == "wrong"


def test_check_auc():
    rng = np.random.default_rng(0)
    d, s = rng.random(200), rng.random(200) < 0.5
    d = np.round(d - 0.2 * s, 1)  # ties: the ROC takes diagonal steps, where rectangles and trapezoids differ
    far, tar, _ = roc_curve(d, s)
    area = auc(far, tar)
    assert status(ex.check_auc(area, far, tar)) == "right"
    assert "1 - AUC" in ex.check_auc(1 - area, far, tar).message
    assert "trapezoids" in ex.check_auc(float(np.sum(np.diff(far) * tar[1:])), far, tar).message


def test_check_threshold_at_far():
    d = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    s = np.array([True, True, False, True, True, False, False, False, False, False])
    # 6 different pairs: FAR <= 0.2 allows one of them (0.3) to be accepted: any tau in [0.3, 0.5) is right
    assert status(ex.check_threshold_at_far(0.45, d, s, 0.2)) == "right"
    assert status(ex.check_threshold_at_far(0.3, d, s, 0.2)) == "right"
    assert "too large" in ex.check_threshold_at_far(0.5, d, s, 0.2).message
    assert "raise tau" in ex.check_threshold_at_far(0.25, d, s, 0.2).message


def test_check_pairwise_precision_recall():
    labels = np.array([0, 0, 0, 1, 1, 2])
    clusters = np.array([5, 5, 6, 6, 6, 7])
    # pairs together: (0,1) same, (2,3) diff, (2,4) diff, (3,4) same -> precision 2/4
    # same-person pairs: (0,1) (0,2) (1,2) (3,4) -> together (0,1), (3,4): recall 2/4
    assert status(ex.check_pairwise_precision_recall((0.5, 0.5), clusters, labels)) == "right"
    clusters = np.array([5, 5, 5, 6, 6, 6])  # precision 4/6, recall 4/4
    assert status(ex.check_pairwise_precision_recall((4 / 6, 1.0), clusters, labels)) == "right"
    assert "swapped" in ex.check_pairwise_precision_recall((1.0, 4 / 6), clusters, labels).message
    assert "i < j" in ex.check_pairwise_precision_recall((14 / 18, 1.0), clusters, labels).message


def test_lessons_readme_documents_the_environment():
    readme = (ROOT / "lessons" / "README.md").read_text()
    assert "TINYFACE_FAST" in readme and "TINYFACE_DATA" in readme
