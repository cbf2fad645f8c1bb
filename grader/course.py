"""An nbgrader course directory and the nbgrader API bound to it."""

import logging
import os
import shutil
import sys
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde, GenerateAssignment, GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.utils import capture_log, temp_attrs
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from grader import ASSIGNMENT, REPOSITORY, SOURCE_DIRECTORY
from grader.repair import METADATA_KEY

log = logging.getLogger(__name__)

CONFIG_FILE = "nbgrader_config.py"


class GradingError(Exception):
    """An nbgrader step failed; the message names the step and what to do next."""


def absolute_db_url(db_url):
    """Make a relative SQLite path absolute against the working directory, where the user meant it.

    nbgrader would otherwise resolve it against the course directory, and this process
    against the working directory, and the two would write different gradebooks.
    """
    prefix = "sqlite:///"
    if db_url and db_url.startswith(prefix) and not db_url[len(prefix):].startswith("/"):
        return prefix + str(Path(db_url[len(prefix):]).resolve())
    return db_url


def load_config(root, db_url=None):
    """Load the repository's nbgrader_config.py and point it at the course root `root`."""
    config = Config()
    config.merge(PyFileConfigLoader(CONFIG_FILE, path=str(REPOSITORY)).load_config())
    config.CourseDirectory.root = str(root)
    if db_url:
        config.CourseDirectory.db_url = db_url
    return config


def prepare_environment():
    """Put this interpreter's bin folder first on PATH, where nbgrader looks for `alembic`.

    nbgrader runs the `alembic` command to set up a gradebook. The kernels' PYTHONPATH
    is set by nbgrader_config.py, which load_config runs.
    """
    bin_directory = str(Path(sys.executable).parent)
    paths = os.environ.get("PATH", "").split(os.pathsep)
    if bin_directory not in paths:
        os.environ["PATH"] = os.pathsep.join([bin_directory] + paths)


class Course:
    """A course directory with source/, release/ and nbgrader's gradebook.

    When the directory is not the repository itself, the repository's source folder
    and nbgrader_config.py are copied into it first, so the repository is never written.
    The nbgrader steps run in this process, as nbgrader's own NbGraderAPI runs them,
    but without its exchange, which this course does not use.
    """

    def __init__(self, root, db_url=None):
        db_url = absolute_db_url(db_url)
        self.root = Path(root).resolve()
        self.config = load_config(self.root, db_url)
        self.coursedir = CourseDirectory(config=self.config)
        self.db_url = self.coursedir.db_url
        self.requested_db_url = db_url

    @property
    def is_repository(self):
        return self.root == REPOSITORY

    def open(self):
        """Create the course folders if needed and start nbgrader's API on them."""
        prepare_environment()
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.is_repository:
            self._copy_source()
            self._write_config()
        log.debug("Course directory %s, gradebook %s", self.root, self.db_url)
        return self

    def _copy_source(self):
        """Copy source/backprop/ with its linked files resolved."""
        target = self.root / "source" / ASSIGNMENT
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(SOURCE_DIRECTORY, target, symlinks=False)

    def _write_config(self):
        """Write an nbgrader_config.py that loads the repository's, so plain nbgrader commands work here too."""
        lines = [
            "# Written by python -m grader: the settings of the course repository, and this",
            "# course directory's gradebook if it is not the default.",
            "c = get_config()  # noqa: F821",
            f"load_subconfig({str(REPOSITORY / CONFIG_FILE)!r})  # noqa: F821",
        ]
        if self.requested_db_url:
            lines.append(f"c.CourseDirectory.db_url = {self.requested_db_url!r}")
        (self.root / CONFIG_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")

    def gradebook(self):
        """Open nbgrader's gradebook; use it as a context manager."""
        return Gradebook(self.db_url, self.config.CourseDirectory.course_id)

    def existing_gradebook(self):
        """Open the gradebook only if it exists, so that a wrong path does not create an empty one.

        Raises:
            GradingError: if the gradebook is an SQLite file that does not exist.
        """
        prefix = "sqlite:///"
        if self.db_url.startswith(prefix) and not Path(self.db_url[len(prefix):]).is_file():
            raise GradingError(
                f"no gradebook at {self.db_url[len(prefix):]}; give the course directory that was "
                "graded (--course-dir) and the gradebook URL it was graded with (--db)"
            )
        return self.gradebook()

    @property
    def release_directory(self):
        return self.root / "release" / ASSIGNMENT

    @property
    def submitted_directory(self):
        return self.root / "submitted"

    @property
    def feedback_directory(self):
        return self.root / "feedback"

    def run_nbgrader(self, app_class, student_id=None, **settings):
        """Run one nbgrader converter on the assignment and return capture_log's result.

        The result is a dict with "success" and, where nbgrader gave them, "log" and "error".
        """
        attributes = {"assignment_id": ASSIGNMENT}
        if student_id is not None:
            attributes["student_id"] = student_id
        with temp_attrs(self.coursedir, **attributes):
            app = app_class(coursedir=self.coursedir, config=self.config)
            for name, value in settings.items():
                setattr(app, name, value)
            return capture_log(app)

    def use_forked_kernels(self):
        """Start the sandboxed kernels of later autograde calls as forks of a pre-imported server (grader.forkserver)."""
        self.config.SandboxKernelManager.fork_kernels = True
        return self

    def autograde(self, student_id):
        """Run nbgrader autograde --force for one student; see run_nbgrader for the result."""
        return self.run_nbgrader(Autograde, student_id, force=True, create_student=True)

    def generate_feedback(self, student_id):
        """Run nbgrader generate_feedback --force for one student; see run_nbgrader for the result."""
        return self.run_nbgrader(GenerateFeedback, student_id, force=True)

    def autograded_notebook(self, student_id):
        return self.root / "autograded" / student_id / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"

    def grading_events(self, student_id):
        """Return what RepairNotebook repaired in the student's notebook and what GradingExecute saw running it."""
        path = self.autograded_notebook(student_id)
        try:
            notebook = nbformat.read(path, as_version=4)
        except (OSError, ValueError) as error:
            log.warning("Student %s: cannot read %s for its grading events: %s", student_id, path, error)
            return []
        recorded = notebook.metadata.get(METADATA_KEY, {})
        return [f"repaired: {note}" for note in recorded.get("repairs", [])] + list(recorded.get("events", []))

    def discard_results(self, student_id):
        """Remove a student's earlier grades and feedback, so that grades.csv gives 0 points.

        Used when the student's new submission cannot be graded, which must not leave an
        older score in place.
        """
        with self.gradebook() as gradebook:
            try:
                gradebook.remove_submission(ASSIGNMENT, student_id)
                log.info("Removed the earlier grades of %s", student_id)
            except MissingEntry:
                pass
        for folder in (self.root / "autograded", self.feedback_directory):
            if (folder / student_id / ASSIGNMENT).exists():
                shutil.rmtree(folder / student_id / ASSIGNMENT)

    def generate_release(self):
        """Run nbgrader generate_assignment, which also records the assignment's cells in the gradebook.

        Raises:
            GradingError: if nbgrader fails, with its log.
        """
        result = self.run_nbgrader(GenerateAssignment, force=True, create_assignment=True)
        if not result["success"]:
            raise GradingError(
                f"nbgrader generate_assignment failed for {SOURCE_DIRECTORY / 'backprop.ipynb'}. "
                f"Fix the source notebook; nbgrader said:\n{result.get('log', '')}{result.get('error', '')}"
            )
        log.info("Generated the release in %s", self.release_directory)
        return self.release_directory
