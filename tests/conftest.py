"""Fixtures shared by the tests: the repository's paths and one real grading run of the samples."""

import csv
import os
import re
import shutil
import socket
import subprocess
import sys
import time
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


def free_port():
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


# The corpus of hostile and broken submissions in tests/corpus/. CORPUS_GROUPS=name1,name2
# grades only those modules, while working on them.
from corpus import all_cases  # noqa: E402

CORPUS_GROUPS = [group for group in os.environ.get("CORPUS_GROUPS", "").split(",") if group]
CORPUS_CASES = all_cases(CORPUS_GROUPS)
CORPUS_NEIGHBOUR = "correct-loop"
# Lower limits than nbgrader_config.py's defaults, so that hostile cases end sooner.
CORPUS_LIMITS = {"BACKPROP_CELL_TIMEOUT": "10", "BACKPROP_NOTEBOOK_TIMEOUT": "120", "BACKPROP_MEMORY_LIMIT": "2560"}


@pytest.fixture(scope="session")
def corpus_run(tmp_path_factory):
    """Grade every corpus case and the correct sample in one run, once for all tests.

    Returns the finished process, the course directory and the run's duration in seconds.
    """
    if not CORPUS_CASES:
        pytest.skip("tests/corpus/ defines no cases")
    batch = tmp_path_factory.mktemp("corpus-batch")
    for case in CORPUS_CASES:
        (batch / case.student_id).mkdir()
        case.write(batch / case.student_id)
    shutil.copytree(SAMPLES / "submitted" / CORPUS_NEIGHBOUR / "backprop", batch / CORPUS_NEIGHBOUR)
    course_dir = tmp_path_factory.mktemp("corpus-course")
    started = time.monotonic()
    process = run_grader("grade", str(batch), "--course-dir", str(course_dir), env={"COLUMNS": "400", **CORPUS_LIMITS})
    return process, course_dir, time.monotonic() - started


@pytest.fixture(scope="session")
def sample_scores(sample_run):
    """Read {student_id: {grade cell id: score}} of every sample from the gradebook of the sample run."""
    from nbgrader.api import Gradebook

    process, course_dir, _, _ = sample_run
    assert process.returncode == 0, f"the pipeline failed:\n{process.stdout}\n{process.stderr}"
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", "ml1-backprop") as gradebook:
        return {
            student: {grade.name: grade.score for grade in gradebook.find_submission_notebook("backprop", "backprop", student).grades}
            for student in read_expected_points()
        }
