"""An nbgrader course directory and the nbgrader API bound to it."""

import logging
import os
import shutil
import sys
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.converters import Autograde, GenerateAssignment, GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.utils import capture_log, temp_attrs
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from grader import ASSIGNMENT, KERNEL_PATH, REPOSITORY, SOURCE_DIRECTORY

log = logging.getLogger(__name__)

CONFIG_FILE = "nbgrader_config.py"


class GradingError(Exception):
    """An nbgrader step failed; the message names the step and what to do next."""


def load_config(root, db_url=None):
    """Load the repository's nbgrader_config.py and point it at the course root `root`."""
    config = Config()
    config.merge(PyFileConfigLoader(CONFIG_FILE, path=str(REPOSITORY)).load_config())
    config.CourseDirectory.root = str(root)
    if db_url:
        config.CourseDirectory.db_url = db_url
    return config


def prepare_environment():
    """Set the environment that nbgrader and its kernels inherit.

    nbgrader runs the `alembic` command of its own environment to set up a gradebook,
    so this interpreter's bin folder goes first on PATH. The grading kernels need the
    hidden tests' library on PYTHONPATH.
    """
    bin_directory = str(Path(sys.executable).parent)
    paths = os.environ.get("PATH", "").split(os.pathsep)
    if bin_directory not in paths:
        os.environ["PATH"] = os.pathsep.join([bin_directory] + paths)

    python_paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(KERNEL_PATH) not in python_paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(KERNEL_PATH)] + python_paths)


class Course:
    """A course directory with source/, release/ and nbgrader's gradebook.

    When the directory is not the repository itself, the repository's source folder
    and nbgrader_config.py are copied into it first, so the repository is never written.
    The nbgrader steps run in this process, as nbgrader's own NbGraderAPI runs them,
    but without its exchange, which this course does not use.
    """

    def __init__(self, root, db_url=None):
        self.root = Path(root).resolve()
        self.config = load_config(self.root, db_url)
        self.coursedir = None  # set by open()
        self.db_url = None

    @property
    def is_repository(self):
        return self.root == REPOSITORY

    def open(self):
        """Create the course folders if needed and start nbgrader's API on them."""
        prepare_environment()
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.is_repository:
            self._copy_source()
        self.coursedir = CourseDirectory(config=self.config)
        self.db_url = self.coursedir.db_url
        log.debug("Course directory %s, gradebook %s", self.root, self.db_url)
        return self

    def _copy_source(self):
        """Copy source/backprop/ with its linked files resolved, and the nbgrader config."""
        target = self.root / "source" / ASSIGNMENT
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(SOURCE_DIRECTORY, target, symlinks=False)
        shutil.copy(REPOSITORY / CONFIG_FILE, self.root / CONFIG_FILE)

    def gradebook(self):
        """Open nbgrader's gradebook; use it as a context manager."""
        return Gradebook(self.db_url, self.config.CourseDirectory.course_id)

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

    def autograde(self, student_id):
        """Run nbgrader autograde --force for one student; see run_nbgrader for the result."""
        return self.run_nbgrader(Autograde, student_id, force=True, create_student=True)

    def generate_feedback(self, student_id):
        """Run nbgrader generate_feedback --force for one student; see run_nbgrader for the result."""
        return self.run_nbgrader(GenerateFeedback, student_id, force=True)

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
