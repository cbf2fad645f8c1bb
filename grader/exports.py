"""The exports after grading: the per-test breakdown, Moodle's grade-import file and the instructor report.

All of them are read from the gradebook, like nbgrader's grades.csv, and from the
autograded notebooks, whose test cells hold the message of each failed test. Students
whose submission could not be graded appear in every export with the reason, which the
grading run stores in grading_problems.json, so that `python -m grader export` shows it too.
"""

import csv
import json
import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import MissingEntry
from traitlets import Enum, Unicode
from traitlets.config import Configurable

from grader import ASSIGNMENT, SOURCE_DIRECTORY, html_report
from grader.feedback import cell_description, error_message, exercise_of

log = logging.getLogger(__name__)

BREAKDOWN_FILE = "grades_per_test.csv"
MOODLE_FILE = "moodle_grades.csv"
REPORT_FILE = "report.html"
PROBLEMS_FILE = "grading_problems.json"

BREAKDOWN_COLUMNS = [
    "student_id", "first_name", "last_name", "cell_id", "exercise", "points", "max_points", "passed", "message", "problem",
]

NO_SUBMISSION = "no graded submission in the gradebook"

# nbgrader 0.9.6 interrupts a cell that runs longer than c.Execute.timeout and records
# nbclient's CellTimeoutError, or the KeyboardInterrupt of the interrupt, as its error.
TIMEOUT_ERRORS = ("CellTimeoutError", "KeyboardInterrupt")


@dataclass
class CellResult:
    """The points of one grade cell of one student, with the failed test's message."""

    cell_id: str
    points: float
    max_points: float
    message: str = ""
    """The last line of the cell's error, "AssertionError: ...", or empty when it passed."""

    @property
    def exercise(self):
        return exercise_of(self.cell_id)

    @property
    def passed(self):
        return self.points >= self.max_points


@dataclass
class StudentResult:
    """One student's grade cells, total and problems, as the exports show them."""

    student_id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    graded: bool = False
    """Whether the gradebook contains a graded submission; students without one get 0 points."""
    cells: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def name(self):
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def total(self):
        return sum(cell.points for cell in self.cells)

    @property
    def timed_out_cells(self):
        """The grade cells that nbgrader interrupted after c.Execute.timeout seconds, which count as failed."""
        return [cell.cell_id for cell in self.cells if cell.message.startswith(TIMEOUT_ERRORS)]


class MoodleExport(Configurable):
    """The columns of moodle_grades.csv, for Moodle's gradebook import "CSV file".

    Moodle's import matches each row to a user by one column. On the import page, that
    column is mapped to a user field ("Map to": Email address, ID number, Username or
    User ID), and the grade column to a grade item.
    """

    identifier = Enum(
        ["email", "idnumber"],
        default_value="email",
        help="the user field that identifies students: their email address, or their ID number "
        "(the roster's idnumber column)",
    ).tag(config=True)
    identifier_column = Unicode(
        "", help='the header of the identifier column (default: "Email address" or "ID number")'
    ).tag(config=True)
    grade_column = Unicode("Error Backpropagation", help="the header of the grade column").tag(config=True)

    @property
    def identifier_header(self):
        return self.identifier_column or {"email": "Email address", "idnumber": "ID number"}[self.identifier]


def grade_cells():
    """Return {grade cell id: what it checks} in the order of the source notebook."""
    notebook = nbformat.read(SOURCE_DIRECTORY / f"{ASSIGNMENT}.ipynb", as_version=4)
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell_description(cell.source)
        for cell in notebook.cells
        if cell.metadata.get("nbgrader", {}).get("grade")
    }


def read_messages(autograded_notebook):
    """Return {grade cell id: error message} of an autograded notebook, or {} when it is missing."""
    if not autograded_notebook.is_file():
        return {}
    notebook = nbformat.read(autograded_notebook, as_version=4)
    messages = {}
    for cell in notebook.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id and cell.cell_type == "code":
            messages[grade_id] = error_message(cell)
    return messages


