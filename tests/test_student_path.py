"""The release notebook as a student runs it, and its self-check against the autograder.

Students run the notebook in plain Jupyter, often without nbgrader, and some press
nbgrader's Validate button. The notebook must then fail only where the answer is missing
or wrong, and a notebook that passes Validate must earn the points of the printed values
in autograding.
"""

import shutil

import nbformat
import pytest
from nbclient import NotebookClient
from nbgrader.validator import Validator

from conftest import REPOSITORY, SAMPLES, nbgrader_environment, read_expected_points

RELEASE = REPOSITORY / "release" / "backprop"
EXPECTED = read_expected_points()
FULL_MARKS = 30
# The test cells that check the values printed after each answer cell, with their points.
PRINTED_VALUE_CELLS = {"ex1_norm": 2, "ex2_norm": 2}
EXERCISE1_TEST_CELLS = [
    "ex1_norm",
    "ex1_dw0",
    "ex1_db0",
    "ex1_dw1",
    "ex1_db1",
    "ex1_dw2",
    "ex1_db2",
    "ex1_dw3",
    "ex1_db3",
    "ex1_batch_sizes",
    "ex1_layer_widths",
]


def grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def student_folder(tmp_path, student):
    """Copy release/backprop/ to tmp_path and put the student's sample notebook into it."""
    folder = tmp_path / student
    shutil.copytree(RELEASE, folder)
    shutil.copyfile(SAMPLES / "submitted" / student / "backprop" / "backprop.ipynb", folder / "backprop.ipynb")
    return folder


@pytest.fixture
def without_nbgrader(tmp_path):
    """Return a kernel environment in which `import nbgrader` raises ModuleNotFoundError.

    The kernel runs in the tests' environment, where nbgrader is installed. A package of
    that name first on PYTHONPATH shadows it, as if the student had never installed it.
    """
    shadow = tmp_path / "no-nbgrader" / "nbgrader"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        'raise ModuleNotFoundError("nbgrader is not installed in this kernel", name="nbgrader")\n'
    )
    return {**nbgrader_environment(), "PYTHONPATH": str(shadow.parent)}


def run_notebook(folder, environment, allow_errors):
    """Execute folder/backprop.ipynb top to bottom in a kernel with `environment`.

    A first cell, added to the notebook in memory only, prints whether nbgrader can be
    imported. Returns the executed notebook after the kernel has shut down.
    """
    notebook = nbformat.read(folder / "backprop.ipynb", as_version=4)
    probe = nbformat.v4.new_code_cell(
        "try:\n    import nbgrader\n    print('nbgrader is importable')\n"
        "except ImportError as error:\n    print('nbgrader is not importable:', error)"
    )
    notebook.cells.insert(0, probe)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", allow_errors=allow_errors, resources={"metadata": {"path": str(folder)}}
    )
    client.execute(env=environment)
    return notebook


def printed(notebook, cell_id):
    """Return the text that the cell with grade_id `cell_id` wrote to stdout."""
    cell = next(cell for cell in notebook.cells if grade_id(cell) == cell_id)
    return "".join(output.text for output in cell.outputs if output.output_type == "stream")


def errors(notebook):
    """List (grade_id, exception name) of every error output, in notebook order."""
    return [
        (grade_id(cell), output.ename)
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]


def test_unanswered_release_fails_only_at_answers(tmp_path, without_nbgrader):
    folder = tmp_path / "release"
    shutil.copytree(RELEASE, folder)
    notebook = run_notebook(folder, without_nbgrader, allow_errors=True)

    assert notebook.cells[0].outputs[0].text.startswith("nbgrader is not importable")
    found = errors(notebook)
    assert found[0] == ("exercise1_print", "NotImplementedError")
    assert {name for _, name in found} == {"NotImplementedError"}, found
    assert printed(notebook, "given_forward").startswith("output Y =")


def test_answered_notebook_runs_without_nbgrader(tmp_path, without_nbgrader):
    folder = student_folder(tmp_path, "correct-loop")
    notebook = run_notebook(folder, without_nbgrader, allow_errors=False)

    assert notebook.cells[0].outputs[0].text.startswith("nbgrader is not importable")
    assert errors(notebook) == []
    assert printed(notebook, "exercise1_print") == "1.5422821523392451\n"
    assert printed(notebook, "exercise2_print") == "1.5422821\n"


def test_exercise1_tests_rerun_after_torch_cell(tmp_path, without_nbgrader):
    """Does every Exercise 1 test pass again when a student reruns it after Exercise 2's cells?"""
    folder = student_folder(tmp_path, "correct-loop")
    notebook = nbformat.read(folder / "backprop.ipynb", as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}})

    with client.setup_kernel(env=without_nbgrader):
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
        # execute_cell raises CellExecutionError when a cell fails.
        for index, cell in enumerate(notebook.cells):
            if grade_id(cell) in ["exercise1_print", *EXERCISE1_TEST_CELLS]:
                client.execute_cell(cell, index)

    assert printed(notebook, "exercise1_print") == "1.5422821523392451\n"
    assert errors(notebook) == []


@pytest.fixture(scope="module")
def visible_failures(tmp_path_factory):
    """Validate every sample with nbgrader's Validator, which the Validate button calls on the server.

    Returns {student_id: grade ids of the failed cells}.
    """
    release = nbformat.read(RELEASE / "backprop.ipynb", as_version=4)
    grade_id_by_source = {cell.source.strip(): grade_id(cell) for cell in release.cells if grade_id(cell)}
    scratch = tmp_path_factory.mktemp("validate")
    failures = {}
    for student in sorted(EXPECTED):
        result = Validator().validate(str(student_folder(scratch, student) / "backprop.ipynb"))
        assert set(result) <= {"failed"}, f"{student}: nbgrader reports changed cells: {result}"
        failures[student] = [grade_id_by_source[cell["source"].strip()] for cell in result.get("failed", [])]
    return failures


@pytest.fixture(scope="module")
def autograded(sample_scores):
    return sample_scores


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_validate_agrees_with_autograder(visible_failures, autograded, student):
    scores = autograded[student]
    failed = visible_failures[student]
    if not failed:
        for cell, points in PRINTED_VALUE_CELLS.items():
            assert scores[cell] == points, f"{student} passes Validate but loses the points of {cell}"
    else:
        assert sum(scores.values()) < FULL_MARKS, f"{student} fails {failed} in Validate but earns full marks"
    for cell in failed:
        assert scores[cell] == 0, f"{student} fails {cell} in Validate but earns points for it"


@pytest.mark.parametrize("student", sorted(student for student, points in EXPECTED.items() if points["total"] < FULL_MARKS))
def test_sample_mistake_fails_validate(visible_failures, student):
    assert visible_failures[student] != [], f"{student} loses points in autograding, but Validate passes it"
