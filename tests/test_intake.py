"""Taking in submissions: nbgrader's layout, Moodle exports, odd names and broken input."""

import shutil
import unicodedata
import zipfile

import nbformat

import pytest

from conftest import SAMPLES
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


def test_student_id_falls_back_without_letters():
    assert intake.student_id_for("---") == "unnamed"


def test_split_name_keeps_multiple_first_names():
    assert intake.split_name("Anna Lena Schmidt") == ("Anna Lena", "Schmidt")
    assert intake.split_name("Madonna") == ("", "Madonna")


def test_split_name_reads_last_comma_first():
    assert intake.split_name("Müller, Jürgen") == ("Jürgen", "Müller")


def test_moodle_folder_gives_one_submission_per_participant(tmp_path):
    submissions, _ = intake.collect(moodle_folder(tmp_path))
    students = by_id(submissions)
    assert set(students) == {"juergen-mueller-4711", "sean-o-brien-4712", "anna-lena-schmidt-4713"}
    assert (students["juergen-mueller-4711"].first_name, students["juergen-mueller-4711"].last_name) == ("Jürgen", "Müller")
    assert students["sean-o-brien-4712"].notebook.name.endswith("backprop (1).ipynb")
    assert students["sean-o-brien-4712"].problem == ""


def test_moodle_folder_without_notebook_is_reported(tmp_path):
    students = by_id(intake.collect(moodle_folder(tmp_path))[0])
    assert students["anna-lena-schmidt-4713"].problem == "no notebook (.ipynb) submitted; it sent notes.txt"


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


def test_names_with_same_id_are_not_guessed(tmp_path):
    shutil.copy(NOTEBOOK, tmp_path / "Anna Schmidt.ipynb")
    shutil.copy(WRONG_NOTEBOOK, tmp_path / "anna schmidt.ipynb")
    (student,) = intake.collect(tmp_path)[0]
    assert student.student_id == "anna-schmidt"
    assert student.problem.startswith("the names 'Anna Schmidt' and 'anna schmidt' give the same student id")


def test_decomposed_names_give_composed_ids(tmp_path):
    decomposed = unicodedata.normalize("NFD", "Jürgen Müller")
    shutil.copy(NOTEBOOK, tmp_path / f"{decomposed}_4711_assignsubmission_file_backprop.ipynb")
    (student,) = intake.collect(tmp_path)[0]
    assert student.student_id == "juergen-mueller-4711"
    assert student.first_name == "Jürgen"


def test_very_long_name_gives_short_id(tmp_path):
    shutil.copy(NOTEBOOK, tmp_path / f"{'欧阳龙飞凤舞' * 11}_131_assignsubmission_file_backprop.ipynb")
    (student,) = intake.collect(tmp_path)[0]
    assert len(student.student_id) <= intake.MAX_ID_LENGTH + len("-131")
    assert student.student_id.endswith("-131")


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
    assert student.problem == "2 notebooks submitted (draft.ipynb, final.ipynb) and none is named backprop.ipynb"


def test_two_notebooks_named_backprop_are_reported(tmp_path):
    folder = tmp_path / "Tom Smith_4721_assignsubmission_file_"
    (folder / "old").mkdir(parents=True)
    shutil.copy(NOTEBOOK, folder / "backprop.ipynb")
    shutil.copy(NOTEBOOK, folder / "old" / "backprop.ipynb")
    (student,) = intake.collect(tmp_path)[0]
    assert student.problem.startswith("2 notebooks named backprop.ipynb submitted")


def test_exact_name_wins_among_flat_files(tmp_path):
    shutil.copy(NOTEBOOK, tmp_path / "Lena Groß_4717_assignsubmission_file_backprop.ipynb")
    shutil.copy(WRONG_NOTEBOOK, tmp_path / "Lena Groß_4717_assignsubmission_file_backprop (1).ipynb")
    (student,) = intake.collect(tmp_path)[0]
    assert student.student_id == "lena-gross-4717"
    assert student.problem == ""
    assert student.notebook.name == "Lena Groß_4717_assignsubmission_file_backprop.ipynb"
    assert student.notes == ["2 notebooks submitted (backprop (1).ipynb, backprop.ipynb); graded backprop.ipynb"]


def test_notebook_of_other_homework_gets_note(tmp_path):
    other = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("theta = 0")])
    nbformat.write(other, tmp_path / "Wrong Homework_114_assignsubmission_file_linreg.ipynb")
    (student,) = intake.collect(tmp_path)[0]
    assert student.problem == ""
    assert "has none of this homework's answer cells" in student.notes[0]


