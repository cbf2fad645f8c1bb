"""The pipeline's command line on Moodle exports, regrading and exporting, through real nbgrader."""

import csv
import os
import shutil

import nbformat
from nbgrader.api import Gradebook

from conftest import REPOSITORY, SAMPLES, run_grader
from grader.report import export_grades_csv
from test_intake import NOTEBOOK, WRONG_NOTEBOOK, moodle_folder, zip_folder


def read_grades_csv(path):
    with open(path, newline="", encoding="utf-8") as file:
        return {row["student_id"]: row for row in csv.DictReader(file)}


def test_pipeline_grades_moodle_zip_and_regrades(tmp_path):
    archive = zip_folder(moodle_folder(tmp_path), tmp_path / "export.zip")
    course = tmp_path / "course"
    process = run_grader("grade", str(archive), "--course-dir", str(course))

    # One participant sent no notebook, so the run reports a failure after grading the others.
    assert process.returncode == 1, process.stdout + process.stderr
    assert "1 of 3 submissions could not be graded: anna-lena-schmidt-4713" in " ".join(process.stderr.split())
    rows = read_grades_csv(course / "grades.csv")
    assert float(rows["juergen-mueller-4711"]["score"]) == 30.0
    assert rows["juergen-mueller-4711"]["first_name"] == "Jürgen"
    assert float(rows["sean-o-brien-4712"]["score"]) == 12.0
    assert rows["sean-o-brien-4712"]["last_name"] == "O'Brien"
    assert float(rows["anna-lena-schmidt-4713"]["score"]) == 0.0
    feedback = course / "feedback" / "juergen-mueller-4711" / "backprop" / "backprop.html"
    assert feedback.is_file()

    # A second export in which Jürgen's notebook is broken must not keep his earlier 30 points.
    second = tmp_path / "second"
    second.mkdir()
    (second / "Jürgen Müller_4711_assignsubmission_file_backprop.ipynb").write_text('{"cells": [')
    shutil.copy(NOTEBOOK, second / "Anna Lena Schmidt_4713_assignsubmission_file_backprop.ipynb")
    process = run_grader("grade", str(second), "--course-dir", str(course))

    assert process.returncode == 1, process.stdout + process.stderr
    assert "is not a readable notebook" in process.stdout
    rows = read_grades_csv(course / "grades.csv")
    assert float(rows["juergen-mueller-4711"]["score"]) == 0.0
    assert not feedback.exists()
    assert float(rows["anna-lena-schmidt-4713"]["score"]) == 30.0
    assert float(rows["sean-o-brien-4712"]["score"]) == 12.0


