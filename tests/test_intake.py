"""Taking in submissions: nbgrader's layout, Moodle exports, odd names and broken input."""

import csv
import shutil
import zipfile

import pytest

from conftest import SAMPLES, run_grader
from grader import intake

NOTEBOOK = SAMPLES / "submitted" / "correct-loop" / "backprop" / "backprop.ipynb"
WRONG_NOTEBOOK = SAMPLES / "submitted" / "sign-error" / "backprop" / "backprop.ipynb"


def moodle_folder(tmp_path):
    """Lay out submissions as Moodle's "Download all submissions" does, in both of its forms."""
    folder = tmp_path / "export"
    in_folder = folder / "Jürgen Müller_4711_assignsubmission_file_"
    in_folder.mkdir(parents=True)
    shutil.copy(NOTEBOOK, in_folder / "backprop.ipynb")
    shutil.copy(WRONG_NOTEBOOK, folder / "Seán O'Brien_4712_assignsubmission_file_backprop (1).ipynb")
    (folder / "Seán O'Brien_4712_assignsubmission_onlinetext_onlinetext.html").write_text("<p>see file</p>")
    empty = folder / "Anna Lena Schmidt_4713_assignsubmission_file_"
    empty.mkdir()
    (empty / "notes.txt").write_text("forgot the notebook")
    return folder


class UnflaggedZipInfo(zipfile.ZipInfo):
    """A zip entry whose UTF-8 name is stored without the UTF-8 flag, as some zip tools write it."""

    def _encodeFilenameFlags(self):  # zipfile's hook for the stored name bytes and flags
        return self.filename.encode("utf-8"), self.flag_bits & ~0x800


def zip_folder(folder, path, utf8_flag=True):
    """Zip a folder, with or without the UTF-8 flag on its non-ASCII names."""
    entry_class = zipfile.ZipInfo if utf8_flag else UnflaggedZipInfo
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.writestr(entry_class(str(file.relative_to(folder))), file.read_bytes())
    return path


def by_id(submissions):
    return {s.student_id: s for s in submissions}


def test_student_id_transliterates_german():
    assert intake.student_id_for("Jürgen Müller") == "juergen-mueller"
    assert intake.student_id_for("Kai Weiß") == "kai-weiss"
    assert intake.student_id_for("Seán O'Brien") == "sean-o-brien"


def test_student_id_rejects_name_without_letters():
    with pytest.raises(intake.IntakeError, match="no letters or digits"):
        intake.student_id_for("__")


def test_split_name_keeps_multiple_first_names():
    assert intake.split_name("Anna Lena Schmidt") == ("Anna Lena", "Schmidt")
    assert intake.split_name("Madonna") == ("", "Madonna")


def test_moodle_folder_gives_one_submission_per_participant(tmp_path):
    submissions, _ = intake.collect(moodle_folder(tmp_path))
    students = by_id(submissions)
    assert set(students) == {"juergen-mueller-4711", "sean-o-brien-4712", "anna-lena-schmidt-4713"}
    assert (students["juergen-mueller-4711"].first_name, students["juergen-mueller-4711"].last_name) == ("Jürgen", "Müller")
    assert students["sean-o-brien-4712"].notebook.name.endswith("backprop (1).ipynb")
    assert students["sean-o-brien-4712"].problem == ""


def test_moodle_folder_without_notebook_is_reported(tmp_path):
    students = by_id(intake.collect(moodle_folder(tmp_path))[0])
    assert "no notebook (.ipynb) found" in students["anna-lena-schmidt-4713"].problem
    assert "Anna Lena Schmidt_4713" in students["anna-lena-schmidt-4713"].problem


@pytest.mark.parametrize("utf8_flag", [True, False])
def test_moodle_zip_keeps_umlauts(tmp_path, utf8_flag):
    archive = zip_folder(moodle_folder(tmp_path), tmp_path / "export.zip", utf8_flag)
    submissions, scratch = intake.collect(archive)
    try:
        assert "juergen-mueller-4711" in by_id(submissions)
        assert by_id(submissions)["juergen-mueller-4711"].first_name == "Jürgen"
    finally:
        scratch.cleanup()


