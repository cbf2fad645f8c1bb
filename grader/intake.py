"""Take in submissions from a folder or a zip file and lay them out as nbgrader expects.

Accepted layouts, as a folder or as a zip file of it:

- nbgrader's own: ``<student_id>/backprop/backprop.ipynb`` for each student;
- Moodle's "Download all submissions": one file per student named
  ``<Full Name>_<participant id>_assignsubmission_file_<file name>``, or one folder per
  student named ``<Full Name>_<participant id>_assignsubmission_file_`` (the option
  "Download submissions in folders");
- any other folder or notebook per student, named after the student.

Each submission ends up as ``submitted/<student_id>/backprop/backprop.ipynb`` in the
course directory, where student ids are ASCII slugs of the names, so that paths and the
gradebook never depend on the file system's handling of spaces and umlauts.
"""

import csv
import logging
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from slugify import slugify

from grader import ASSIGNMENT

log = logging.getLogger(__name__)

NOTEBOOK = f"{ASSIGNMENT}.ipynb"

# "Jürgen Müller_4711_assignsubmission_file_" or "..._assignsubmission_file_backprop.ipynb"
MOODLE_NAME = re.compile(r"^(?P<name>.+?)_(?P<participant_id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_?(?P<file>.*)$")

# German transliterations, so that "Müller" becomes "mueller" and not "muller".
TRANSLITERATIONS = [("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("Ä", "Ae"), ("Ö", "Oe"), ("Ü", "Ue"), ("ß", "ss")]


class IntakeError(Exception):
    """The submissions could not be read at all; the message names the path."""


@dataclass
class Submission:
    """One student's submission, before it is copied into the course directory."""

    student_id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    notebook: Path = None
    problem: str = ""
    """The reason the submission cannot be graded; empty when it can."""

    @property
    def display_name(self):
        return f"{self.first_name} {self.last_name}".strip() or self.student_id


def student_id_for(name):
    """Return an ASCII student id for a display name, e.g. "Jürgen Müller" -> "juergen-mueller"."""
    student_id = slugify(name, replacements=TRANSLITERATIONS)
    if not student_id:
        raise IntakeError(f"cannot make a student id from the name {name!r}: it has no letters or digits")
    return student_id


def split_name(name):
    """Split a display name into (first name, last name) at its last space."""
    first, _, last = name.strip().rpartition(" ")
    return (first, last) if first else ("", last)


def read_roster(path):
    """Read a CSV roster with columns student_id, first_name, last_name and email (optional)."""
    roster = {}
    with open(path, newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            roster[row["student_id"]] = row
    return roster


def find_notebook(folder, student):
    """Return the notebook of a student's folder: backprop.ipynb, or the only notebook there."""
    exact = list(folder.rglob(NOTEBOOK))
    if len(exact) == 1:
        return exact[0]
    notebooks = [p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    if len(notebooks) == 1:
        log.warning("Student %s: took %s as the submission, because it is the only notebook", student, notebooks[0])
        return notebooks[0]
    if not notebooks:
        raise IntakeError(f"no notebook (.ipynb) found in the folder {folder.name!r}")
    names = ", ".join(str(p.relative_to(folder)) for p in notebooks)
    raise IntakeError(f"{len(notebooks)} notebooks in the folder {folder.name!r} ({names}), and none is named {NOTEBOOK}")


def is_nbgrader_layout(folder):
    """Tell whether a folder contains <student_id>/backprop/ subfolders."""
    return any((child / ASSIGNMENT).is_dir() for child in folder.iterdir() if child.is_dir())


def collect_nbgrader_layout(folder, roster):
    """Collect submissions laid out as nbgrader's submitted/<student_id>/backprop/."""
    submissions = []
    for child in sorted(p for p in folder.iterdir() if p.is_dir()):
        entry = roster.get(child.name, {})
        submission = Submission(
            child.name, entry.get("first_name", ""), entry.get("last_name", ""), entry.get("email", "")
        )
        try:
            submission.notebook = find_notebook(child / ASSIGNMENT, child.name)
        except IntakeError as error:
            submission.problem = str(error)
        submissions.append(submission)
    return submissions


def collect_per_student_entries(folder):
    """Collect one submission per top-level file or folder, named as Moodle names them or by the student's name."""
    by_student = {}
    for entry in sorted(folder.iterdir()):
        match = MOODLE_NAME.match(entry.name)
        if match:
            name = match["name"]
            student_id = f"{student_id_for(name)}-{match['participant_id']}"
            if match["plugin"] != "file":
                log.info("Skipped %s: Moodle's %s submissions are not graded", entry.name, match["plugin"])
                continue
        elif entry.is_dir() or entry.suffix == ".ipynb":
            name = entry.name if entry.is_dir() else entry.stem
            student_id = student_id_for(name)
        else:
            log.info("Skipped %s: neither a folder nor a notebook", entry)
            continue

        if entry.is_file() and entry.suffix != ".ipynb":
            log.info("Skipped %s: not a notebook", entry)
            continue
        if student_id in by_student and by_student[student_id].display_name != name:
            # Two students whose names give the same id, and no participant ids to tell them apart.
            student_id = unique_id(student_id, by_student)
        first, last = split_name(name)
        submission = by_student.setdefault(student_id, Submission(student_id, first, last))
        if submission.notebook is not None and entry.is_file():
            submission.problem = f"more than one notebook submitted: {submission.notebook.name} and {entry.name}"
            continue
        try:
            submission.notebook = find_notebook(entry, name) if entry.is_dir() else entry
        except IntakeError as error:
            submission.problem = str(error)
    return list(by_student.values())


def unique_id(student_id, existing_ids):
    """Append -2, -3, ... to a student id until it is not in `existing_ids`."""
    number = 2
    while f"{student_id}-{number}" in existing_ids:
        number += 1
    return f"{student_id}-{number}"


def extract_zip(path, target):
    """Extract a zip file, decoding UTF-8 names that were stored without the UTF-8 flag."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise IntakeError(f"{path} is not a valid zip file ({error}); export the submissions again") from error
    with archive:
        for info in archive.infolist():
            if not info.flag_bits & 0x800:
                try:
                    info.filename = info.filename.encode("cp437").decode("utf-8")
                except UnicodeError:
                    pass  # a cp437 name after all: keep it as zipfile decoded it
            archive.extract(info, target)


def unwrap_single_folder(folder):
    """Descend into a folder that only wraps one other folder, as many zip tools add."""
    children = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    while len(children) == 1 and children[0].is_dir() and not is_student_entry(children[0]):
        folder = children[0]
        children = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    return folder


def is_student_entry(path):
    """Tell whether a folder is itself one student's submission, not a wrapper around several."""
    return bool(MOODLE_NAME.match(path.name)) or (path / ASSIGNMENT).is_dir() or (path / NOTEBOOK).is_file()


def collect(source, roster_path=None):
    """Read the submissions of a folder or zip file.

    Returns:
        (submissions, scratch): the submissions and a TemporaryDirectory that contains an
        extracted zip (or None); keep it until the notebooks are copied.

    Raises:
        IntakeError: if `source` does not exist or contains no submission at all.
    """
    source = Path(source)
    if not source.exists():
        raise IntakeError(f"{source} not found; give a folder or a zip file of submissions")

    scratch = None
    folder = source
    if source.is_file():
        scratch = tempfile.TemporaryDirectory(prefix="backprop-intake-")
        extract_zip(source, scratch.name)
        folder = unwrap_single_folder(Path(scratch.name))

    roster = read_roster(roster_path) if roster_path else {}
    if is_nbgrader_layout(folder):
        submissions = collect_nbgrader_layout(folder, roster)
    else:
        submissions = collect_per_student_entries(folder)
    if not submissions:
        raise IntakeError(f"no submissions found in {source}; expected one folder or notebook per student")
    log.info("Found %d submissions in %s", len(submissions), source)
    return submissions, scratch


def place(submissions, submitted_directory):
    """Copy each gradable notebook to submitted/<student_id>/backprop/backprop.ipynb."""
    for submission in submissions:
        if submission.problem:
            log.error("Student %s (%s): %s", submission.student_id, submission.display_name, submission.problem)
            continue
        target = Path(submitted_directory) / submission.student_id / ASSIGNMENT
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        shutil.copy(submission.notebook, target / NOTEBOOK)
        log.debug("Copied %s -> %s", submission.notebook, target / NOTEBOOK)
