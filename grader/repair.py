"""Repair a submitted notebook's structure before nbgrader grades it.

Students delete, duplicate and retype cells, edit read-only ones, and open the notebook in
other kernels or older Jupyter versions. nbgrader 0.9.6 then grades a test cell that is
missing as 0 points, or fails on a changed cell type. RepairNotebook, the first of
autograde's sanitizing preprocessors, compares the submission with the release notebook
of the course directory and:

- puts back every nbgrader cell of the release that is missing, after the cell that
  precedes it in the release; a missing answer cell is first looked for among the
  student's unmarked code cells by the function it defines;
- restores the cell type, source and nbgrader metadata of every read-only cell, test
  cells included (nbgrader's OverwriteCells then puts the hidden tests in), and the cell
  type and metadata of answer cells;
- keeps the first of several cells with one grade id and removes the copies of read-only
  cells (a copied answer cell stays, without nbgrader's marks);
- removes nbgrader marks the release does not have, the outputs, and a foreign kernelspec;
- gives every cell an id, as nbformat 4.5 requires.

Each repair is recorded as a sentence in the notebook's metadata under
``backprop_grading.repairs``, which the pipeline lists in the summary.
"""

import copy
import re
from pathlib import Path

import nbformat
from nbformat.v4.nbbase import random_cell_id
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor

METADATA_KEY = "backprop_grading"


