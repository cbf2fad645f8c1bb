"""What the corpus run must leave intact: files outside each submission, the network, and no processes.

These checks use the same batch run as tests/test_corpus.py, graded by `python -m grader grade`.
"""

import hashlib
import tempfile
from pathlib import Path

import nbformat
import pytest

from conftest import CORPUS_CASES, CORPUS_LIMITS, CORPUS_NEIGHBOUR, REPOSITORY, SAMPLES
from corpus import hostile
from grader.execute import death_cause
from grader.repair import NotebookRepair
from grader.sandbox import FIRST_UID, LAST_UID

HOSTILE = {case.student_id for case in hostile.CASES} & {case.student_id for case in CORPUS_CASES}
needs_hostile = pytest.mark.skipif(not HOSTILE, reason="the hostile corpus group is not selected")


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def processes():
    """Return {pid: (uid, command line)} of every process on this machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found[int(entry.name)] = (entry.stat().st_uid, command)
            except OSError:
                continue
    return found


@needs_hostile
def test_solution_and_source_untouched(corpus_run):
    _, course_dir, _ = corpus_run
    assert (REPOSITORY / "solution.py").read_text().strip() != "tampered"
    assert digest(course_dir / "source" / "backprop" / "backprop.ipynb") == digest(REPOSITORY / "source" / "backprop" / "backprop.ipynb")


@needs_hostile
def test_neighbour_submission_untouched(corpus_run):
    _, course_dir, _ = corpus_run
    submitted = course_dir / "submitted" / CORPUS_NEIGHBOUR / "backprop" / "backprop.ipynb"
    assert digest(submitted) == digest(SAMPLES / "submitted" / CORPUS_NEIGHBOUR / "backprop" / "backprop.ipynb")


@needs_hostile
def test_gradebook_still_readable(corpus_run):
    _, course_dir, _ = corpus_run
    assert (course_dir / "gradebook.db").read_bytes()[:16] == b"SQLite format 3\0"


@needs_hostile
def test_loopback_listener_got_no_connection(corpus_run):
    corpus_run  # noqa: B018 (the run must be over)
    with pytest.raises(BlockingIOError):
        hostile.LISTENER.accept()


@needs_hostile
def test_no_process_outlives_grading(corpus_run):
    corpus_run  # noqa: B018 (the run must be over)
    leftovers = {
        pid: command for pid, (uid, command) in processes().items()
        if FIRST_UID <= uid <= LAST_UID or hostile.DAEMON_MARKER in command
    }
    assert leftovers == {}


@needs_hostile
def test_no_sandbox_folder_left(corpus_run):
    corpus_run  # noqa: B018 (the run must be over)
    folders = [path for path in Path(tempfile.gettempdir()).glob("bpk-*") if FIRST_UID <= path.stat().st_uid <= LAST_UID]
    assert folders == []


def test_batch_within_the_notebook_limits(corpus_run):
    """Every notebook stops at its time limit, so the batch cannot take longer than all limits together."""
    _, _, duration = corpus_run
    assert duration < (len(CORPUS_CASES) + 1) * int(CORPUS_LIMITS["BACKPROP_NOTEBOOK_TIMEOUT"])


@pytest.mark.parametrize(
    "status, expected",
    [(3, "exit status 3"), (-9, "SIGKILL"), (-11, "segmentation fault"), (-6, "SIGABRT"), (None, "stopped answering")],
)
def test_death_cause_names_the_reason(status, expected):
    assert expected in death_cause(status)


def test_repair_leaves_an_intact_notebook_alone():
    release = nbformat.read(REPOSITORY / "release" / "backprop" / "backprop.ipynb", as_version=4)
    notebook = nbformat.read(SAMPLES / "submitted" / "correct-loop" / "backprop" / "backprop.ipynb", as_version=4)
    repair = NotebookRepair(release)
    repair.repair(notebook)
    assert repair.notes == []
