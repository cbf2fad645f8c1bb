"""Grade many submissions at once: in a local process pool, or on a Dask distributed cluster.

Each job is one call of autograde.grade_one for one student, in a worker process that
starts its own Jupyter kernel. The parent process only hands out student ids and collects
the outcomes, so a kernel or a worker that fails costs at most that student's grade.

Gradebook writes: nbgrader opens the gradebook for a few short transactions before and
after it runs a notebook (creating the submission, saving the scores), never while the
kernel runs. With PostgreSQL the server orders concurrent transactions. With SQLite the
workers' URL gets a busy timeout (SQLITE_TIMEOUT_SECONDS), so a worker waits for the file
lock instead of failing at once. A submission whose write still found the database
locked is graded again, which nbgrader autograde --force makes safe to repeat.
"""

import logging
import logging.handlers
import multiprocessing
import os
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from grader.autograde import Outcome, grade_one
from grader.course import Course, GradingError, prepare_environment

log = logging.getLogger(__name__)

# How long one SQLite write waits for another worker's transaction before it fails.
# nbgrader's transactions take milliseconds; a minute covers a machine under heavy load.
SQLITE_TIMEOUT_SECONDS = 60

# How often one submission is graded again after its gradebook write found SQLite locked.
LOCKED_DATABASE_RETRIES = 2

# One grading job at a time per process: nbgrader's apps set os.environ and the
# CourseDirectory's attributes while they run, so two threads of one Dask worker
# must not grade at the same time.
_grading_lock = threading.Lock()


def default_workers():
    """Return the number of CPU cores this process may run on, the default pool size."""
    return len(os.sched_getaffinity(0))


def with_busy_timeout(db_url):
    """Add SQLITE_TIMEOUT_SECONDS to an SQLite URL that sets no options; return other URLs unchanged."""
    if db_url.startswith("sqlite:") and "?" not in db_url:
        return f"{db_url}?timeout={SQLITE_TIMEOUT_SECONDS}"
    return db_url


def is_locked_database(outcome):
    return any("database is locked" in problem for problem in outcome.problems)


def grade_student(course_root, db_url, student_id, fork_kernels=False):
    """Grade one student in a worker process and return the Outcome, never raising.

    This is the job sent to pool and Dask workers. It opens the course anew from its root
    and gradebook URL, which are all a worker needs besides this repository's code.
    `fork_kernels` runs the notebook in a kernel forked by grader.forkserver.
    """
    with _grading_lock:
        prepare_environment()
        course = Course(course_root, with_busy_timeout(db_url))
        if fork_kernels:
            course.use_forked_kernels()
        for attempt in range(1 + LOCKED_DATABASE_RETRIES):
            try:
                outcome = grade_one(course, student_id)
            except Exception as error:  # noqa: BLE001 (a worker must return an outcome for every student)
                log.exception("Student %s: grading failed in worker process %d", student_id, os.getpid())
                return Outcome(student_id, problems=[f"grading failed: {type(error).__name__}: {error}"])
            if not is_locked_database(outcome) or attempt == LOCKED_DATABASE_RETRIES:
                return outcome
            log.warning("Student %s: the SQLite gradebook was locked; grading again", student_id)


def failed_outcome(student_id, reason):
    log.error("Student %s: %s", student_id, reason)
    return Outcome(student_id, problems=[reason])


def forward_logs_to(queue, levels):
    """Send this worker's log records to the parent through `queue`, at the parent's log levels.

    `levels` maps logger names to levels; the parent's handlers then filter and print the
    records as they do their own.
    """
    root = logging.getLogger()
    root.handlers = [logging.handlers.QueueHandler(queue)]
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)


def current_log_levels():
    return {name: logging.getLogger(name or None).level for name in ("", "grader")}


