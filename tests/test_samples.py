"""Every sample submission, graded by the real pipeline, earns exactly its expected points."""

import csv
import subprocess
import sys

import pytest
from nbgrader.api import Gradebook

from conftest import SAMPLES, nbgrader_environment, read_expected_points

EXPECTED = read_expected_points()
CELLS = [cell for cell in next(iter(EXPECTED.values())) if cell != "total"]


@pytest.fixture(scope="module")
def scores(sample_scores):
    return sample_scores


def test_expected_table_adds_up():
    for student, points in EXPECTED.items():
        assert sum(points[cell] for cell in CELLS) == points["total"], student


def test_expected_table_covers_every_sample():
    submitted = {path.name for path in (SAMPLES / "submitted").iterdir() if path.is_dir()}
    assert submitted == set(EXPECTED)


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_sample_earns_expected_points(scores, student):
    actual = {cell: scores[student].get(cell) for cell in CELLS}
    expected = {cell: EXPECTED[student][cell] for cell in CELLS}
    assert actual == expected


def test_grade_cells_match_expected_columns(scores):
    assert set(scores["correct-loop"]) == set(CELLS)


def test_samples_built_from_current_release():
    process = subprocess.run(
        [sys.executable, str(SAMPLES / "build_samples.py"), "--check"], capture_output=True, text=True
    )
    assert process.returncode == 0, process.stdout + process.stderr


def test_grades_csv_lists_every_sample(sample_run):
    _, course_dir, _, _ = sample_run
    with open(course_dir / "grades.csv", newline="", encoding="utf-8") as file:
        rows = {row["student_id"]: row for row in csv.DictReader(file)}
    assert set(rows) == set(EXPECTED)
    for student, points in EXPECTED.items():
        assert float(rows[student]["score"]) == points["total"], student
        assert float(rows[student]["max_score"]) == 30.0, student


def test_grades_csv_carries_roster_names(sample_run):
    _, course_dir, _, _ = sample_run
    with open(course_dir / "grades.csv", newline="", encoding="utf-8") as file:
        rows = {row["student_id"]: row for row in csv.DictReader(file)}
    assert rows["correct-unrolled"]["first_name"] == "Jürgen"
    assert rows["correct-unrolled"]["last_name"] == "Müller"
    assert rows["sign-error"]["last_name"] == "O'Brien"


def test_feedback_written_for_every_sample(sample_run):
    _, course_dir, _, _ = sample_run
    for student in EXPECTED:
        feedback = course_dir / "feedback" / student / "backprop" / "backprop.html"
        assert feedback.is_file(), feedback
        assert "Error Backpropagation" in feedback.read_text(encoding="utf-8")


def test_summary_table_shows_points_per_exercise(sample_run):
    process, _, _, _ = sample_run
    lines = {line.split("│")[1].strip(): line for line in process.stdout.splitlines() if line.count("│") > 3}
    for student, points in EXPECTED.items():
        exercise1 = sum(value for cell, value in points.items() if cell.startswith("ex1_"))
        exercise2 = sum(value for cell, value in points.items() if cell.startswith("ex2_"))
        cells = [cell.strip() for cell in lines[student].split("│")]
        assert f"{exercise1:g}/20" in cells, lines[student]
        assert f"{exercise2:g}/10" in cells, lines[student]
        assert f"{points['total']:g}/30" in cells, lines[student]


def test_main_job_leaves_repository_clean(sample_run):
    _, course_dir, status_before, status_after = sample_run
    assert status_after == status_before
    assert not course_dir.is_relative_to(SAMPLES.parent)


def test_plain_nbgrader_autograde_in_course_directory(sample_run):
    _, course_dir, _, _ = sample_run
    environment = nbgrader_environment()
    environment.pop("PYTHONPATH", None)
    process = subprocess.run(
        [sys.executable, "-m", "nbgrader", "autograde", "backprop", "--student", "missing-relu-derivative", "--force"],
        cwd=course_dir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stderr
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", "ml1-backprop") as gradebook:
        submission = gradebook.find_submission("backprop", "missing-relu-derivative")
        assert submission.score == EXPECTED["missing-relu-derivative"]["total"]
