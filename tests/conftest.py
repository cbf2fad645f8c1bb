"""Fixtures shared by the tests: the repository's paths and one real grading run of the samples."""

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
SAMPLES = REPOSITORY / "samples"

# nbgrader runs the `alembic` command of its environment when it creates a gradebook,
# also when a test opens one in this process.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def nbgrader_environment():
    """Return the environment for nbgrader subprocesses: os.environ, with PATH set above."""
    return dict(os.environ)


def run_grader(*arguments, cwd=REPOSITORY, env=None):
    """Run `python -m grader ARGUMENTS` as a user would and return the finished process.

    `env` adds variables to the environment, for example a wide COLUMNS for the summary.
    """
    return subprocess.run(
        [sys.executable, "-m", "grader", *arguments],
        cwd=cwd,
        env={**nbgrader_environment(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=1800,
    )


def read_expected_points():
    """Read samples/expected_points.csv as {student_id: {grade cell id or 'total': points}}."""
    with open(SAMPLES / "expected_points.csv", newline="", encoding="utf-8") as file:
        return {row.pop("student_id"): {cell: float(points) for cell, points in row.items()} for row in csv.DictReader(file)}


def git_status():
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPOSITORY, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="session")
def expected_points():
    return read_expected_points()


@pytest.fixture(scope="session")
def sample_run():
    """Run the README's main job, `python -m grader` with no arguments, once for all tests.

    Returns the finished process, the scratch course directory it reported, and the
    repository's git status before and after the run.
    """
    status_before = git_status()
    process = run_grader()
    status_after = git_status()
    match = re.search(r"^course directory: +(\S+)$", process.stdout, re.MULTILINE)
    assert match, f"the pipeline did not report its course directory:\n{process.stdout}\n{process.stderr}"
    course_dir = Path(match.group(1))
    yield process, course_dir, status_before, status_after
    shutil.rmtree(course_dir, ignore_errors=True)