def read_results(gradebook, autograded_directory, problems=None):
    """Return a StudentResult for every student of the gradebook, sorted by student id.

    `problems` maps student ids to {"problems": [...], "notes": [...]} of the grading run.
    """
    problems = problems or {}
    order = {cell_id: index for index, cell_id in enumerate(grade_cells())}
    results = []
    for student in sorted(gradebook.students, key=lambda s: s.id):
        result = StudentResult(student.id, student.first_name or "", student.last_name or "", student.email or "")
        recorded = problems.get(student.id, {})
        result.problems = list(recorded.get("problems", []))
        result.notes = list(recorded.get("notes", []))
        try:
            notebook = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student.id)
        except MissingEntry:
            if not result.problems:
                result.problems.append(NO_SUBMISSION)
            results.append(result)
            continue

        result.graded = True
        messages = read_messages(Path(autograded_directory) / student.id / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
        for grade in sorted(notebook.grades, key=lambda g: order.get(g.name, len(order))):
            message = messages.get(grade.name, "") if grade.score < grade.max_score else ""
            result.cells.append(CellResult(grade.name, grade.score, grade.max_score, message))
        results.append(result)
    return results


def format_points(points):
    return f"{points:g}"


def write_breakdown(results, path):
    """Write grades_per_test.csv: one row per student and grade cell, or one row with the problem when not graded."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=BREAKDOWN_COLUMNS)
        writer.writeheader()
        for result in results:
            names = {"student_id": result.student_id, "first_name": result.first_name, "last_name": result.last_name}
            problem = "; ".join(result.problems)
            if not result.graded:
                writer.writerow({**names, "problem": problem})
                continue
            for cell in result.cells:
                writer.writerow({
                    **names,
                    "cell_id": cell.cell_id,
                    "exercise": cell.exercise,
                    "points": format_points(cell.points),
                    "max_points": format_points(cell.max_points),
                    "passed": "yes" if cell.passed else "no",
                    "message": cell.message,
                    "problem": problem,
                })
    log.info("Wrote %s", path)


def normalized_name(name):
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


class Identifiers:
    """Find each student's email address or ID number in the roster, else in the gradebook.

    A roster row matches by student id first. A student from a Moodle export, whose id
    the pipeline made from the name and participant id, matches a row by full name, but
    only when exactly one row has that name.
    """

    def __init__(self, field_name, roster):
        self.field_name = field_name
        self.roster = roster or {}
        self.by_name = {}
        for row in self.roster.values():
            name = normalized_name(f"{row.get('first_name', '')} {row.get('last_name', '')}")
            self.by_name.setdefault(name, []).append(row)

    def find(self, result):
        """Return (identifier, reason): the value, or "" and why it is missing."""
        row = self.roster.get(result.student_id)
        if row is None:
            rows = self.by_name.get(normalized_name(result.name), []) if result.name else []
            if len(rows) > 1:
                return "", f"the roster has {len(rows)} students named {result.name!r}; add a row with student_id {result.student_id}"
            row = rows[0] if rows else None
        value = (row or {}).get(self.field_name, "") or ""
        if not value and self.field_name == "email":
            value = result.email
        if value.strip():
            return value.strip(), ""
        if self.field_name == "email":
            where = "its roster row" if row else "the roster (--roster) or the gradebook"
            return "", f"no email address in {where}"
        where = "its roster row" if row else "the roster (--roster)"
        return "", f"no ID number (roster column idnumber) in {where}"


def moodle_rows(results, settings, roster):
    """Return (rows, left_out): the rows of moodle_grades.csv and (student, reason) of those without a usable identifier.

    Two students with the same identifier are both left out, because Moodle would give
    both grades to one user.
    """
    identifiers = Identifiers(settings.identifier, roster)
    found, left_out = [], []
    for result in results:
        value, reason = identifiers.find(result)
        if reason:
            left_out.append((result, reason))
        else:
            found.append((result, value))

    owners = {}
    for result, value in found:
        owners.setdefault(value.casefold(), []).append(result)
    rows = []
    for result, value in found:
        others = [other.student_id for other in owners[value.casefold()] if other is not result]
        if others:
            left_out.append((result, f"{settings.identifier_header} {value} belongs to {', '.join(others)} as well"))
        else:
            rows.append({settings.identifier_header: value, settings.grade_column: format_points(result.total)})
    return rows, left_out


def write_moodle_csv(results, path, settings, roster=None):
    """Write moodle_grades.csv (UTF-8, comma-separated) and return the students left out, with the reason."""
    rows, left_out = moodle_rows(results, settings, roster)
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=[settings.identifier_header, settings.grade_column])
        writer.writeheader()
        writer.writerows(rows)
    log.info("Wrote %s with %d of %d students", path, len(rows), len(results))
    for result, reason in left_out:
        log.warning("%s leaves out student %s (%s): %s", Path(path).name, result.student_id, result.name or "no name", reason)
    return left_out


def load_problems(course_root):
    """Return the problems and notes that earlier grading runs stored, by student id."""
    path = Path(course_root) / PROBLEMS_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        log.warning("Ignored %s, which cannot be read (%s); the exports show no grading problems", path, error)
        return {}


def save_problems(course_root, grades):
    """Store this batch's problems and notes, replacing those of its students from earlier runs."""
    stored = load_problems(course_root)
    for grade in grades:
        stored[grade.student_id] = {"problems": list(grade.problems), "notes": list(grade.notes)}
    path = Path(course_root) / PROBLEMS_FILE
    path.write_text(json.dumps(stored, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def moodle_settings(config, identifier=None, identifier_column=None, grade_column=None):
    """Return the MoodleExport settings of nbgrader_config.py, overridden by the options that are given."""
    settings = MoodleExport(config=config)
    if identifier:
        settings.identifier = identifier
    if identifier_column:
        settings.identifier_column = identifier_column
    if grade_column:
        settings.grade_column = grade_column
    return settings


def write_exports(gradebook, course_root, folder, settings, roster=None, problems=None):
    """Write the breakdown, Moodle's import file and the report into `folder`.

    `roster` is intake.read_roster's {student_id: row}; `problems` defaults to those the
    grading runs stored in the course directory. Returns the students left out of the
    Moodle file, with the reason.
    """
    if problems is None:
        problems = load_problems(course_root)
    results = read_results(gradebook, Path(course_root) / "autograded", problems)
    max_total = gradebook.find_assignment(ASSIGNMENT).max_score

    folder = Path(folder)
    write_breakdown(results, folder / BREAKDOWN_FILE)
    left_out = write_moodle_csv(results, folder / MOODLE_FILE, settings, roster)
    html_report.write_report(results, folder / REPORT_FILE, max_total, grade_cells(), left_out, MOODLE_FILE)
    return left_out
