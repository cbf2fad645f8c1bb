"""Take in submissions from a folder or a zip file and lay them out as nbgrader expects.

Accepted layouts, as a folder or as a zip file of it:

- nbgrader's own: ``<student_id>/backprop/backprop.ipynb`` for each student;
- Moodle's "Download all submissions": one file per student named
  ``<Full Name>_<participant id>_assignsubmission_file_<file name>``, or one folder per
  student named ``<Full Name>_<participant id>_assignsubmission_file_`` (the option
  "Download submissions in folders");
- any other folder or notebook per student, named after the student.

Each top-level entry is read on its own, so one export may mix these layouts. Each
submission ends up as ``submitted/<student_id>/backprop/backprop.ipynb`` in the course
directory. Student ids are ASCII slugs of the names, so paths and the gradebook never
depend on how a file system handles spaces and umlauts. Folders in nbgrader's layout keep
their names as ids.
"""

import csv
import logging
import re
import shutil
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from slugify import slugify

from grader import ASSIGNMENT

log = logging.getLogger(__name__)

NOTEBOOK = f"{ASSIGNMENT}.ipynb"

# The answer cells of the homework, by nbgrader grade id.
ANSWER_CELLS = {"exercise1_answer", "exercise2_answer"}

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
    candidates: list = field(default_factory=list)
    """(name as submitted, path) of every notebook the student sent."""
    other_files: list = field(default_factory=list)
    """Names of the files sent that are not notebooks."""
    submitted_name: str = ""
    """The name the learning platform gave, e.g. "Müller, Jürgen"; empty for nbgrader's layout."""
    notes: list = field(default_factory=list)
    """Remarks for the grader that do not stop grading, e.g. which of several notebooks was taken."""

    @property
    def display_name(self):
        return f"{self.first_name} {self.last_name}".strip() or self.student_id


# Student ids become folder names; with a participant id appended they stay far below
# the usual limit of 255 bytes per file name.
MAX_ID_LENGTH = 60


def student_id_for(name):
    """Return an ASCII student id for a display name, e.g. "Jürgen Müller" -> "juergen-mueller".

    A name without a letter or digit gives "unnamed". Names are taken in composed
    Unicode form first, so a name a Mac stored decomposed gives the same id.
    """
    name = unicodedata.normalize("NFC", name)
    return slugify(name, replacements=TRANSLITERATIONS, max_length=MAX_ID_LENGTH) or "unnamed"


def split_name(name):
    """Split a display name into (first name, last name): "Last, First" at the comma, else at the last space."""
    name = name.strip()
    if "," in name:
        last, _, first = name.partition(",")
        return first.strip(), last.strip()
    first, _, last = name.rpartition(" ")
    return first, last


def read_roster(path):
    """Read a CSV roster with columns student_id, first_name, last_name and email (optional).

    Comma and semicolon separators and a byte order mark, as spreadsheet programs write
    them, are accepted.

    Raises:
        IntakeError: if the file is missing or has no student_id column.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeError) as error:
        raise IntakeError(f"cannot read the roster {path}: {error}") from error
    try:
        dialect = csv.Sniffer().sniff(text.partition("\n")[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    if "student_id" not in (reader.fieldnames or []):
        raise IntakeError(
            f"the roster {path} has the columns {reader.fieldnames}, but needs student_id, "
            "first_name, last_name and optionally email"
        )
    return {row["student_id"]: row for row in reader}


def is_ignored(path):
    """Tell whether a file or folder is an artefact of an operating system or of Jupyter."""
    return path.name.startswith(".") or path.name == "__MACOSX"


def notebooks_in(folder):
    """Return (name relative to `folder`, path) of every notebook below a folder."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and path.suffix.lower() == ".ipynb" and not any(is_ignored(Path(p)) for p in relative.parts):
            found.append((str(relative), path))
    return found


