"""Compare the grading throughput of plain sequential nbgrader with the pipeline's.

For each batch size N, builds N submissions by repeating the 12 samples, then grades them
twice in new course directories under one scratch folder:

1. `nbgrader autograde backprop`, then `nbgrader generate_feedback backprop`, each timed,
   in a course directory prepared as the pipeline prepares one;
2. `python -m grader grade` once for each --pipeline option string (by default with
   its default options, which fork each kernel from a pre-imported process, then with
   --no-fork-kernels), timed as a whole: release, intake, autograde, feedback, export.

It prints seconds per submission, the ratio of the two, and the floor: a fresh Python
interpreter that imports numpy and torch, which every kernel of nbgrader pays once.
It also checks that both runs gave every student the same points in every grade cell.
When a command fails or a grade differs, the scratch folder with every course directory
and each pipeline run's log stays for inspection.

    python benchmarks/grading.py                                # N = 40 and 200
    python benchmarks/grading.py 24 --pipeline "--workers 2"    # a quicker run
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from grader.course import Course  # noqa: E402 (needs the repository on sys.path)

SAMPLES = REPOSITORY / "samples" / "submitted"
COURSE_ID = "ml1-backprop"


def environment():
    """Return os.environ with this interpreter's bin folder first on PATH, where nbgrader finds `alembic`."""
    bin_directory = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([bin_directory, os.environ.get("PATH", "")])}


class CommandFailed(Exception):
    """A timed command ended with a non-zero status; the message contains the end of its output."""


def timed(command, cwd, log_path=None):
    """Run `command` in `cwd`; return its wall-clock seconds, or raise CommandFailed.

    `log_path`, if given, receives the command's standard output and error.
    """
    start = time.perf_counter()
    process = subprocess.run(command, cwd=cwd, env=environment(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if log_path is not None:
        log_path.write_text(f"$ {' '.join(map(str, command))}\n{process.stdout}\n{process.stderr}", encoding="utf-8")
    if process.returncode != 0:
        output = (process.stdout + process.stderr)[-5000:]
        raise CommandFailed(f"{' '.join(map(str, command))} failed with status {process.returncode}:\n{output}")
    return seconds


def build_batch(folder, count):
    """Write `count` submissions in nbgrader's layout, the 12 samples over and over; return their ids."""
    samples = sorted(path.name for path in SAMPLES.iterdir() if path.is_dir())
    students = []
    for index in range(count):
        sample = samples[index % len(samples)]
        student_id = f"{sample}-{index:04d}"
        shutil.copytree(SAMPLES / sample, folder / student_id)
        students.append(student_id)
    return students


def time_nbgrader(course_root, batch):
    """Grade the batch with nbgrader's own commands; return (autograde seconds, feedback seconds)."""
    Course(course_root).open()
    shutil.copytree(batch, course_root / "submitted")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    timed([*nbgrader, "generate_assignment", "backprop", "--force"], course_root)
    autograde = timed([*nbgrader, "autograde", "backprop", "--force"], course_root)
    feedback = timed([*nbgrader, "generate_feedback", "backprop", "--force"], course_root)
    return autograde, feedback


def time_pipeline(course_root, batch, options):
    command = [sys.executable, "-m", "grader", "grade", str(batch), "--course-dir", str(course_root), *options]
    return timed(command, REPOSITORY, log_path=course_root.with_suffix(".log"))


def time_floor(repeats=5):
    """Return the median seconds of a fresh interpreter importing numpy and torch."""
    command = [sys.executable, "-c", "import numpy, torch"]
    return statistics.median(timed(command, REPOSITORY) for _ in range(repeats))


def read_scores(course_root, students):
    """Return {student_id: {grade cell id: score}} from a course directory's SQLite gradebook."""
    scores = {}
    with Gradebook(f"sqlite:///{course_root / 'gradebook.db'}", COURSE_ID) as gradebook:
        for student in students:
            try:
                notebook = gradebook.find_submission_notebook("backprop", "backprop", student)
            except MissingEntry:
                scores[student] = None
                continue
            scores[student] = {grade.name: grade.score for grade in notebook.grades}
    return scores


def compare(nbgrader_scores, pipeline_scores):
    """Return the ids of students whose points differ between the two runs."""
    return [student for student in nbgrader_scores if nbgrader_scores[student] != pipeline_scores[student]]


def run_batch(scratch, count, variants, floor):
    """Grade one batch with nbgrader and each pipeline variant, printing the figures; return False if any grade differs."""
    batch = scratch / f"batch-{count}"
    students = build_batch(batch, count)
    autograde, feedback = time_nbgrader(scratch / f"nbgrader-{count}", batch)
    print(f"\nN = {count} submissions, seconds per submission")
    print(f"  nbgrader autograde (sequential)          {autograde / count:6.2f}")
    print(f"  nbgrader autograde + generate_feedback   {(autograde + feedback) / count:6.2f}", flush=True)
    expected = read_scores(scratch / f"nbgrader-{count}", students)

    identical = True
    for index, variant in enumerate(variants):
        course = scratch / f"pipeline-{count}-{index}"
        pipeline = time_pipeline(course, batch, variant.split())
        differing = compare(expected, read_scores(course, students))
        identical = identical and not differing
        print(f"  python -m grader grade {variant or '(default options)'}")
        print(f"    seconds per submission (autograde, feedback, export)  {pipeline / count:6.2f}")
        print(f"    throughput ratio to nbgrader autograde                {autograde / pipeline:6.2f}x")
        print(f"    throughput ratio to autograde + generate_feedback     {(autograde + feedback) / pipeline:6.2f}x")
        print(f"    seconds per submission over the floor                 {pipeline / count / floor:6.2f}")
        print(f"    grades identical to nbgrader's: {'yes' if not differing else 'NO, for ' + ', '.join(differing)}", flush=True)
    return identical


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("counts", nargs="*", type=int, default=[40, 200], help="batch sizes N (default: 40 200)")
    parser.add_argument(
        "--pipeline",
        action="append",
        metavar="OPTIONS",
        help='options of one timed `python -m grader grade` run, e.g. "--workers 2"; repeat for more runs '
        '(default: "" and "--no-fork-kernels")',
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder also when every run succeeds")
    options = parser.parse_args()
    variants = options.pipeline or ["", "--no-fork-kernels"]

    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    floor = time_floor()
    print(f"floor: a fresh interpreter importing numpy and torch: {floor:.2f} s", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="grading-benchmark-"))
    try:
        identical = all([run_batch(scratch, count, variants, floor) for count in options.counts])
    except CommandFailed as error:
        print(f"\n{error}", file=sys.stderr)
        identical = False
    print(f"\nload average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    if options.keep or not identical:
        print(f"scratch folder, with a .log per pipeline run: {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
