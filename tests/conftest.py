"""Fixtures shared by the tests: the repository's paths and one real grading run of the samples."""

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
SAMPLES = REPOSITORY / "samples"


def nbgrader_environment():
    """Return os.environ with this interpreter's bin folder first on PATH, as nbgrader needs for alembic."""
    environment = dict(os.environ)
    environment["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environment.get("PATH", "")])
    return environment


def run_grader(*arguments, cwd=REPOSITORY):
    """Run `python -m grader ARGUMENTS` as a user would and return the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "grader", *arguments],
        cwd=cwd,
        env=nbgrader_environment(),
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
    return process, Path(match.group(1)), status_before, status_after
