"""The committed release is what nbgrader generates from source/, and it holds no solution."""

import json

import nbformat
import pytest

from conftest import REPOSITORY, run_grader

RELEASE = REPOSITORY / "release" / "backprop"
SOURCE = REPOSITORY / "source" / "backprop"

# Text that only the instructor's version may contain.
SECRETS = ["BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "import solution", "solution.exercise", "backprop_checks"]


@pytest.fixture(scope="module")
def release_notebook():
    return nbformat.read(RELEASE / "backprop.ipynb", as_version=4)


def cell_by_grade_id(notebook, grade_id):
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell
    raise LookupError(grade_id)


def test_release_is_up_to_date_with_source():
    process = run_grader("release", "--check")
    assert process.returncode == 0, process.stdout + process.stderr


def test_release_has_only_student_files():
    assert sorted(p.name for p in RELEASE.iterdir()) == ["backprop.ipynb", "network.png", "utils.py"]


def test_release_utils_is_a_real_copy():
    utils = RELEASE / "utils.py"
    assert not utils.is_symlink()
    assert utils.read_bytes() == (REPOSITORY / "utils.py").read_bytes()


@pytest.mark.parametrize("secret", SECRETS)
def test_release_contains_no_solution(secret):
    for path in RELEASE.iterdir():
        if path.suffix in (".ipynb", ".py"):
            assert secret not in path.read_text(encoding="utf-8"), f"{secret!r} in {path.name}"


@pytest.mark.parametrize("grade_id", ["exercise1_answer", "exercise2_answer"])
def test_answer_stub_keeps_signature_and_docstring(release_notebook, grade_id):
    source_notebook = nbformat.read(SOURCE / "backprop.ipynb", as_version=4)
    released = cell_by_grade_id(release_notebook, grade_id).source
    original = cell_by_grade_id(source_notebook, grade_id).source
    docstring_end = original.index('"""', original.index('"""') + 3) + 3

    assert released.startswith(original[:docstring_end])
    assert released[docstring_end:].split() == ["#", "YOUR", "CODE", "HERE", "raise", "NotImplementedError()"]


def test_release_has_no_outputs(release_notebook):
    for cell in release_notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None


def test_points_sum_to_thirty(release_notebook):
    points = {}
    for cell in release_notebook.cells:
        metadata = cell.metadata.get("nbgrader", {})
        if metadata.get("grade"):
            exercise = metadata["grade_id"].split("_")[0]
            points[exercise] = points.get(exercise, 0) + metadata["points"]
    assert points == {"ex1": 20, "ex2": 10}


def test_release_notebook_is_valid_nbformat():
    notebook = json.loads((RELEASE / "backprop.ipynb").read_text(encoding="utf-8"))
    nbformat.validate(nbformat.from_dict(notebook))
