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
c.Execute.timeout = 60

# Every kernel nbgrader starts imports the hidden tests' library before the first cell
# runs, so that the library records the original numpy, torch and builtins functions
# before student code can replace them (grader/kernel/backprop_integrity.py).
c.Execute.extra_arguments = ["--IPKernelApp.exec_lines=import backprop_checks"]

# The hidden tests import backprop_checks from grader/kernel/, so every kernel that
# nbgrader starts from this configuration (autograde, validate, formgrader) gets that
# folder on its PYTHONPATH. It holds only that library, so `import solution` fails there.
# NOTE: student code runs with the instructor's file permissions, so it can still read
# solution.py through backprop_checks.__file__ or any other path.
import os  # noqa: E402
from pathlib import Path  # noqa: E402

_kernel_path = str(Path(__file__).resolve().parent / "grader" / "kernel")
if _kernel_path not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_kernel_path, os.environ.get("PYTHONPATH")) if p)
