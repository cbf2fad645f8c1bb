"""The corpus of hostile and broken submissions that tests/test_corpus.py grades in one batch.

Each module in this package defines `CASES`, a list of `Case`. A case writes one student's
submission folder and states what grading it must give: the points per grade cell and the
messages that explain them. All cases, plus the correct sample as an unaffected neighbour,
are graded together by one run of `python -m grader grade`, as a real batch would be.
"""

import copy
import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

REPOSITORY = Path(__file__).resolve().parent.parent.parent
RELEASE_NOTEBOOK = REPOSITORY / "release" / "backprop" / "backprop.ipynb"
ANSWER_CELLS = ("exercise1_answer", "exercise2_answer")
# The points of every grade cell, all earned.
FULL_MARKS = {
    "ex1_norm": 2, "ex1_dw0": 2, "ex1_db0": 1, "ex1_dw1": 2, "ex1_db1": 1, "ex1_dw2": 2, "ex1_db2": 1,
    "ex1_dw3": 2, "ex1_db3": 1, "ex1_batch_sizes": 3, "ex1_layer_widths": 3,
    "ex2_norm": 2, "ex2_error": 2, "ex2_graph": 3, "ex2_fresh_data": 3,
}


@dataclass
class Case:
    """One corpus submission and the grading it must get.

    `write(folder)` fills the student's (empty, existing) submission folder. `points`
    maps grade cell ids to the points expected; cells not named must get 0. With
    `graded=False` the student must be listed as a problem and get 0 in total.
    `feedback` lists texts that must appear in the student's feedback HTML, `summary`
    texts that must appear in the summary's row of this student, `hidden` texts that
    must not appear in the feedback.
    """

    student_id: str
    write: Callable[[Path], None]
    points: dict = field(default_factory=dict)
    graded: bool = True
    feedback: list = field(default_factory=list)
    summary: list = field(default_factory=list)
    hidden: list = field(default_factory=list)


def sample_notebook(student_id):
    """Return a fresh copy of a sample submission's notebook, e.g. "correct-loop"."""
    return nbformat.read(REPOSITORY / "samples" / "submitted" / student_id / "backprop" / "backprop.ipynb", as_version=4)


def release_notebook():
    """Return a fresh copy of the release notebook as an nbformat node."""
    return nbformat.read(RELEASE_NOTEBOOK, as_version=4)


def answered(exercise1=None, exercise2=None):
    """Return the release notebook with the given sources in its answer cells (None keeps the stub)."""
    notebook = release_notebook()
    sources = dict(zip(ANSWER_CELLS, (exercise1, exercise2)))
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if sources.get(grade_id) is not None:
            cell.source = sources[grade_id]
    return notebook


def writer(notebook, name="backprop.ipynb"):
    """Return a `Case.write` that saves `notebook` (a node, or raw text) under `name`."""
    notebook = copy.deepcopy(notebook)

    def write(folder):
        path = Path(folder) / name
        if isinstance(notebook, str):
            path.write_text(notebook, encoding="utf-8")
        else:
            nbformat.write(notebook, path)

    return write


def all_cases(groups=None):
    """Collect the CASES of every module in this package, or only of the named modules."""
    cases = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if groups and module_info.name not in groups:
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        cases.extend(module.CASES)
    ids = [case.student_id for case in cases]
    duplicates = sorted({student for student in ids if ids.count(student) > 1})
    assert not duplicates, f"corpus student ids used twice: {duplicates}"
    return cases
