"""`nbgrader validate`, as students and instructors run it, on the source and the release."""

import subprocess
import sys

from conftest import REPOSITORY, nbgrader_environment


def validate(notebook):
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", "validate", str(notebook)],
        cwd=notebook.parent,
        env=nbgrader_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_source_passes_all_tests():
    process = validate(REPOSITORY / "source" / "backprop" / "backprop.ipynb")
    assert process.returncode == 0, process.stderr
    assert "Success! Your notebook passes all the tests." in process.stdout


def test_unanswered_release_fails_every_test_cell():
    process = validate(REPOSITORY / "release" / "backprop" / "backprop.ipynb")
    assert process.returncode == 0, process.stderr
    assert "Success!" not in process.stdout
    # nbgrader lists each failing cell; all 15 test cells fail on NotImplementedError.
    assert process.stdout.count("The following cell failed:") == 15, process.stdout
    assert process.stdout.count("NotImplementedError") >= 15
    assert "Traceback" not in process.stderr
