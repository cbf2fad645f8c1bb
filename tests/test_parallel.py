"""Parallel grading: the same points as sequential nbgrader, on SQLite, PostgreSQL and Dask.

The session fixture's run, `python -m grader`, already grades the samples with one
worker process per core (test_samples.py checks its points against the expected table).
"""

import multiprocessing
import os
import shutil
import subprocess
import sys
import signal
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook, MissingEntry

from conftest import REPOSITORY, SAMPLES, free_port, nbgrader_environment, read_expected_points, run_grader
from grader.parallel import default_workers, with_busy_timeout
from grader.sandbox import FIRST_UID, LAST_UID

EXPECTED = read_expected_points()
CELLS = [cell for cell in next(iter(EXPECTED.values())) if cell != "total"]
COURSE_ID = "ml1-backprop"


def scores_by_cell(db_url, students):
    """Return {student_id: {grade cell id: score}} from a gradebook, {} for a student without a submission."""
    scores = {}
    with Gradebook(db_url, COURSE_ID) as gradebook:
        for student in students:
            try:
                notebook = gradebook.find_submission_notebook("backprop", "backprop", student)
            except MissingEntry:
                scores[student] = {}
                continue
            scores[student] = {grade.name: grade.score for grade in notebook.grades}
    return scores


def expected_by_cell(students):
    return {student: {cell: EXPECTED[student][cell] for cell in CELLS} for student in students}


def copy_samples(target, students):
    """Copy the named samples into `target` in nbgrader's layout; return `target`."""
    for student in students:
        shutil.copytree(SAMPLES / "submitted" / student, target / student)
    return target


def run_nbgrader(*arguments, cwd):
    environment = nbgrader_environment()
    environment.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *arguments], cwd=cwd, env=environment, capture_output=True, text=True, timeout=1200
    )


def test_busy_timeout_only_for_plain_sqlite_urls():
    assert with_busy_timeout("sqlite:////srv/gradebook.db") == "sqlite:////srv/gradebook.db?timeout=60"
    assert with_busy_timeout("sqlite:////srv/gradebook.db?timeout=5") == "sqlite:////srv/gradebook.db?timeout=5"
    assert with_busy_timeout("postgresql://grader@localhost/ml1") == "postgresql://grader@localhost/ml1"


def write_scores(db_url, worker, count):
    """Record `count` submissions with a score in every grade cell, as nbgrader autograde's writes do."""
    with Gradebook(with_busy_timeout(db_url), COURSE_ID) as gradebook:
        for index in range(count):
            student = f"worker{worker}-student{index}"
            gradebook.update_or_create_student(student)
            gradebook.update_or_create_submission("backprop", student)
            for cell in CELLS:
                gradebook.find_grade(cell, "backprop", "backprop", student).auto_score = 1
                gradebook.db.commit()


def test_concurrent_sqlite_writes_all_succeed(tmp_path):
    """Do four processes writing scores at once into one SQLite gradebook all finish, with every score kept?"""
    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(db_url, COURSE_ID) as gradebook:
        gradebook.add_assignment("backprop")
        gradebook.add_notebook("backprop", "backprop")
        for cell in CELLS:
            gradebook.add_grade_cell(cell, "backprop", "backprop", max_score=1, cell_type="code")
    workers, count = 4, 5

    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.starmap(write_scores, [(db_url, worker, count) for worker in range(workers)])

    with Gradebook(db_url, COURSE_ID) as gradebook:
        assert len(gradebook.students) == workers * count
        for student in gradebook.students:
            assert gradebook.find_submission("backprop", student.id).score == len(CELLS), student.id


