"""Flag autograded submissions that need the instructor's judgement, and explain why.

Exercise 1 asks for the backward pass by hand. A submission whose exercise1 uses
PyTorch's autograd gets its Exercise 1 grades marked for manual grading in the gradebook,
so formgrader lists it under "needs manual grade", with an explanation in the gradebook
comment of the exercise1_answer cell (shown in the feedback) and a note in the summary.
Two signs count: the hidden tests saw autograd run while exercise1 ran (they then fail with
a message that starts with AUTOGRAD_MESSAGE), or the answer cell's code refers to autograd.
"""

import ast
import logging
import re

import nbformat
from nbgrader.api import MissingEntry

from grader import ASSIGNMENT

log = logging.getLogger(__name__)

ANSWER_CELL = "exercise1_answer"
EXERCISE1_PREFIX = "ex1_"

# The start of the hidden tests' message for an exercise1 that ran autograd; it is
# backprop_checks.AUTOGRAD_MESSAGE in grader/kernel/backprop_checks.py.
AUTOGRAD_MESSAGE = "exercise1 uses PyTorch's automatic differentiation"

# The start of the hidden tests' message for replaced functions (backprop_integrity.assert_untampered).
TAMPERING_MESSAGE = "Your code replaced "

# Names that only code using PyTorch's autograd needs: modules, functions, methods and attributes.
AUTOGRAD_NAMES = {
    "autograd", "backward", "requires_grad", "requires_grad_", "grad", "functorch",
    "jacrev", "jacfwd", "vjp", "jvp", "hessian", "jacobian",
}
AUTOGRAD_MODULES = ("torch.autograd", "torch.func", "functorch")

# Names of the grader's modules, which an answer has no reason to mention.
GRADER_MODULES = ("backprop_checks", "backprop_integrity", "backprop_mistakes")


def autograd_names_in(source):
    """Return the autograd names that the code refers to, sorted; comments and strings do not count.

    Code that does not parse is searched as text, so a syntax error elsewhere hides nothing.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return sorted(name for name in AUTOGRAD_NAMES if re.search(rf"\b{name}\b", source))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (node.attr in AUTOGRAD_NAMES or node.attr == "func"):
            if node.attr != "func" or isinstance(node.value, ast.Name) and node.value.id == "torch":
                found.add("torch.func" if node.attr == "func" else node.attr)
        elif isinstance(node, ast.Name) and node.id in AUTOGRAD_NAMES - {"grad", "backward"}:
            found.add(node.id)
        elif isinstance(node, ast.keyword) and node.arg in AUTOGRAD_NAMES:
            found.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found.update(module for module in modules if module.startswith(AUTOGRAD_MODULES))
    return sorted(found)


def grader_modules_in(source):
    return [name for name in GRADER_MODULES if name in source]


def cell_sources(notebook, grade_id):
    return [cell.source for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id]


def grade_cell_errors(notebook, prefix):
    """Return the error messages of the grade cells whose id starts with `prefix`."""
    messages = []
    for cell in notebook.cells:
        if not cell.metadata.get("nbgrader", {}).get("grade_id", "").startswith(prefix):
            continue
        messages += [output.get("evalue", "") for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    return messages


def autograd_evidence(notebook):
    """Return how the submission's exercise1 uses autograd, in words, or None."""
    if any(message.startswith(AUTOGRAD_MESSAGE) for message in grade_cell_errors(notebook, EXERCISE1_PREFIX)):
        return "the hidden tests saw exercise1 run PyTorch's autograd"
    names = [name for source in cell_sources(notebook, ANSWER_CELL) for name in autograd_names_in(source)]
    if names:
        return f"the code of exercise1 refers to {', '.join(sorted(set(names)))}"
    return None


def flag_for_manual_grading(course, student_id, prefix, answer_cell, explanation, withhold=False):
    """Mark the grades of the cells whose id starts with `prefix` as needing a manual grade.

    With `withhold`, their automatic scores become 0, for tests whose passing cannot be
    trusted. The explanation goes into the gradebook comment of `answer_cell`, which
    formgrader and the feedback show next to the student's answer.
    """
    with course.gradebook() as gradebook:
        notebook = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student_id)
        for grade in notebook.grades:
            if grade.name.startswith(prefix):
                grade.needs_manual_grade = True
                if withhold:
                    grade.auto_score = 0
        try:
            comment = gradebook.find_comment(answer_cell, ASSIGNMENT, ASSIGNMENT, student_id)
        except MissingEntry:
            log.warning("Student %s: no gradebook comment for cell %s, so the explanation is only in the summary", student_id, answer_cell)
        else:
            comment.auto_comment = " ".join(filter(None, [comment.auto_comment, explanation]))
        gradebook.db.commit()


def review(course, student_id):
    """Review one autograded submission; flag it in the gradebook where needed and return notes for the summary.

    A gradebook without this student's submission, which autograde should have made, is
    logged and noted instead of raised, so that the batch goes on.
    """
    path = course.root / "autograded" / student_id / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    try:
        notebook = nbformat.read(path, as_version=4)
    except (OSError, ValueError) as error:
        log.warning("Student %s: cannot review %s: %s", student_id, path, error)
        return []
    try:
        return review_notebook(course, student_id, notebook)
    except MissingEntry as error:
        log.error("Student %s: cannot flag the submission for manual grading: %s", student_id, error)
        return [f"review failed: {error}"]


def review_notebook(course, student_id, notebook):
    """Flag the autograded notebook where needed and return the notes for the summary."""
    notes = []
    evidence = autograd_evidence(notebook)
    if evidence:
        explanation = (
            f"Exercise 1 asks for the backward pass by hand, but {evidence}. The instructor reviews "
            "Exercise 1 and sets its points by hand."
        )
        flag_for_manual_grading(course, student_id, EXERCISE1_PREFIX, ANSWER_CELL, explanation)
        notes.append(f"Exercise 1 needs manual grading: {evidence}")
        log.info("Student %s: Exercise 1 flagged for manual grading: %s", student_id, evidence)

    tampering = sorted({m for m in grade_cell_errors(notebook, "") if m.startswith(TAMPERING_MESSAGE)})
    answers = {cell: "".join(cell_sources(notebook, cell)) for cell in (ANSWER_CELL, "exercise2_answer")}
    mentioned = {cell: grader_modules_in(source) for cell, source in answers.items() if grader_modules_in(source)}
    if mentioned or any(module in message for message in tampering for module in GRADER_MODULES):
        # Replaced checks pass whatever the answer, so no automatic point of this submission counts.
        cell, modules = next(iter(mentioned.items()), (ANSWER_CELL, ["a check of the hidden tests"]))
        explanation = (
            f"This answer refers to or replaces {modules[0]}, part of the grader's hidden tests, so no "
            "automatic point counts. The instructor grades every test of this submission by hand."
        )
        flag_for_manual_grading(course, student_id, "", cell, explanation, withhold=True)
        notes.insert(0, f"0 automatic points, every test needs manual grading: the code refers to {modules[0]}")
        log.warning("Student %s: automatic points withheld: %s refers to %s", student_id, cell, modules[0])
    if tampering:
        replaced = tampering[0][len(TAMPERING_MESSAGE):].split(", which")[0].split(", ")[0]
        notes.append(f"tests failed because the code replaced {replaced}")
    return notes
