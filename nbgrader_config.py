"""nbgrader settings of the course "Error Backpropagation".

nbgrader reads this file from the course directory, the folder that holds source/ and
release/. The grading pipeline (python -m grader) loads it too, and overrides only the
course root and, when given --db, the gradebook URL.
"""

c = get_config()  # noqa: F821 (nbgrader defines get_config when it loads this file)

c.CourseDirectory.course_id = "ml1-backprop"

# The gradebook; nbgrader's default is an SQLite file in the course directory. Any
# SQLAlchemy URL works here, for example "postgresql://grader@localhost/backprop".
# c.CourseDirectory.db_url = "sqlite:///gradebook.db"

# Files in source/backprop/ that must never reach students. nbgrader copies every
# other file of the source folder into the release and into each graded submission.
# solution.py is the reference answer; backprop_checks.py and the two modules it imports
# are the hidden tests' library.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    "solution.py",
    "backprop_checks.py",
    "backprop_integrity.py",
    "backprop_mistakes.py",
]

# Each cell of a submission may run this many seconds during autograding. An honest
# answer runs in well under a second; importing torch in the first cells takes about two.
# The tests set BACKPROP_CELL_TIMEOUT and the other variables below to lower limits, so
# that their hostile submissions take less time.
import os  # noqa: E402

c.Execute.timeout = int(os.environ.get("BACKPROP_CELL_TIMEOUT", 30))

# Every kernel nbgrader starts imports the hidden tests' library before the first cell
# runs, so that the library records the original numpy, torch and builtins functions
# before student code can replace them (grader/kernel/backprop_integrity.py).
c.Execute.extra_arguments = ["--IPKernelApp.exec_lines=import backprop_checks"]

# The hidden tests import backprop_checks from grader/kernel/, so every kernel that
# nbgrader starts from this configuration (autograde, validate, formgrader) gets that
# folder on its PYTHONPATH. It holds only that library, so `import solution` fails there.
# In the sandbox below, the kernel sees only this folder of the repository.
from pathlib import Path  # noqa: E402

_kernel_path = str(Path(__file__).resolve().parent / "grader" / "kernel")
if _kernel_path not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_kernel_path, os.environ.get("PYTHONPATH")) if p)

# This repository goes on sys.path, so that plain nbgrader commands in another course
# directory find the grader package's preprocessors below too.
import sys  # noqa: E402

_repository = str(Path(__file__).resolve().parent)
if _repository not in sys.path:
    sys.path.insert(0, _repository)

from grader.execute import GradingExecute  # noqa: E402
from grader.feedback import FeedbackPreprocessor  # noqa: E402
from grader.repair import RepairNotebook  # noqa: E402
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds, GetGrades, IgnorePattern, LimitOutput,
    OverwriteCells, OverwriteKernelspec, SaveAutoGrades,
)

# Grading runs every notebook with grader.execute.GradingExecute in place of nbgrader's
# Execute: each kernel runs in grader.sandbox's sandbox (its own user id, no network, a
# file system view without the gradebook, the source and solution.py), and a kernel that
# dies or hangs costs only the cells it stopped.
# Before nbgrader's own steps, RepairNotebook puts back deleted, retyped and edited cells
# of the submission from the release notebook.
c.Autograde.sanitize_preprocessors = [
    RepairNotebook, ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata,
]

c.Autograde.autograde_preprocessors = [
    GradingExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
    AssignLatePenalties, CheckCellMetadata,
]

# Limits of each grading kernel; see the README's section on them.
c.GradingExecute.notebook_timeout = int(os.environ.get("BACKPROP_NOTEBOOK_TIMEOUT", 300))  # seconds for all cells
c.GradingExecute.max_restarts = 3  # new kernels after a kernel died or timed out
c.SandboxKernelManager.memory_limit = int(os.environ.get("BACKPROP_MEMORY_LIMIT", 4096))  # MiB of address space
c.SandboxKernelManager.process_limit = 256  # processes and threads of one kernel
c.SandboxKernelManager.file_size_limit = 64  # MiB per file written

# Feedback: nbgrader's generate_feedback would show the source of the hidden tests and
# tracebacks through backprop_checks.py. grader.feedback removes both and adds a table
# of points with the reason for each lost point.
c.GenerateFeedback.preprocessors = [GetGrades, FeedbackPreprocessor, CSSHTMLHeaderPreprocessor]

# The grade-import file for Moodle (moodle_grades.csv): which user field identifies a
# student ("email" or "idnumber") and the names of its two columns. The command line's
# --moodle-* options override these.
# c.MoodleExport.identifier = "email"
# c.MoodleExport.identifier_column = "Email address"
# c.MoodleExport.grade_column = "Error Backpropagation"
