"""The exports, the instructor report and the feedback of the sample run, checked against the gradebook."""

import csv
import html
import re
import subprocess
import tempfile
from collections import Counter
from html.parser import HTMLParser

import matplotlib.image
import nbformat
import numpy as np
import pytest
from nbgrader.api import Gradebook

from conftest import REPOSITORY, SAMPLES
from grader.exports import CellResult, StudentResult
from grader.html_report import BAR_COLOR, mistake_pattern, render_report

ARTIFACTS = REPOSITORY / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def course(sample_run):
    process, course_dir, _, _ = sample_run
    assert process.returncode == 0, f"the pipeline failed:\n{process.stdout}\n{process.stderr}"
    return course_dir


@pytest.fixture(scope="module")
def gradebook_scores(course):
    """Read {student_id: {grade cell id: (score, max_score)}} from the sample run's gradebook."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "ml1-backprop") as gradebook:
        scores = {}
        for student in gradebook.students:
            notebook = gradebook.find_submission_notebook("backprop", "backprop", student.id)
            scores[student.id] = {grade.name: (grade.score, grade.max_score) for grade in notebook.grades}
        return scores


@pytest.fixture(scope="module")
def error_messages(course):
    """Read {student_id: {grade cell id: "Error: message"}} of the failed cells from the autograded notebooks."""
    messages = {}
    for path in sorted((course / "autograded").glob("*/backprop/backprop.ipynb")):
        student = path.parent.parent.name
        notebook = nbformat.read(path, as_version=4)
        messages[student] = {}
        for cell in notebook.cells:
            errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
            if errors and cell.metadata.get("nbgrader", {}).get("grade"):
                name, message = errors[-1].ename, errors[-1].evalue
                messages[student][cell.metadata["nbgrader"]["grade_id"]] = f"{name}: {message}" if message else name
    return messages


class TableParser(HTMLParser):
    """Collect the text of every cell of the tables that have an id, as {table id: [[cell text]]}."""

    def __init__(self):
        super().__init__()
        self.tables, self.current, self.row, self.cell = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "table" and "id" in attributes:
            self.current = self.tables.setdefault(attributes["id"], [])
        elif tag == "tr" and self.current is not None:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self.current = None
        elif tag == "tr" and self.row is not None:
            self.current.append(self.row)
            self.row = None
        elif tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def report_tables(course):
    parser = TableParser()
    parser.feed((course / "report.html").read_text(encoding="utf-8"))
    return {table_id: rows[1:] for table_id, rows in parser.tables.items()}


def test_breakdown_matches_gradebook(course, gradebook_scores, expected_points):
    rows = read_csv(course / "grades_per_test.csv")
    assert {(row["student_id"], row["cell_id"]) for row in rows} == {
        (student, cell) for student, cells in gradebook_scores.items() for cell in cells
    }
    for row in rows:
        score, max_score = gradebook_scores[row["student_id"]][row["cell_id"]]
        assert float(row["points"]) == score, row
        assert float(row["points"]) == expected_points[row["student_id"]][row["cell_id"]], row
        assert float(row["max_points"]) == max_score, row
        assert row["passed"] == ("yes" if score == max_score else "no"), row
        assert row["exercise"] == {"ex1": "Exercise 1", "ex2": "Exercise 2"}[row["cell_id"][:3]], row
        assert row["problem"] == "", row


def test_breakdown_messages_come_from_autograded_cells(course, error_messages):
    rows = read_csv(course / "grades_per_test.csv")
    failed = [row for row in rows if row["passed"] == "no"]
    assert failed
    for row in failed:
        assert row["message"] == error_messages[row["student_id"]][row["cell_id"]], row
    for row in rows:
        if row["passed"] == "yes":
            assert row["message"] == "", row


def test_moodle_file_has_every_sample_with_roster_email(course):
    roster = {row["student_id"]: row for row in read_csv(SAMPLES / "students.csv")}
    grades = {row["student_id"]: row for row in read_csv(course / "grades.csv")}
    rows = read_csv(course / "moodle_grades.csv")
    raw = (course / "moodle_grades.csv").read_bytes()

    assert raw.startswith(b"Email address,Error Backpropagation\r\n")
    assert raw.decode("utf-8")
    by_email = {row["Email address"]: row["Error Backpropagation"] for row in rows}
    assert len(by_email) == len(rows) == len(roster)
    for student, entry in roster.items():
        assert float(by_email[entry["email"]]) == float(grades[student]["score"]), student


def test_report_pass_rates_match_gradebook(course, gradebook_scores):
    rates = {row[0]: row for row in report_tables(course)["pass-rates"]}
    cells = {cell for cells in gradebook_scores.values() for cell in cells}
    assert set(rates) == cells
    for cell in cells:
        results = [scores[cell] for scores in gradebook_scores.values()]
        passed = sum(score == max_score for score, max_score in results)
        _, _, _, max_points, passed_text, graded_text, rate, _ = rates[cell]
        assert float(max_points) == results[0][1], cell
        assert int(passed_text) == passed, cell
        assert int(graded_text) == len(results), cell
        assert rate == f"{100 * passed / len(results):.0f} %", cell


def test_report_score_counts_match_gradebook(course, gradebook_scores, expected_points):
    totals = Counter(sum(score for score, _ in cells.values()) for cells in gradebook_scores.values())
    report_counts = {float(total): int(count) for total, count in report_tables(course)["score-counts"]}
    assert report_counts == dict(totals)
    assert report_counts == dict(Counter(points["total"] for points in expected_points.values()))


def test_report_summary_matches_gradebook(course, gradebook_scores):
    summary = dict(report_tables(course)["summary"])
    totals = [sum(score for score, _ in cells.values()) for cells in gradebook_scores.values()]
    assert summary["students in the gradebook"] == str(len(gradebook_scores))
    assert summary["graded"] == str(len(totals))
    assert summary["not graded (0 points in grades.csv)"] == "0"
    assert summary["mean of the graded totals"] == f"{np.mean(totals):.1f} / 30"
    assert summary["full marks"] == str(sum(total == 30 for total in totals))


def test_report_groups_mistakes_by_message(course, error_messages):
    rows = report_tables(course)["mistakes"]
    students_by_pattern = {}
    for student, messages in error_messages.items():
        for message in messages.values():
            students_by_pattern.setdefault(mistake_pattern(message), set()).add(student)
    report_counts = {pattern: int(students) for students, _, pattern, _ in rows}
    assert report_counts == {pattern: len(students) for pattern, students in students_by_pattern.items()}
    counts = [int(row[0]) for row in rows]
    assert counts == sorted(counts, reverse=True)


def test_report_lists_no_failed_grading_for_samples(course):
    text = (course / "report.html").read_text(encoding="utf-8")
    assert "Every submission was graded without a timeout." in text
    assert "not-graded" not in report_tables(course)


def test_report_is_self_contained(course):
    text = (course / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r'(?:src|href)="([^"#][^"]*)"', text)
    assert sources, "the report has no embedded image"
    assert all(source.startswith("data:image/png;base64,") for source in sources), sources
    assert "<link" not in text
    assert "<script" not in text
    assert "url(" not in text


def bar_colour_mask(image):
    """Return a boolean mask of the screenshot's pixels in the histogram's bar colour."""
    red, green, blue = (int(BAR_COLOR[i:i + 2], 16) / 255 for i in (1, 3, 5))
    difference = np.abs(image[:, :, :3] - np.array([red, green, blue]))
    return difference.max(axis=2) < 0.04


def test_report_renders_histogram_in_chromium(course):
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="backprop-chromium-") as profile:
        process = subprocess.run(
            [
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", f"--screenshot={screenshot}", "--window-size=1000,1400",
                (course / "report.html").as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert screenshot.is_file(), process.stderr

    image = matplotlib.image.imread(screenshot)
    assert image.shape[:2] == (1400, 1000)
    bars = bar_colour_mask(image)
    rows, columns = np.nonzero(bars)
    # 12 samples with 9 distinct totals: at least 9 bars, each some hundred pixels.
    assert bars.sum() > 3000, bars.sum()
    assert columns.max() - columns.min() > 400, "the bars do not spread over the score axis"
    region = image[rows.min():rows.max() + 1, columns.min():columns.max() + 1, :3]
    assert (region.min(axis=2) < 0.9).mean() > 0.1, "the histogram region is almost blank"


def test_feedback_hides_hidden_tests(course):
    for path in sorted((course / "feedback").glob("*/backprop/backprop.html")):
        text = path.read_text(encoding="utf-8")
        assert "HIDDEN TESTS" not in text, path
        assert "backprop_checks" not in text, path
        assert str(REPOSITORY) not in text, path


def test_feedback_shows_points_and_messages(course, gradebook_scores, error_messages):
    for student, cells in gradebook_scores.items():
        text = (course / "feedback" / student / "backprop" / "backprop.html").read_text(encoding="utf-8")
        summary = text[text.index('<div class="grading-summary">'):]
        summary = summary[:summary.index("</div>")]
        for exercise, prefix in (("Exercise 1", "ex1_"), ("Exercise 2", "ex2_")):
            score = sum(s for cell, (s, _) in cells.items() if cell.startswith(prefix))
            maximum = sum(m for cell, (_, m) in cells.items() if cell.startswith(prefix))
            assert f"<td>{exercise}</td><td>{score:g} / {maximum:g}</td>" in summary, student
        for cell, message in error_messages[student].items():
            # The notebook's markdown renderer writes quotes unescaped.
            assert message in html.unescape(summary), (student, cell)


def test_feedback_keeps_student_traceback(course):
    text = (course / "feedback" / "raises" / "backprop" / "backprop.html").read_text(encoding="utf-8")
    assert "delta.dot" in text
    assert "exercise1" in text
    assert "The hidden test's own lines are not shown." in html.unescape(text)


def test_report_lists_timeouts_and_problems():
    results = [
        StudentResult("slow", "Kai", "Weiß", graded=True, cells=[
            CellResult("ex1_norm", 2, 2),
            CellResult("ex1_dw0", 0, 2, "CellTimeoutError"),
        ]),
        StudentResult("broken", "Anna", "Schmidt", problems=["autograding failed: DeadKernelError: Kernel died"]),
    ]
    parser = TableParser()
    parser.feed(render_report(results, 30, {"ex1_norm": "The printed value"}))
    reasons = {row[0]: row[2] for row in parser.tables["not-graded"][1:]}
    assert reasons == {
        "slow": "timed out in ex1_dw0, which got 0 points",
        "broken": "autograding failed: DeadKernelError: Kernel died",
    }
    summary = dict(parser.tables["summary"][1:])
    assert summary["graded"] == "1"
    assert summary["not graded (0 points in grades.csv)"] == "1"
