"""Read the grades back from the gradebook, export grades.csv and print the summary table."""

import csv
import logging
from dataclasses import dataclass, field

from nbgrader.api import MissingEntry
from nbgrader.plugins import ExportPlugin
from rich.table import Table

from grader import ASSIGNMENT

log = logging.getLogger(__name__)

# Grade cells are named ex1_* and ex2_* in the source notebook.
EXERCISES = {"ex1": "Exercise 1", "ex2": "Exercise 2"}


@dataclass
class StudentGrade:
    """One student's points, per grade cell and per exercise."""

    student_id: str
    name: str
    cells: dict = field(default_factory=dict)
    """Points per grade cell id, as the gradebook stores them."""
    exercises: dict = field(default_factory=dict)
    """(points, maximum) per exercise name."""
    problems: list = field(default_factory=list)
    """Reasons the submission got no grade, or lost its earlier one."""
    notes: list = field(default_factory=list)
    """Remarks for the grader about a graded submission."""

    @property
    def total(self):
        return sum(points for points, _ in self.exercises.values())


def read_grades(gradebook):
    """Return a StudentGrade for each student with a submission, sorted by student id."""
    grades = []
    for student in sorted(gradebook.students, key=lambda s: s.id):
        try:
            notebook = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student.id)
        except MissingEntry:
            continue
        name = f"{student.first_name or ''} {student.last_name or ''}".strip()
        grade = StudentGrade(student.id, name)
        for cell in notebook.grades:
            grade.cells[cell.name] = cell.score
            exercise = EXERCISES.get(cell.name.split("_")[0], "Other")
            points, maximum = grade.exercises.get(exercise, (0, 0))
            grade.exercises[exercise] = (points + cell.score, maximum + cell.max_score)
        grades.append(grade)
    return grades


def exercise_maxima(gradebook):
    """Return the maximum points of each exercise, from the grade cells of the source notebook."""
    maxima = {}
    for cell in gradebook.find_notebook(ASSIGNMENT, ASSIGNMENT).grade_cells:
        exercise = EXERCISES.get(cell.name.split("_")[0], "Other")
        maxima[exercise] = maxima.get(exercise, 0) + cell.max_score
    return maxima


class QuotedCsvExportPlugin(ExportPlugin):
    """nbgrader's grades.csv, written with Python's csv module so that names with commas or quotes stay in their column.

    The columns and values are those of nbgrader's CsvExportPlugin (0.9.6), which joins
    fields with bare commas. A student without a submission gets 0 points.
    """

    def export(self, gradebook):
        path = self.to or "grades.csv"
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=GRADES_CSV_COLUMNS)
            writer.writeheader()
            for assignment in gradebook.assignments:
                if self.assignment and assignment.name not in self.assignment:
                    continue
                for student in gradebook.students:
                    if self.student and student.id not in self.student:
                        continue
                    writer.writerow(grades_csv_row(gradebook, assignment, student))
        self.log.info("Exported grades to %s", path)


GRADES_CSV_COLUMNS = [
    "assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
    "raw_score", "late_submission_penalty", "score", "max_score",
]


def grades_csv_row(gradebook, assignment, student):
    """Return one row of grades.csv, with empty strings for missing values."""
    row = {
        "assignment": assignment.name,
        "duedate": assignment.duedate,
        "student_id": student.id,
        "last_name": student.last_name,
        "first_name": student.first_name,
        "email": student.email,
        "max_score": assignment.max_score,
        "timestamp": None,
        "raw_score": 0.0,
        "late_submission_penalty": 0.0,
        "score": 0.0,
    }
    try:
        submission = gradebook.find_submission(assignment.name, student.id)
    except MissingEntry:
        pass
    else:
        penalty = submission.late_submission_penalty or 0.0
        row.update(
            timestamp=submission.timestamp,
            raw_score=submission.score,
            late_submission_penalty=penalty,
            score=max(0.0, submission.score - penalty),
        )
    return {key: "" if value is None else value for key, value in row.items()}


def export_grades_csv(gradebook, path):
    """Write grades.csv: one row per student and assignment, with the total score."""
    QuotedCsvExportPlugin(to=str(path)).export(gradebook)
    log.info("Wrote %s", path)


def format_points(points):
    return f"{points:g}"


def summary_table(grades, maxima):
    """Build the summary: student, points per exercise, total and any problem.

    `maxima` gives each exercise's maximum, shown for students without grades too.
    """
    table = Table(title=f"Grades of '{ASSIGNMENT}'")
    table.add_column("student")
    table.add_column("name")
    exercise_names = sorted(maxima)
    for name in exercise_names:
        table.add_column(name, justify="right")
    table.add_column("total", justify="right")
    table.add_column("problems and notes")

    for grade in grades:
        cells = [grade.student_id, grade.name]
        for name in exercise_names:
            points, _ = grade.exercises.get(name, (0, 0))
            cells.append(f"{format_points(points)}/{format_points(maxima[name])}")
        cells.append(f"{format_points(grade.total)}/{format_points(sum(maxima.values()))}")
        cells.append("; ".join(grade.problems + [f"note: {note}" for note in grade.notes]))
        table.add_row(*cells)
    return table
