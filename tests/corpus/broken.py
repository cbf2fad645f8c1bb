"""Submissions whose notebook is damaged: invalid JSON, lost, copied or retyped cells, foreign metadata, huge outputs."""

import copy
import json

import nbformat

from corpus import FULL_MARKS, Case, sample_notebook, writer

CORRECT = sample_notebook("correct-loop")
SIGN_ERROR = sample_notebook("sign-error")
EXERCISE1_ONLY = {cell: points for cell, points in FULL_MARKS.items() if cell.startswith("ex1")}
SIGN_ERROR_POINTS = {"ex1_norm": 2, **{cell: points for cell, points in FULL_MARKS.items() if cell.startswith("ex2")}}


def index_of(notebook, grade_id):
    return next(i for i, cell in enumerate(notebook.cells) if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def without(grade_ids, notebook=CORRECT):
    notebook = copy.deepcopy(notebook)
    notebook.cells = [cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade_id") not in grade_ids]
    return notebook


def duplicated(grade_ids, source):
    """Copy cells right after themselves; `source` maps grade ids to the source of their copy."""
    notebook = copy.deepcopy(CORRECT)
    for grade_id in grade_ids:
        index = index_of(notebook, grade_id)
        twin = copy.deepcopy(notebook.cells[index])
        twin["id"] = twin["id"] + "-copy"
        twin.source = source.get(grade_id, twin.source)
        notebook.cells.insert(index + 1, twin)
    return notebook


def retyped(cell_types, notebook=CORRECT):
    """Change the type of cells, given as {grade id: new cell type}."""
    notebook = copy.deepcopy(notebook)
    for grade_id, cell_type in cell_types.items():
        cell = notebook.cells[index_of(notebook, grade_id)]
        cell.cell_type = cell_type
        cell.pop("outputs", None)
        cell.pop("execution_count", None)
    return notebook


def edited_read_only():
    """The sign-error answer with every test cell emptied to `pass` and the given data changed."""
    notebook = copy.deepcopy(SIGN_ERROR)
    for cell in notebook.cells:
        marks = cell.metadata.get("nbgrader", {})
        if marks.get("grade"):
            cell.source = "pass"
        if marks.get("grade_id") == "given_forward":
            cell.source += "\nT = Y.copy()  # makes every gradient zero"
    return notebook


def old_format():
    """The notebook as Jupyter of 2020 saved it (nbformat 4.4, no cell ids), with a Julia kernel."""
    data = json.loads(nbformat.writes(CORRECT))
    data["metadata"]["kernelspec"] = {"name": "julia-1.10", "display_name": "Julia 1.10", "language": "julia"}
    data["nbformat_minor"] = 4
    for cell in data["cells"]:
        cell.pop("id", None)
    return json.dumps(data, indent=1)


def huge_outputs(megabytes=40):
    notebook = copy.deepcopy(CORRECT)
    cell = notebook.cells[index_of(notebook, "exercise1_print")]
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="0123456789abcdef" * (megabytes * 2**16))]
    return notebook


def unmarked():
    """Every nbgrader mark gone, as when a student copies the cells into a new notebook."""
    notebook = copy.deepcopy(CORRECT)
    for cell in notebook.cells:
        cell.metadata.pop("nbgrader", None)
    return notebook


CASES = [
    Case(
        "broken-invalid-json",
        writer('{"cells": [{"cell_type": "code", "source": "def exercise1('),
        graded=False,
        summary=["backprop.ipynb is not a readable notebook"],
    ),
    Case(
        "broken-deleted-cells",
        writer(without({"ex1_dw0", "given_torch", "ex2_fresh_data"})),
        points=FULL_MARKS,
        summary=["missing cells restored: ex1_dw0, given_torch, ex2_fresh_data"],
    ),
    # The release's stub of exercise2 comes back and raises NotImplementedError.
    Case(
        "broken-deleted-answer-cell",
        writer(without({"exercise2_answer"})),
        points=EXERCISE1_ONLY,
        summary=["missing cells restored: exercise2_answer"],
    ),
    # The copy of a test cell is emptied; the copy of the answer cell defines exercise1 again.
    Case(
        "broken-duplicated-cells",
        writer(duplicated(["ex1_dw0", "exercise1_answer"], source={"ex1_dw0": "pass"})),
        points=FULL_MARKS,
        summary=["copies of read-only cells removed: ex1_dw0", "copies of answer cells kept as ordinary cells: exercise1_answer"],
    ),
    Case(
        "broken-retyped-cells",
        writer(retyped({"exercise1_answer": "raw", "ex1_dw0": "markdown", "exercise2_answer": "markdown"})),
        points=FULL_MARKS,
        summary=["cells changed back to code: exercise1_answer (was raw), ex1_dw0 (was markdown), exercise2_answer (was markdown)"],
    ),
    Case(
        "broken-edited-read-only-cells",
        writer(edited_read_only()),
        points=SIGN_ERROR_POINTS,
        summary=["edited read-only cells restored: given_forward, ex1_norm, ex1_dw0"],
    ),
    Case(
        "broken-old-format",
        writer(old_format()),
        points=FULL_MARKS,
        summary=["kernel set to 'python3', was: 'julia-1.10'", "nbformat upgraded to 4.5, was: 4.4"],
    ),
    Case("broken-huge-outputs", writer(huge_outputs()), points=FULL_MARKS),
    Case(
        "broken-unmarked",
        writer(unmarked()),
        points=FULL_MARKS,
        summary=["answer cells found without their nbgrader marks: exercise1_answer, exercise2_answer"],
    ),
]