def test_mixed_layouts_in_one_export(tmp_path):
    nested = tmp_path / "Kim Lee_4730_assignsubmission_file_" / "backprop"
    nested.mkdir(parents=True)
    shutil.copy(NOTEBOOK, nested / "backprop.ipynb")
    shutil.copy(NOTEBOOK, tmp_path / "Jürgen Müller_4711_assignsubmission_file_backprop.ipynb")
    (tmp_path / "alex" / "backprop").mkdir(parents=True)
    shutil.copy(NOTEBOOK, tmp_path / "alex" / "backprop" / "backprop.ipynb")
    students = by_id(intake.collect(tmp_path)[0])
    assert set(students) == {"kim-lee-4730", "juergen-mueller-4711", "alex"}
    assert all(s.problem == "" for s in students.values())


def test_participant_without_notebook_is_listed(tmp_path):
    (tmp_path / "Ola Nordmann_4731_assignsubmission_file_backprop.zip").write_bytes(b"PK")
    (tmp_path / "Per Hansen_4732_assignsubmission_onlinetext_onlinetext.html").write_text("<p>done</p>")
    students = by_id(intake.collect(tmp_path)[0])
    assert students["ola-nordmann-4731"].problem == "no notebook (.ipynb) submitted; it sent backprop.zip"
    assert students["per-hansen-4732"].problem == "no notebook (.ipynb) submitted; it sent a Moodle onlinetext submission"


def test_upper_case_suffix_is_a_notebook(tmp_path):
    shutil.copy(NOTEBOOK, tmp_path / "Per Hansen_4732_assignsubmission_file_backprop.IPYNB")
    (student,) = intake.collect(tmp_path)[0]
    assert student.problem == ""


def test_invalid_json_notebook_is_reported(tmp_path):
    (tmp_path / "Per Hansen_4732_assignsubmission_file_backprop.ipynb").write_text('{"cells": [')
    (student,) = intake.collect(tmp_path)[0]
    assert "is not a readable notebook (NotJSONError" in student.problem


def test_macos_metadata_is_ignored(tmp_path):
    shutil.copy(NOTEBOOK, tmp_path / "Jürgen Müller_4711_assignsubmission_file_backprop.ipynb")
    (tmp_path / "__MACOSX").mkdir()
    shutil.copy(NOTEBOOK, tmp_path / "__MACOSX" / "._backprop.ipynb")
    assert set(by_id(intake.collect(tmp_path)[0])) == {"juergen-mueller-4711"}


def test_comma_name_keeps_one_student(tmp_path):
    folder = tmp_path / "Müller, Jürgen_4722_assignsubmission_file_"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder / "backprop.ipynb")
    (tmp_path / "Müller, Jürgen_4722_assignsubmission_onlinetext_onlinetext.html").write_text("x")
    (student,) = intake.collect(tmp_path)[0]
    assert (student.student_id, student.first_name, student.last_name) == ("mueller-juergen-4722", "Jürgen", "Müller")
    assert student.problem == ""


def test_name_without_letters_does_not_stop_batch(tmp_path):
    shutil.copy(NOTEBOOK, tmp_path / "---.ipynb")
    shutil.copy(NOTEBOOK, tmp_path / "Zoë.ipynb")
    assert set(by_id(intake.collect(tmp_path)[0])) == {"unnamed", "zoe"}


def test_unzipped_folder_with_wrapper(tmp_path):
    wrapper = tmp_path / "outer" / "ML1 Backprop Abgaben"
    shutil.copytree(moodle_folder(tmp_path), wrapper)
    assert len(intake.collect(tmp_path / "outer")[0]) == 3


def test_single_notebook_input_is_explained(tmp_path):
    with pytest.raises(intake.IntakeError, match="is a single notebook; put it in a folder named after the student"):
        intake.collect(NOTEBOOK)


def test_roster_from_spreadsheet(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("\ufeffstudent_id;first_name;last_name;email\nalex;Alex;Smith, Jr.;alex@example.org\n", encoding="utf-8")
    assert intake.read_roster(roster)["alex"]["last_name"] == "Smith, Jr."


def test_roster_without_student_id_is_explained(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\nalex,Alex\n", encoding="utf-8")
    with pytest.raises(intake.IntakeError, match="needs student_id"):
        intake.read_roster(roster)


def test_missing_roster_is_explained(tmp_path):
    with pytest.raises(intake.IntakeError, match="cannot read the roster"):
        intake.read_roster(tmp_path / "missing.csv")


def test_nbgrader_layout_uses_roster_names(tmp_path):
    submissions, _ = intake.collect(SAMPLES / "submitted", SAMPLES / "students.csv")
    students = by_id(submissions)
    assert len(students) == 12
    assert (students["numpy-detour"].first_name, students["numpy-detour"].last_name) == ("Kai", "Weiß")
    assert all(s.problem == "" for s in submissions)