def write_answer(path, exercise2_source):
    """Write a correct sample with its exercise2 replaced by `exercise2_source`."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "exercise2_answer":
            cell.source = exercise2_source
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)


def test_dead_kernel_keeps_earlier_points(tmp_path):
    submissions, course = tmp_path / "submitted", tmp_path / "course"
    write_answer(submissions / "alex" / "backprop" / "backprop.ipynb", "def exercise2(W, B, X, T):\n    import os\n    os._exit(1)\n")

    process = run_grader("grade", str(submissions), "--course-dir", str(course), env={"COLUMNS": "400"})

    assert process.returncode == 0, process.stdout + process.stderr
    assert "note: the kernel died in cell 22 (exercise2_print)" in process.stdout
    autograded = nbformat.read(course / "autograded" / "alex" / "backprop" / "backprop.ipynb", as_version=4)
    events = autograded.metadata["backprop_grading"]["events"]
    assert len(events) == 5
    assert events[-1] == "no more kernel restarts after 3"
    assert float(read_grades_csv(course / "grades.csv")["alex"]["score"]) == 20.0
    assert (course / "feedback" / "alex" / "backprop" / "backprop.html").is_file()


def test_grading_course_submitted_folder_in_place(tmp_path):
    course = tmp_path / "course"
    (course / "submitted" / "alex" / "backprop").mkdir(parents=True)
    shutil.copy(WRONG_NOTEBOOK, course / "submitted" / "alex" / "backprop" / "backprop.ipynb")
    relative_db = os.path.relpath(tmp_path / "relative.db", REPOSITORY)

    process = run_grader("grade", str(course / "submitted"), "--course-dir", str(course), "--db", f"sqlite:///{relative_db}")

    assert process.returncode == 0, process.stdout + process.stderr
    assert (course / "submitted" / "alex" / "backprop" / "backprop.ipynb").is_file()
    assert (tmp_path / "relative.db").is_file()
    assert float(read_grades_csv(course / "grades.csv")["alex"]["score"]) == 12.0


def test_pipeline_with_other_gradebook_and_export(tmp_path):
    submissions = tmp_path / "submitted"
    (submissions / "alex" / "backprop").mkdir(parents=True)
    shutil.copy(WRONG_NOTEBOOK, submissions / "alex" / "backprop" / "backprop.ipynb")
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,first_name,last_name,email\nalex,Alex,\"Smith, Jr.\",alex@example.org\n")
    course, database = tmp_path / "course", tmp_path / "elsewhere.db"

    process = run_grader(
        "grade", str(submissions), "--course-dir", str(course), "--db", f"sqlite:///{database}", "--roster", str(roster)
    )

    assert process.returncode == 0, process.stdout + process.stderr
    assert database.is_file()
    assert not (course / "gradebook.db").exists()
    assert f"sqlite:///{database}" in (course / "nbgrader_config.py").read_text()
    row = read_grades_csv(course / "grades.csv")["alex"]
    assert row["last_name"] == "Smith, Jr."
    assert float(row["score"]) == 12.0

    exported = tmp_path / "again.csv"
    process = run_grader("export", "--course-dir", str(course), "--db", f"sqlite:///{database}", "--to", str(exported))
    assert process.returncode == 0, process.stdout + process.stderr
    assert exported.read_text(encoding="utf-8") == (course / "grades.csv").read_text(encoding="utf-8")


def test_invalid_gradebook_url_is_explained(tmp_path):
    process = run_grader("export", "--course-dir", str(tmp_path), "--db", "nonsense://")
    assert process.returncode == 2
    assert "Cannot use the gradebook" in process.stderr
    assert "Traceback" not in process.stderr


def test_export_without_gradebook_is_explained(tmp_path):
    process = run_grader("export", "--course-dir", str(tmp_path))
    assert process.returncode == 2
    assert "no gradebook at" in process.stderr
    assert not (tmp_path / "gradebook.db").exists()
    assert not (tmp_path / "grades.csv").exists()


def test_missing_submissions_change_nothing(tmp_path):
    process = run_grader("grade", str(tmp_path / "nowhere"), "--course-dir", str(tmp_path / "course"))
    assert process.returncode == 2
    assert "not found" in process.stderr
    assert not (tmp_path / "course").exists()


def test_grades_csv_quotes_commas(tmp_path):
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        gradebook.add_assignment("backprop")
        gradebook.add_student("alex", first_name="Alex", last_name="Smith, Jr.", email="alex@example.org")
        export_grades_csv(gradebook, tmp_path / "grades.csv")
    row = read_grades_csv(tmp_path / "grades.csv")["alex"]
    assert row["last_name"] == "Smith, Jr."
    assert row["email"] == "alex@example.org"
    assert row["score"] == "0.0"


def test_verbose_flag_after_subcommand():
    process = run_grader("release", "--check", "-v")
    assert process.returncode == 0, process.stderr
    assert "unrecognized arguments" not in process.stderr


def test_help_shows_examples_and_warning():
    process = run_grader("--help")
    assert process.returncode == 0
    assert "python -m grader grade moodle-export.zip" in process.stdout
    assert "replaces the earlier automatic scores" in process.stdout
    assert SAMPLES.name in process.stdout