def test_parallel_grades_equal_sequential_nbgrader(sample_run, tmp_path):
    """Grade the samples again with plain sequential `nbgrader autograde` and compare every cell."""
    process, parallel_course, _, _ = sample_run
    assert process.returncode == 0, process.stdout + process.stderr
    workers = min(default_workers(), len(EXPECTED))
    if workers > 1:
        assert f"in {workers} worker processes" in " ".join(process.stderr.split())

    course = tmp_path / "sequential"
    course.mkdir()
    for name in ("source", "submitted"):
        shutil.copytree(parallel_course / name, course / name)
    shutil.copy(parallel_course / "nbgrader_config.py", course)
    assert run_nbgrader("generate_assignment", "backprop", "--force", cwd=course).returncode == 0
    sequential = run_nbgrader("autograde", "backprop", "--force", cwd=course)
    assert sequential.returncode == 0, sequential.stderr[-3000:]

    parallel_scores = scores_by_cell(f"sqlite:///{parallel_course / 'gradebook.db'}", EXPECTED)
    sequential_scores = scores_by_cell(f"sqlite:///{course / 'gradebook.db'}", EXPECTED)
    assert parallel_scores == sequential_scores
    assert sequential_scores == expected_by_cell(EXPECTED)


def test_invalid_worker_count_is_explained(tmp_path):
    process = run_grader("grade", str(tmp_path), "--workers", "0")
    assert process.returncode == 2
    assert "invalid worker count '0'" in process.stderr


# The answer walks up from its kernel to the first process started by multiprocessing, the
# grading worker, and kills it. It refuses to kill anything else.
KILL_WORKER = """def exercise2(W, B, X, T):
    import os, signal
    pid = os.getppid()
    while pid > 1:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            if b"multiprocessing" in file.read():
                os.kill(pid, signal.SIGKILL)
                return
        with open(f"/proc/{pid}/stat") as file:
            pid = int(file.read().rsplit(")", 1)[1].split()[1])
    raise RuntimeError("no grading worker among the kernel's ancestors")
"""