def nbgrader_marks(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def grade_id(cell):
    return nbgrader_marks(cell).get("grade_id")


def is_answer(cell):
    return bool(nbgrader_marks(cell).get("solution"))


def is_read_only(cell):
    marks = nbgrader_marks(cell)
    return bool(marks.get("locked") or marks.get("grade")) and not marks.get("solution")


def defined_functions(source):
    return set(re.findall(r"^def\s+(\w+)\s*\(", source, re.MULTILINE))


def fresh_copy(cell):
    """Return a copy of a release cell, ready to insert: no outputs, a new id."""
    cell = copy.deepcopy(cell)
    cell["id"] = random_cell_id()
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
    return cell


def set_cell_type(cell, cell_type):
    """Change a cell's type and add or drop the fields nbformat requires of that type."""
    cell.cell_type = cell_type
    if cell_type == "code":
        cell.setdefault("outputs", [])
        cell.setdefault("execution_count", None)
        cell.pop("attachments", None)
    else:
        cell.pop("outputs", None)
        cell.pop("execution_count", None)


class NotebookRepair:
    """The repair of one submitted notebook against the release notebook; `notes` lists what was done."""

    def __init__(self, release):
        self.release = release
        self.reference = {grade_id(cell): cell for cell in release.cells if grade_id(cell)}
        self.repairs = {}

    def _record(self, kind, subject):
        self.repairs.setdefault(kind, []).append(subject)

    @property
    def notes(self):
        """One sentence per kind of repair, e.g. "missing cells restored: ex1_dw0, ex2_graph"."""
        return [f"{kind}: {', '.join(subjects)}" for kind, subjects in self.repairs.items()]

    def repair(self, notebook):
        self._normalise_format(notebook)
        self._drop_unknown_marks(notebook)
        self._drop_duplicates(notebook)
        self._adopt_unmarked_answers(notebook)
        self._restore_cells(notebook)
        self._insert_missing(notebook)
        return notebook

    def _normalise_format(self, notebook):
        kernelspec = self.release.metadata.get("kernelspec")
        if notebook.metadata.get("kernelspec") != kernelspec:
            name = notebook.metadata.get("kernelspec", {}).get("name")
            self._record(f"kernel set to {kernelspec['name']!r}, was", repr(name) if name else "none")
            notebook.metadata["kernelspec"] = copy.deepcopy(kernelspec)
        if (notebook.nbformat, notebook.nbformat_minor) < (4, 5):
            self._record("nbformat upgraded to 4.5, was", f"{notebook.nbformat}.{notebook.nbformat_minor}")
        notebook.nbformat, notebook.nbformat_minor = 4, max(5, notebook.nbformat_minor)
        seen = set()
        for cell in notebook.cells:
            if not cell.get("id") or cell["id"] in seen:
                cell["id"] = random_cell_id()
            seen.add(cell["id"])
            if cell.get("outputs"):
                cell.outputs = []
            if cell.cell_type == "code":
                cell.execution_count = None

    def _drop_unknown_marks(self, notebook):
        for cell in notebook.cells:
            if "nbgrader" in cell.get("metadata", {}) and grade_id(cell) not in self.reference:
                self._record("nbgrader marks removed from unknown cells", repr(grade_id(cell)))
                del cell.metadata["nbgrader"]

    def _drop_duplicates(self, notebook):
        """Keep the first cell of each grade id; remove copies of read-only cells, unmark copies of answer cells."""
        seen, kept = set(), []
        for cell in notebook.cells:
            cell_id = grade_id(cell)
            if cell_id is None or cell_id not in seen:
                seen.add(cell_id)
                kept.append(cell)
                continue
            if is_read_only(self.reference[cell_id]):
                self._record("copies of read-only cells removed", cell_id)
                continue
            self._record("copies of answer cells kept as ordinary cells", cell_id)
            del cell.metadata["nbgrader"]
            kept.append(cell)
        notebook.cells = kept

    def _adopt_unmarked_answers(self, notebook):
        """Give a missing answer cell's marks to the student's unmarked code cell that defines its function."""
        present = {grade_id(cell) for cell in notebook.cells}
        for cell_id, reference in self.reference.items():
            if cell_id in present or not is_answer(reference):
                continue
            wanted = defined_functions(reference.source)
            for cell in notebook.cells:
                if cell.cell_type in ("code", "raw", "markdown") and grade_id(cell) is None and wanted & defined_functions(cell.source):
                    cell.setdefault("metadata", {})["nbgrader"] = copy.deepcopy(nbgrader_marks(reference))
                    self._record("answer cells found without their nbgrader marks", cell_id)
                    break

    def _restore_cells(self, notebook):
        """Give every known cell the release's type and marks, and read-only cells the release's source."""
        for cell in notebook.cells:
            cell_id = grade_id(cell)
            if cell_id is None:
                continue
            reference = self.reference[cell_id]
            if cell.cell_type != reference.cell_type:
                self._record(f"cells changed back to {reference.cell_type}", f"{cell_id} (was {cell.cell_type})")
                set_cell_type(cell, reference.cell_type)
            if is_read_only(reference) and cell.source != reference.source:
                self._record("edited read-only cells restored", cell_id)
                cell.source = reference.source
            cell.metadata["nbgrader"] = copy.deepcopy(nbgrader_marks(reference))

    def _insert_missing(self, notebook):
        """Insert each missing release cell after the cell that precedes it in the release."""
        positions = {grade_id(cell): index for index, cell in enumerate(notebook.cells) if grade_id(cell)}
        previous = None
        for reference in self.release.cells:
            cell_id = grade_id(reference)
            if cell_id is None:
                continue
            if cell_id not in positions:
                at = positions[previous] + 1 if previous is not None else 0
                notebook.cells.insert(at, fresh_copy(reference))
                positions = {grade_id(cell): index for index, cell in enumerate(notebook.cells) if grade_id(cell)}
                self._record("missing cells restored", cell_id)
            previous = cell_id


class RepairNotebook(NbGraderPreprocessor):
    """nbgrader preprocessor that repairs a submission's cells against the course's release notebook."""

    def preprocess(self, nb, resources):
        assignment = resources["nbgrader"]["assignment"]
        notebook_id = resources["nbgrader"]["notebook"]
        coursedir = CourseDirectory(config=self.config)
        release_path = Path(coursedir.format_path(coursedir.release_directory, ".", assignment)) / f"{notebook_id}.ipynb"
        release = nbformat.read(release_path, as_version=4)
        repair = NotebookRepair(release)
        nb = repair.repair(nb)
        for note in repair.notes:
            self.log.warning("Repaired %s: %s", resources["nbgrader"].get("student"), note)
        nb.metadata.setdefault(METADATA_KEY, {})["repairs"] = repair.notes
        return nb, resources
