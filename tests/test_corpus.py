"""The corpus of hostile and broken submissions, graded in one batch with a correct neighbour.

Set CORPUS_GROUPS=name1,name2 to grade only some modules of tests/corpus/ while working on them.
"""

import pytest
from nbgrader.api import Gradebook, MissingEntry

from conftest import CORPUS_CASES as CASES
from conftest import CORPUS_NEIGHBOUR as NEIGHBOUR


def scores(course_dir, student):
    """Return {grade cell id: score} of the student, or {} when nothing was recorded."""
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", "ml1-backprop") as gradebook:
        try:
            notebook = gradebook.find_submission_notebook("backprop", "backprop", student)
        except MissingEntry:
            return {}
        return {grade.name: grade.score for grade in notebook.grades}


def summary_row(stdout, student):
    """Return the summary table's row of the student, its cells' wrapped lines joined by spaces."""
    row, columns = False, []
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")] if line.lstrip().startswith("│") else None
        if cells and cells[0] == student:
            row, columns = True, cells
        elif row and cells and not cells[0] and len(cells) == len(columns):
            columns = [f"{old} {new}".strip() for old, new in zip(columns, cells)]
        elif row:
            break
    return " │ ".join(columns)


def test_neighbour_is_unaffected(corpus_run):
    _, course_dir, _ = corpus_run
    assert sum(scores(course_dir, NEIGHBOUR).values()) == 30


@pytest.mark.parametrize("case", CASES, ids=[case.student_id for case in CASES])
def test_case_grades_as_expected(corpus_run, case):
    process, course_dir, _ = corpus_run
    actual = scores(course_dir, case.student_id)
    if not case.graded:
        assert sum(actual.values()) == 0, actual
    else:
        assert actual, f"{case.student_id} was not graded:\n{summary_row(process.stdout, case.student_id)}"
        expected = {cell: case.points.get(cell, 0) for cell in actual}
        assert actual == expected

    row = summary_row(process.stdout, case.student_id)
    for text in case.summary:
        assert text in row, f"{text!r} is not in the summary of {case.student_id}:\n{row}"

    feedback_path = course_dir / "feedback" / case.student_id / "backprop" / "backprop.html"
    if case.feedback or case.hidden:
        assert feedback_path.is_file(), f"no feedback for {case.student_id}"
        feedback = feedback_path.read_text(encoding="utf-8")
        for text in case.feedback:
            assert text in feedback, f"{text!r} is not in the feedback of {case.student_id}"
        for text in case.hidden:
            assert text not in feedback, f"{text!r} leaks into the feedback of {case.student_id}"


def manual_flags(course_dir, student):
    """Return ({grade cell id: needs_manual_grade}, the auto_comment of exercise1_answer) of the student."""
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", "ml1-backprop") as gradebook:
        notebook = gradebook.find_submission_notebook("backprop", "backprop", student)
        comment = gradebook.find_comment("exercise1_answer", "backprop", "backprop", student)
        return {grade.name: grade.needs_manual_grade for grade in notebook.grades}, comment.auto_comment


# Students whose grade cells starting with the prefix, and only those, need manual grading.
MANUAL_GRADING = {"cheat-autograd-exercise1": "ex1_", "cheat-autograd-unused": "ex1_", "cheat-patched-checks": "", NEIGHBOUR: None}


@pytest.mark.parametrize("student, prefix", [(s, p) for s, p in MANUAL_GRADING.items() if s == NEIGHBOUR or s in {c.student_id for c in CASES}])
def test_manual_grading_flags(corpus_run, student, prefix):
    _, course_dir, _ = corpus_run
    flags, comment = manual_flags(course_dir, student)
    assert flags == {cell: prefix is not None and cell.startswith(prefix) for cell in flags}
    if prefix is not None:
        assert "The instructor" in comment