def kill_worker_notebook(path):
    """Write a correct sample whose exercise2 kills the process that runs its kernel: the grading worker."""
    notebook = nbformat.read(SAMPLES / "submitted" / "correct-loop" / "backprop" / "backprop.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "exercise2_answer":
            cell.source = KILL_WORKER
    path.parent.mkdir(parents=True)
    nbformat.write(notebook, path)


def test_sandbox_keeps_worker_alive(tmp_path):
    """In the sandbox's PID namespace, the kernel sees no ancestor, so the worker and the grades survive."""
    neighbours = ["correct-loop", "sign-error"]
    batch = copy_samples(tmp_path / "batch", neighbours)
    kill_worker_notebook(batch / "killer" / "backprop" / "backprop.ipynb")
    course = tmp_path / "course"

    process = run_grader("grade", str(batch), "--course-dir", str(course), "--workers", "2", env={"COLUMNS": "300"})

    assert process.returncode == 0, process.stdout + process.stderr
    scores = scores_by_cell(f"sqlite:///{course / 'gradebook.db'}", neighbours + ["killer"])
    killer = scores.pop("killer")
    assert sum(points for cell, points in killer.items() if cell.startswith("ex1")) == 20
    assert sum(points for cell, points in killer.items() if cell.startswith("ex2")) == 0
    assert scores == expected_by_cell(neighbours)


def parent_of(pid):
    with open(f"/proc/{pid}/stat") as file:
        return int(file.read().rsplit(")", 1)[1].split()[1])


def grading_worker_of(pid):
    """Return the grading worker (a process started by multiprocessing) above a process, or None."""
    while pid > 1:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            if b"multiprocessing" in file.read():
                return pid
        pid = parent_of(pid)
    return None


def kernel_user_processes():
    """Return the ids of the processes that run as a sandboxed kernel's user now."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and FIRST_UID <= entry.stat().st_uid <= LAST_UID:
                pids.append(int(entry.name))
        except FileNotFoundError:
            continue
    return pids


def kill_workers_of_old_kernels(grader, age, killed):
    """Until `grader` ends, SIGKILL the grading worker of every sandboxed kernel older than `age` seconds.

    This is what the sleeper's kernel cannot do itself: the sandbox hides its worker.
    The killed workers' process ids go into `killed`.
    """
    first_seen = {}
    while grader.poll() is None:
        for pid in kernel_user_processes():
            if time.monotonic() - first_seen.setdefault(pid, time.monotonic()) < age:
                continue
            try:
                worker = grading_worker_of(pid)
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
            if worker is not None and worker not in killed:
                os.kill(worker, signal.SIGKILL)
                killed.append(worker)
        time.sleep(0.1)


@pytest.mark.parametrize("kernels", ["--fork-kernels", "--no-fork-kernels"])
def test_killed_worker_costs_no_other_grade(tmp_path, kernels):
    """A worker killed from outside while it grades: only its student is lost, after one retry alone."""
    neighbours = ["correct-loop", "sign-error", "raises"]
    batch = copy_samples(tmp_path / "batch", neighbours)
    notebook = nbformat.read(SAMPLES / "submitted" / "correct-loop" / "backprop" / "backprop.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "exercise1_answer":
            cell.source = "import time\ntime.sleep(120)\n" + cell.source
    (batch / "sleeper" / "backprop").mkdir(parents=True)
    nbformat.write(notebook, batch / "sleeper" / "backprop" / "backprop.ipynb")
    course = tmp_path / "course"

    grader = subprocess.Popen(
        [sys.executable, "-m", "grader", "grade", str(batch), "--course-dir", str(course), "--workers", "2", kernels],
        cwd=REPOSITORY,
        env={**nbgrader_environment(), "COLUMNS": "300"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = []
    killer = threading.Thread(target=kill_workers_of_old_kernels, args=(grader, 10, killed), daemon=True)
    killer.start()
    stdout, stderr = grader.communicate(timeout=600)
    killer.join()

    # Killed twice: in the pool, then when graded alone.
    assert len(killed) == 2, stdout + stderr
    assert grader.returncode == 1, stdout + stderr
    assert "A grading worker process died; grading its" in " ".join(stderr.split())
    assert "1 of 4 submissions could not be graded: sleeper" in " ".join(stderr.split())
    assert "worker process died, also when graded alone" in stdout
    scores = scores_by_cell(f"sqlite:///{course / 'gradebook.db'}", neighbours + ["sleeper"])
    assert scores.pop("sleeper") == {}
    assert scores == expected_by_cell(neighbours)
    # The kernels end with their workers, a forked one through its fork server, which
    # also removes its sandbox folder, within a second or two. (The grader's output pipes
    # would stay open, and communicate() wait, while a kernel ran on.)
    deadline = time.monotonic() + 15
    removes_folders = kernels == "--fork-kernels"
    while (kernel_user_processes() or removes_folders and sandbox_folders()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert kernel_user_processes() == []
    if removes_folders:
        assert sandbox_folders() == []
    else:
        # A killed worker leaves its new-interpreter kernel's sandbox folder (a NOTE in
        # grader/sandbox.py); it is removed here so that test_sandbox's check stays exact.
        for folder in sandbox_folders():
            shutil.rmtree(folder)


def sandbox_folders():
    return [path for path in Path(tempfile.gettempdir()).glob("bpk-*") if FIRST_UID <= path.stat().st_uid <= LAST_UID]


def find_postgres_bin():
    """Return the folder of PostgreSQL's server programs (initdb, pg_ctl), which Debian keeps off PATH."""
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").is_file():
            return folder
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    pytest.fail("PostgreSQL's initdb is not installed; install it with: apt-get install -y postgresql (.ci/run does)")


def as_server_user(command):
    """Run a PostgreSQL server command, as the user `postgres` when this is root, which postgres refuses to run as."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def postgres_url():
    """Start a PostgreSQL server on a free port of 127.0.0.1; yield the URL of a new database on it."""
    binaries = find_postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="grader-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    as_server_user([str(binaries / "initdb"), "--auth=trust", "--username=postgres", "--encoding=UTF8", "-D", str(data)])
    # Loopback only, and the server's Unix socket in `folder`, not in /run/postgresql.
    port = free_port()
    options = f"-c listen_addresses='127.0.0.1' -c port={port} -c unix_socket_directories='{folder}'"
    as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "start"])
    try:
        as_server_user([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "gradebook"])
        yield f"postgresql://postgres@127.0.0.1:{port}/gradebook"
    finally:
        as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


def test_parallel_grading_into_postgresql(postgres_url, tmp_path):
    students = ["correct-loop", "missing-relu-derivative", "sum-not-mean", "unanswered"]
    batch = copy_samples(tmp_path / "batch", students)
    course = tmp_path / "course"

    process = run_grader("grade", str(batch), "--course-dir", str(course), "--db", postgres_url, "--workers", "2")

    assert process.returncode == 0, process.stdout + process.stderr
    assert not (course / "gradebook.db").exists()
    assert scores_by_cell(postgres_url, students) == expected_by_cell(students)


def test_grading_on_local_dask_cluster(tmp_path):
    from distributed import LocalCluster

    course = tmp_path / "course"
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        process = run_grader(
            "grade", str(SAMPLES / "submitted"), "--course-dir", str(course), "--scheduler", cluster.scheduler_address
        )

    assert process.returncode == 0, process.stdout + process.stderr
    assert "Grading on the Dask cluster at tcp://127.0.0.1:" in process.stderr
    assert scores_by_cell(f"sqlite:///{course / 'gradebook.db'}", EXPECTED) == expected_by_cell(EXPECTED)


def test_unreachable_scheduler_is_explained(tmp_path):
    batch = copy_samples(tmp_path / "batch", ["correct-loop"])
    process = run_grader("grade", str(batch), "--course-dir", str(tmp_path / "course"), "--scheduler", "nonsense://nowhere")
    assert process.returncode == 2
    assert "cannot connect to the Dask scheduler at 'nonsense://nowhere'" in process.stderr


# Appended to a correct exercise1: changes to numpy, torch and the handout's `utils` that
# would cost the next student points if they reached the next kernel.
MUTATIONS = """
import sys
import numpy
import torch
import utils

numpy.maximum = lambda *arguments, **options: 0.0
numpy.random.seed(1234)
numpy.set_printoptions(precision=1)
torch.manual_seed(99)
torch.set_default_dtype(torch.float16)
torch.Tensor.backward = lambda *arguments, **options: None
utils._X = [[0.0, 0.0, 0.0, 0.0]]
utils._W = None
utils.getdata = lambda: (None, None)
sys.modules["backprop_checks"] = None
"""


def test_forked_kernels_keep_no_state_between_students(tmp_path):
    batch = copy_samples(tmp_path / "batch", ["correct-loop", "sign-error"])
    notebook = nbformat.read(SAMPLES / "submitted" / "correct-loop" / "backprop" / "backprop.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "exercise1_answer":
            cell.source += "\n" + MUTATIONS
    # Students are graded in the order of their ids, so the mutator comes first.
    (batch / "a-mutator" / "backprop").mkdir(parents=True)
    nbformat.write(notebook, batch / "a-mutator" / "backprop" / "backprop.ipynb")
    course = tmp_path / "course"

    process = run_grader("grade", str(batch), "--course-dir", str(course), "--workers", "1", "--fork-kernels")

    assert process.returncode == 0, process.stdout + process.stderr
    scores = scores_by_cell(f"sqlite:///{course / 'gradebook.db'}", ["a-mutator", "correct-loop", "sign-error"])
    assert sum(scores.pop("a-mutator").values()) < 30, "the mutations did not take effect in their own kernel"
    assert scores == expected_by_cell(["correct-loop", "sign-error"])


def test_new_interpreter_kernels_grade_samples_in_parallel(tmp_path):
    """--no-fork-kernels starts every kernel as a new interpreter in the sandbox, as plain nbgrader does."""
    students = ["bias-not-summed", "missing-factor-two", "new-tensors", "numpy-detour", "raises", "transposed-weights"]
    batch = copy_samples(tmp_path / "batch", students)
    course = tmp_path / "course"

    process = run_grader(
        "grade", str(batch), "--course-dir", str(course), "--no-fork-kernels", "--workers", "2", "-v", env={"COLUMNS": "300"}
    )

    assert process.returncode == 0, process.stdout + process.stderr
    assert process.stderr.count("Kernel command: ['setpriv', '--pdeathsig', 'KILL', '--', 'unshare'") == len(students)
    assert "to be forked" not in process.stderr
    assert scores_by_cell(f"sqlite:///{course / 'gradebook.db'}", students) == expected_by_cell(students)