def choose_notebook(submission):
    """Pick the notebook to grade, or set the submission's problem when there is none, no clear one, or it is unreadable."""
    pick_notebook(submission)
    if submission.notebook is None:
        return
    try:
        notebook = nbformat.read(submission.notebook, as_version=4)
    except Exception as error:  # nbformat raises JSON, validation and Unicode errors alike
        reason = f"{type(error).__name__}: {error}"
        submission.problem = f"{submission.notebook.name} is not a readable notebook ({reason[:200]})"
        submission.notebook = None
        return
    grade_ids = {cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") for cell in notebook.cells}
    if not grade_ids & ANSWER_CELLS:
        submission.notes.append(f"{submission.notebook.name} has none of this homework's answer cells; is it the right file?")


def pick_notebook(submission):
    """Set the submission's notebook, or its problem when it sent no notebook or several."""
    candidates = submission.candidates
    if len(candidates) == 1:
        submission.notebook = candidates[0][1]
        return
    if not candidates:
        sent = f"; it sent {', '.join(submission.other_files)}" if submission.other_files else ""
        submission.problem = f"no notebook (.ipynb) submitted{sent}"
        return

    exact = [(name, path) for name, path in candidates if Path(name).name == NOTEBOOK]
    names = ", ".join(name for name, _ in candidates)
    if len(exact) == 1:
        submission.notebook = exact[0][1]
        submission.notes.append(f"{len(candidates)} notebooks submitted ({names}); graded {exact[0][0]}")
    elif exact:
        submission.problem = f"{len(exact)} notebooks named {NOTEBOOK} submitted ({names}); grade the right one by hand"
    else:
        submission.problem = f"{len(candidates)} notebooks submitted ({names}) and none is named {NOTEBOOK}"


class Collector:
    """Group the entries of a submissions folder by student, whatever layout each entry has."""

    def __init__(self, roster):
        self.roster = roster
        self.by_student = {}
        self.names_by_id = {}

    def student(self, student_id, name=None):
        """Return the submission of a student, creating it on first sight.

        Different names that give the same id are recorded, and submissions() refuses
        to guess which student is which.
        """
        if name is not None:
            name = unicodedata.normalize("NFC", name)
            self.names_by_id.setdefault(student_id, set()).add(name)
        submission = self.by_student.get(student_id)
        if submission is None:
            if name is None:
                entry = self.roster.get(student_id, {})
                if self.roster and not entry:
                    log.warning("Student %s is not in the roster, so the grades carry no name", student_id)
                first, last, email = entry.get("first_name", ""), entry.get("last_name", ""), entry.get("email", "")
            else:
                (first, last), email = split_name(name), ""
            submission = Submission(student_id, first, last, email or "", submitted_name=name or "")
            self.by_student[student_id] = submission
        return submission

    def add(self, entry):
        """Add one top-level file or folder of the submissions folder."""
        match = MOODLE_NAME.match(entry.name)
        if match:
            submission = self.student(f"{student_id_for(match['name'])}-{match['participant_id']}", match["name"])
            if match["plugin"] != "file":
                submission.other_files.append(f"a Moodle {match['plugin']} submission")
            elif entry.is_dir():
                submission.candidates += notebooks_in(entry)
                submission.other_files += [p.name for p in entry.rglob("*") if p.is_file() and p.suffix.lower() != ".ipynb"]
            elif entry.suffix.lower() == ".ipynb":
                submission.candidates.append((match["file"] or entry.name, entry))
            else:
                submission.other_files.append(match["file"] or entry.name)
        elif entry.is_dir() and (entry / ASSIGNMENT).is_dir():
            # nbgrader's layout: the folder's name is the student id.
            self.student(entry.name).candidates += notebooks_in(entry / ASSIGNMENT)
        elif entry.is_dir():
            self.student(student_id_for(entry.name), entry.name).candidates += notebooks_in(entry)
        elif entry.suffix.lower() == ".ipynb":
            self.student(student_id_for(entry.stem), entry.stem).candidates.append((entry.name, entry))
        else:
            log.info("Skipped %s: neither a folder nor a notebook", entry)

    def submissions(self):
        """Return every student's submission, each with its notebook chosen or its problem set."""
        for student_id, submission in self.by_student.items():
            names = self.names_by_id.get(student_id, set())
            if len(names) > 1:
                # A suffix such as -2 would depend on the batch, and a later batch could
                # then give one student's grade to the other.
                listed = " and ".join(repr(n) for n in sorted(names))
                submission.problem = (
                    f"the names {listed} give the same student id; rename the entries apart, "
                    "or use nbgrader's <student_id>/backprop/ layout"
                )
            else:
                choose_notebook(submission)
        return sorted(self.by_student.values(), key=lambda s: s.student_id)


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
    children = [p for p in folder.iterdir() if not is_ignored(p)]
    while len(children) == 1 and is_wrapper(children[0]):
        folder = children[0]
        children = [p for p in folder.iterdir() if not is_ignored(p)]
    return folder


def is_wrapper(path):
    """Tell whether a folder wraps several students' submissions rather than being one.

    It does when it contains Moodle's or nbgrader's per-student entries, or only folders.
    """
    if not path.is_dir() or MOODLE_NAME.match(path.name) or (path / ASSIGNMENT).is_dir():
        return False
    children = [p for p in path.iterdir() if not is_ignored(p)]
    if any(MOODLE_NAME.match(p.name) or (p / ASSIGNMENT).is_dir() for p in children):
        return True
    return bool(children) and all(p.is_dir() for p in children)


def collect(source, roster_path=None):
    """Read the submissions of a folder or zip file.

    Returns:
        (submissions, scratch): the submissions and a TemporaryDirectory that contains an
        extracted zip (or None); keep it until the notebooks are copied.

    Raises:
        IntakeError: if `source` or the roster cannot be read, or contains no submission.
    """
    source = Path(source)
    if not source.exists():
        raise IntakeError(f"{source} not found; give a folder or a zip file of submissions")
    roster = read_roster(roster_path) if roster_path else {}

    scratch = None
    folder = source
    if source.is_file():
        if source.suffix.lower() == ".ipynb":
            raise IntakeError(
                f"{source} is a single notebook; put it in a folder named after the student and give that folder's parent"
            )
        scratch = tempfile.TemporaryDirectory(prefix="backprop-intake-")
        extract_zip(source, scratch.name)
        folder = Path(scratch.name)
    folder = unwrap_single_folder(folder)

    collector = Collector(roster)
    for entry in sorted(folder.iterdir()):
        if not is_ignored(entry):
            collector.add(entry)
    submissions = collector.submissions()
    if roster and all(s.submitted_name for s in submissions):
        log.warning(
            "The roster %s gives no names here, because it names students of nbgrader's layout only; "
            "it only gives the identifiers of moodle_grades.csv",
            roster_path,
        )
    if not submissions:
        raise IntakeError(f"no submissions found in {source}; expected one folder or notebook per student")
    log.info("Found %d submissions in %s", len(submissions), source)
    return submissions, scratch


def place(submissions, submitted_directory):
    """Copy each gradable notebook to submitted/<student_id>/backprop/backprop.ipynb.

    The folder of a student whose submission has a problem is removed, so that an
    earlier submission of that student is not graded in its place. A folder that is
    itself the input (grading the course's own submitted/) is never removed.
    """
    for submission in submissions:
        target = (Path(submitted_directory) / submission.student_id / ASSIGNMENT).resolve()
        is_input = submission.notebook is not None and target in submission.notebook.resolve().parents
        if submission.problem:
            log.error("Student %s (%s): %s", submission.student_id, submission.display_name, submission.problem)
        if is_input or (submission.problem and any(target in c.resolve().parents for _, c in submission.candidates)):
            if submission.notebook is not None and submission.notebook.resolve() != target / NOTEBOOK:
                shutil.copy(submission.notebook, target / NOTEBOOK)
            continue

        if target.exists():
            shutil.rmtree(target)
        if submission.problem:
            continue
        target.mkdir(parents=True)
        shutil.copy(submission.notebook, target / NOTEBOOK)
        log.debug("Copied %s -> %s", submission.notebook, target / NOTEBOOK)