def grade_in_process_pool(course, student_ids, workers, fork_kernels=False):
    """Grade the students in `workers` local processes; yield each Outcome as it finishes.

    When a worker process dies, every unfinished job of its pool fails with it. The
    students whose grading had not started go back into a new pool. Each student whose
    grading had started is graded again alone, and only one that kills its worker even
    then is reported, so its neighbours keep their grades.
    """
    log.info("Grading %d submissions in %d worker processes", len(student_ids), min(workers, len(student_ids)))
    with tempfile.TemporaryDirectory(prefix="grader-started-") as folder:
        started = Path(folder)
        fresh, suspects = list(student_ids), []
        while fresh:
            unfinished = yield from grade_in_one_pool(course, fresh, workers, started, fork_kernels)
            if len(unfinished) == len(fresh) and not any((started / s).exists() for s in unfinished):
                raise GradingError(
                    "the grading worker processes died before they could grade; run with --verbose for "
                    "their errors, or with --workers 1 to grade in this process"
                )
            if unfinished:
                log.warning("A grading worker process died; grading its %d unfinished submissions again", len(unfinished))
            suspects += [s for s in unfinished if (started / s).exists()]
            fresh = [s for s in unfinished if not (started / s).exists()]

        for student_id in suspects:
            if (yield from grade_in_one_pool(course, [student_id], 1, started, fork_kernels)):
                yield failed_outcome(student_id, "its grading worker process died, also when graded alone")


def grade_in_one_pool(course, student_ids, workers, started, fork_kernels):
    """Grade the students in one process pool, yielding each Outcome; return those cut off by a worker's death.

    The workers are started fresh ("spawn"), not forked from this process, which runs
    the progress display's thread. Each worker creates the file `started`/<student_id>
    before it grades that student. The log queue is new for each pool, because a worker
    killed while it writes to it can leave it locked.
    """
    context = multiprocessing.get_context("spawn")
    log_queue = context.Queue()
    listener = logging.handlers.QueueListener(log_queue, *logging.getLogger().handlers, respect_handler_level=True)
    listener.start()
    unfinished = []
    try:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(student_ids)),
            mp_context=context,
            initializer=forward_logs_to,
            initargs=(log_queue, current_log_levels()),
        ) as executor:
            futures = {
                executor.submit(mark_and_grade_student, started, course.root, course.db_url, student_id, fork_kernels): student_id
                for student_id in student_ids
            }
            for future in as_completed(futures):
                try:
                    yield future.result()
                except BrokenProcessPool:
                    unfinished.append(futures[future])
    finally:
        listener.stop()
        log_queue.close()
    return unfinished


def mark_and_grade_student(started, course_root, db_url, student_id, fork_kernels):
    """Create the file `started`/<student_id>, then grade the student as grade_student does."""
    (started / student_id).touch()
    return grade_student(course_root, db_url, student_id, fork_kernels)


def grade_on_dask(course, student_ids, scheduler, fork_kernels=False):
    """Send one job per student to the Dask scheduler at `scheduler`; yield each Outcome as it finishes.

    The workers must import this repository's `grader` package and see the course
    directory and the gradebook at the same paths as this process.
    """
    from distributed import Client, as_completed as dask_as_completed

    try:
        client = Client(scheduler)
    except (OSError, ValueError) as error:
        raise GradingError(
            f"cannot connect to the Dask scheduler at {scheduler!r}: {error}. Check --scheduler "
            "(for example tcp://10.0.0.5:8786), or leave it out to grade in local processes"
        ) from error
    with client:
        log.info("Grading on the Dask cluster at %s (%d workers)", scheduler, len(client.scheduler_info()["workers"]))
        futures = {
            client.submit(grade_student, str(course.root), course.db_url, student_id, fork_kernels, pure=False): student_id
            for student_id in student_ids
        }
        for future in dask_as_completed(futures):
            student_id = futures[future]
            try:
                yield future.result()
            except Exception as error:  # noqa: BLE001 (e.g. KilledWorker, or a worker without this code)
                yield failed_outcome(student_id, f"the Dask job failed: {type(error).__name__}: {error}")


def choose_grader(workers=None, scheduler=None, fork_kernels=False):
    """Return grade_all's `grade_many` function for the options --workers, --scheduler and --fork-kernels.

    None keeps grade_all's default of grading in this process, one student after another.
    """
    if scheduler:
        return lambda course, student_ids: grade_on_dask(course, student_ids, scheduler, fork_kernels)
    workers = workers or default_workers()
    if workers == 1:
        return None
    return lambda course, student_ids: grade_in_process_pool(course, student_ids, workers, fork_kernels)
