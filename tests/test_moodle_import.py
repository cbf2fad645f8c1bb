"""Moodle's grade-import file: names as Moodle writes them, from the export zip to the CSV rows."""

import csv
import shutil

from traitlets.config import Config

from conftest import run_grader
from grader import intake
from grader.exports import CellResult, MoodleExport, StudentResult, moodle_rows, write_moodle_csv
from test_intake import NOTEBOOK, WRONG_NOTEBOOK, zip_folder

ROSTER = """\
student_id,first_name,last_name,email,idnumber
anna-schmidt-4711,Anna,Schmidt,anna.schmidt@example.org,402981
anna-schmidt-4720,Anna,Schmidt,a.schmidt@example.org,402982
s403000,Jürgen,Müller,juergen.mueller@example.org,403000
{zoe_id},Zoë,D'Ambrosio-Weiß,zoe.dambrosio@example.org,403001
403002,Mehmet,Öztürk,mehmet.oeztuerk@example.org,403002
"""


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def moodle_export(tmp_path):
    """Build a Moodle export zip with two students of the same name, umlauts, apostrophes and a numeric id."""
    folder = tmp_path / "export"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder / "Anna Schmidt_4711_assignsubmission_file_backprop.ipynb")
    second_anna = folder / "Anna Schmidt_4720_assignsubmission_file_"
    second_anna.mkdir()
    shutil.copy(WRONG_NOTEBOOK, second_anna / "backprop.ipynb")
    shutil.copy(WRONG_NOTEBOOK, folder / "Jürgen Müller_4712_assignsubmission_file_backprop.ipynb")
    shutil.copy(NOTEBOOK, folder / "Seán O'Brien_4713_assignsubmission_file_backprop.ipynb")
    (folder / "Zoë D'Ambrosio-Weiß_4714_assignsubmission_file_notes.txt").write_text("no notebook, sorry")
    (folder / "403002" / "backprop").mkdir(parents=True)
    shutil.copy(NOTEBOOK, folder / "403002" / "backprop" / "backprop.ipynb")
    return zip_folder(folder, tmp_path / "export.zip")


def test_moodle_names_reach_right_rows(tmp_path):
    zoe_id = intake.student_id_for("Zoë D'Ambrosio-Weiß") + "-4714"
    roster = tmp_path / "students.csv"
    roster.write_text(ROSTER.format(zoe_id=zoe_id), encoding="utf-8")
    course = tmp_path / "course"

    process = run_grader("grade", str(moodle_export(tmp_path)), "--course-dir", str(course), "--roster", str(roster))

    # Zoë sent no notebook, so the run reports a failure after grading the others.
    assert process.returncode == 1, process.stdout + process.stderr
    rows = read_rows(course / "moodle_grades.csv")
    assert {row["Email address"]: float(row["Error Backpropagation"]) for row in rows} == {
        "anna.schmidt@example.org": 30.0,
        "a.schmidt@example.org": 12.0,
        "juergen.mueller@example.org": 12.0,
        "zoe.dambrosio@example.org": 0.0,
        "mehmet.oeztuerk@example.org": 30.0,
    }
    output = " ".join(process.stdout.split())
    assert "moodle_grades.csv leaves out 1 students without a usable identifier (see the report): sean-o-brien-4713" in output

    report = (course / "report.html").read_text(encoding="utf-8")
    assert "sean-o-brien-4713" in report
    assert "no email address in the roster (--roster) or the gradebook" in report
    assert zoe_id in report
    assert "no notebook (.ipynb) submitted" in report

    breakdown = [row for row in read_rows(course / "grades_per_test.csv") if row["student_id"] == zoe_id]
    assert len(breakdown) == 1
    assert breakdown[0]["cell_id"] == ""
    assert "no notebook (.ipynb) submitted" in breakdown[0]["problem"]

    # Export again by ID number, with other column names, and without grading.
    process = run_grader(
        "export", "--course-dir", str(course), "--roster", str(roster), "--moodle-identifier", "idnumber",
        "--moodle-grade-column", "Backprop (points)",
    )
    assert process.returncode == 0, process.stdout + process.stderr
    rows = read_rows(course / "moodle_grades.csv")
    assert {row["ID number"]: float(row["Backprop (points)"]) for row in rows} == {
        "402981": 30.0, "402982": 12.0, "403000": 12.0, "403001": 0.0, "403002": 30.0,
    }
    # The problem stored by the grading run is still in the report after a plain export.
    assert "no notebook (.ipynb) submitted" in (course / "report.html").read_text(encoding="utf-8")


def result(student_id, first_name, last_name, email="", points=0):
    return StudentResult(student_id, first_name, last_name, email, graded=True, cells=[CellResult("ex1_norm", points, 2)])


def test_same_name_without_student_id_is_left_out():
    roster = {
        "s1": {"student_id": "s1", "first_name": "Anna", "last_name": "Schmidt", "email": "anna1@example.org"},
        "s2": {"student_id": "s2", "first_name": "Anna", "last_name": "Schmidt", "email": "anna2@example.org"},
    }
    rows, left_out = moodle_rows([result("anna-schmidt-4711", "Anna", "Schmidt")], MoodleExport(), roster)
    assert rows == []
    assert [student.student_id for student, _ in left_out] == ["anna-schmidt-4711"]
    assert "the roster has 2 students named 'Anna Schmidt'" in left_out[0][1]


def test_shared_email_leaves_out_both():
    results = [result("a", "Anna", "Schmidt", "same@example.org"), result("b", "Bea", "Schmidt", "SAME@example.org")]
    rows, left_out = moodle_rows(results, MoodleExport(), {})
    assert rows == []
    assert sorted(student.student_id for student, _ in left_out) == ["a", "b"]
    assert "belongs to b as well" in dict((s.student_id, r) for s, r in left_out)["a"]


def test_moodle_columns_from_config(tmp_path):
    config = Config()
    config.MoodleExport.identifier = "idnumber"
    config.MoodleExport.grade_column = "Backprop"
    roster = {"x": {"student_id": "x", "first_name": "Jürgen", "last_name": "Müller", "idnumber": "0042"}}
    left_out = write_moodle_csv([result("x", "Jürgen", "Müller", points=2)], tmp_path / "m.csv", MoodleExport(config=config), roster)
    assert left_out == []
    assert (tmp_path / "m.csv").read_bytes() == "ID number,Backprop\r\n0042,2\r\n".encode("utf-8")