def test_zip_with_wrapping_folder(tmp_path):
    folder = moodle_folder(tmp_path)
    wrapper = tmp_path / "wrapped" / "ML1 Backprop-Submissions"
    shutil.copytree(folder, wrapper)
    archive = zip_folder(tmp_path / "wrapped", tmp_path / "wrapped.zip")
    submissions, scratch = intake.collect(archive)
    scratch.cleanup()
    assert len(submissions) == 3


def test_invalid_zip_names_the_file(tmp_path):
    broken = tmp_path / "export.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(intake.IntakeError, match="export.zip is not a valid zip file"):
        intake.collect(broken)


def test_missing_source_is_reported(tmp_path):
    with pytest.raises(intake.IntakeError, match="not found"):
        intake.collect(tmp_path / "nowhere")


def test_empty_folder_is_reported(tmp_path):
    with pytest.raises(intake.IntakeError, match="no submissions found"):
        intake.collect(tmp_path)


def test_folders_named_after_students(tmp_path):
    for name in ("Zoë Ødegård", "Zoë Ødegård (2)"):
        (tmp_path / name).mkdir()
        shutil.copy(NOTEBOOK, tmp_path / name / "my homework.ipynb")
    students = by_id(intake.collect(tmp_path)[0])
    assert set(students) == {"zoe-odegard", "zoe-odegard-2"}


def test_duplicate_display_names_stay_apart(tmp_path):
    for participant in ("5001", "5002"):
        shutil.copy(NOTEBOOK, tmp_path / f"Max Mustermann_{participant}_assignsubmission_file_backprop.ipynb")
    assert set(by_id(intake.collect(tmp_path)[0])) == {"max-mustermann-5001", "max-mustermann-5002"}


def test_two_notebooks_without_backprop_ipynb_is_reported(tmp_path):
    folder = tmp_path / "alex" / "backprop"
    folder.mkdir(parents=True)
    shutil.copy(NOTEBOOK, folder / "draft.ipynb")
    shutil.copy(NOTEBOOK, folder / "final.ipynb")
    (student,) = intake.collect(tmp_path)[0]
    assert "2 notebooks" in student.problem
    assert "none is named backprop.ipynb" in student.problem


def test_nbgrader_layout_uses_roster_names(tmp_path):
    submissions, _ = intake.collect(SAMPLES / "submitted", SAMPLES / "students.csv")
    students = by_id(submissions)
    assert len(students) == 12
    assert (students["numpy-detour"].first_name, students["numpy-detour"].last_name) == ("Kai", "Weiß")
    assert all(s.problem == "" for s in submissions)


def test_pipeline_grades_moodle_zip(tmp_path):
    archive = zip_folder(moodle_folder(tmp_path), tmp_path / "export.zip")
    process = run_grader("grade", str(archive), "--course-dir", str(tmp_path / "course"))

    # One participant sent no notebook, so the run reports a failure after grading the others.
    assert process.returncode == 1, process.stdout + process.stderr
    assert "1 of 3 submissions could not be graded: anna-lena-schmidt-4713" in " ".join(process.stderr.split())
    with open(tmp_path / "course" / "grades.csv", newline="", encoding="utf-8") as file:
        rows = {row["student_id"]: row for row in csv.DictReader(file)}
    assert float(rows["juergen-mueller-4711"]["score"]) == 30.0
    assert rows["juergen-mueller-4711"]["first_name"] == "Jürgen"
    assert float(rows["sean-o-brien-4712"]["score"]) == 12.0
    assert rows["sean-o-brien-4712"]["last_name"] == "O'Brien"
    assert float(rows["anna-lena-schmidt-4713"]["score"]) == 0.0
    assert (tmp_path / "course" / "feedback" / "juergen-mueller-4711" / "backprop" / "backprop.html").is_file()
