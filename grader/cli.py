"""Command line of the grading pipeline: ``python -m grader [release|grade|export] ...``."""

import argparse
import logging
import sys
import tempfile
import warnings
from pathlib import Path

from nbgrader.api import MissingEntry
from sqlalchemy.exc import SAWarning, SQLAlchemyError

from rich.console import Console
from rich.logging import RichHandler

from grader import ASSIGNMENT, REPOSITORY, SAMPLE_ROSTER, SAMPLES_DIRECTORY, exports, intake
from grader.autograde import Outcome, grade_all
from grader.course import Course, GradingError, prepare_environment
from grader.parallel import choose_grader, default_workers
from grader.release import generate_and_check_release, stale_release_files, update_repository_release
from grader.report import StudentGrade, exercise_maxima, export_grades_csv, read_grades, summary_table

log = logging.getLogger("grader")

DESCRIPTION = """\
Build the student release of the homework "Error Backpropagation" and autograde
submissions with nbgrader.

With no arguments, grades the sample submissions in samples/submitted/ in a new scratch
course directory and leaves the repository untouched.
"""

EXAMPLES = """\
examples:
  python -m grader                                  grade the samples in a scratch directory
  python -m grader release                          regenerate release/backprop/ from source/
  python -m grader release --check                  exit with 1 if release/ is stale
  python -m grader grade moodle-export.zip          grade a Moodle zip in this repository
  python -m grader grade submitted/ --course-dir /srv/ml1 --db postgresql://grader@localhost/ml1
  python -m grader grade submitted/ --workers 8       grade 8 submissions at a time
  python -m grader grade submitted/ --course-dir /shared/ml1 --scheduler tcp://10.0.0.5:8786
                                                    grade on a Dask cluster
  python -m grader export --course-dir /srv/ml1 --db postgresql://grader@localhost/ml1
  python -m grader export --course-dir /srv/ml1 --roster students.csv --moodle-identifier idnumber

warning: grading into a course directory that already contains autograded results
(the repository itself by default) re-runs nbgrader autograde with --force and
replaces the earlier automatic scores of every student it grades.

exit status: 0 when every submission was graded, 1 when some could not be (they are
listed with the reason and exported with 0 points), 2 for invalid input.
"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m grader",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # -v works before and after the subcommand; SUPPRESS keeps a later default from undoing it.
    verbosity = argparse.ArgumentParser(add_help=False)
    verbosity.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log every step, nbgrader's included"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step, nbgrader's included")
    moodle = moodle_options()
    commands = parser.add_subparsers(dest="command")

    release = commands.add_parser(
        "release", parents=[verbosity], help="regenerate release/backprop/ from source/backprop/"
    )
    release.add_argument(
        "--check", action="store_true", help="only compare; exit with status 1 when release/ is stale"
    )

    grade = commands.add_parser(
        "grade", parents=[verbosity, moodle], help="autograde submissions and export grades (the default)"
    )
    grade.add_argument(
        "submissions",
        nargs="?",
        type=Path,
        help="a folder or zip file of submissions: nbgrader's <student_id>/backprop/ layout, "
        "a Moodle 'Download all submissions' export, or one notebook or folder per student "
        "(default: the samples, graded in a scratch directory)",
    )
    grade.add_argument(
        "--course-dir",
        type=Path,
        help="the nbgrader course directory to grade in (default: this repository for real "
        "submissions, a new scratch directory for the samples)",
    )
    grade.add_argument(
        "--db",
        metavar="URL",
        help="the gradebook's SQLAlchemy URL (default: CourseDirectory.db_url of nbgrader_config.py, "
        "which is sqlite:///gradebook.db in the course directory)",
    )
    grade.add_argument(
        "--roster",
        type=Path,
        help="a CSV file with columns student_id, first_name, last_name, email, for "
        "submissions in nbgrader's layout (default for the samples: samples/students.csv)",
    )
    grade.add_argument(
        "--workers",
        type=worker_count,
        default=None,
        metavar="N",
        help=f"grade N submissions at a time, each in its own process and kernel; 1 grades them one "
        f"after another in this process (default: one per CPU core, here {default_workers()})",
    )
    grade.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="send the grading jobs to the Dask distributed scheduler at ADDRESS, e.g. tcp://10.0.0.5:8786, "
        "instead of local processes. Its workers must import this repository's code and see the course "
        "directory and the gradebook at the same paths; start them with --nthreads 1, since each worker "
        "process grades one submission at a time",
    )
    grade.add_argument(
        "--fork-kernels",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start each submission's kernel as a fork of a process per worker that has already imported "
        "numpy, torch and ipykernel, in the same sandbox as a new kernel; --no-fork-kernels starts a new "
        "interpreter for each kernel, as plain nbgrader does (default: fork)",
    )

    export = commands.add_parser(
        "export",
        parents=[verbosity, moodle],
        help="write grades.csv, the other exports and the report from the gradebook again, without grading",
    )
    export.add_argument(
        "--course-dir", type=Path, default=REPOSITORY, help="the graded course directory (default: this repository)"
    )
    export.add_argument("--db", metavar="URL", help="the gradebook URL the course was graded with (default: as for grade)")
    export.add_argument(
        "--to",
        type=Path,
        help="the grades.csv file to write; the other exports go into its folder (default: the course directory)",
    )
    export.add_argument(
        "--roster",
        type=Path,
        help="a CSV file with columns student_id, first_name, last_name, email and optionally idnumber, "
        "for the identifiers in moodle_grades.csv",
    )
    return parser


def moodle_options():
    """Return a parent parser with the options of moodle_grades.csv, which grade and export share."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("Moodle grade import (default: c.MoodleExport.* in nbgrader_config.py)")
    group.add_argument(
        "--moodle-identifier",
        choices=["email", "idnumber"],
        help="identify students in moodle_grades.csv by email address (the default) or by ID number, "
        "read from the roster's idnumber column",
    )
    group.add_argument(
        "--moodle-identifier-column", metavar="NAME", help='the identifier column\'s header (default: "Email address" or "ID number")'
    )
    group.add_argument(
        "--moodle-grade-column", metavar="NAME", help='the grade column\'s header (default: "Error Backpropagation")'
    )
    return parser


def worker_count(text):
    """Parse --workers: a whole number of at least 1."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"invalid worker count {text!r}; give a whole number of at least 1")
    return count


def configure_logging(console, verbose):
    """Log the pipeline's steps; show nbgrader's own log only with --verbose, or its errors."""
    handler = RichHandler(console=console, show_path=False, show_time=False, markup=False)
    if not verbose:
        # nbgrader 0.9.6's gradebook code triggers SQLAlchemy warnings about its own models.
        warnings.filterwarnings("ignore", category=SAWarning)
        # nbgrader's apps log every file they copy at INFO, and warn about every changed
        # checksum of a test cell with hidden tests, which is expected here.
        handler.addFilter(lambda record: record.name.startswith("grader") or record.levelno >= logging.ERROR)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[handler], force=True)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


def run_release(check):
    """Regenerate or only check release/; return the exit status."""
    if check:
        stale = stale_release_files()
        if stale:
            log.error("release/%s is stale in: %s. Run: python -m grader release", ASSIGNMENT, ", ".join(stale))
            return 1
        log.info("release/%s is up to date with source/%s", ASSIGNMENT, ASSIGNMENT)
        return 0

    changed = update_repository_release()
    if changed:
        print(f"Regenerated release/{ASSIGNMENT}/: {', '.join(changed)}. Commit it.")
    else:
        print(f"release/{ASSIGNMENT}/ was already up to date.")
    return 0


def choose_course_directory(submissions, course_dir):
    """Return the course root: the one given, a scratch folder for the samples, else the repository."""
    if course_dir is not None:
        return course_dir
    if submissions is None:
        return Path(tempfile.mkdtemp(prefix="backprop-grading-"))
    return REPOSITORY


def register_students(course, submissions):
    """Add every student to the gradebook with the name the submission came with."""
    with course.gradebook() as gradebook:
        for submission in submissions:
            names = {"first_name": submission.first_name, "last_name": submission.last_name}
            if submission.email:
                names["email"] = submission.email
            gradebook.update_or_create_student(submission.student_id, **names)


def collect_grades(course, submissions, outcomes):
    """Export grades.csv and return this batch's grades, each with its problems attached."""
    with course.gradebook() as gradebook:
        export_grades_csv(gradebook, course.root / "grades.csv")
        grades = {grade.student_id: grade for grade in read_grades(gradebook)}
        maxima = exercise_maxima(gradebook)

    batch = []
    for submission in submissions:
        name = f"{submission.first_name} {submission.last_name}".strip()
        grade = grades.get(submission.student_id) or StudentGrade(submission.student_id, name)
        if submission.problem:
            grade.problems.append(submission.problem)
        grade.problems += outcomes[submission.student_id].problems
        grade.notes += submission.notes + outcomes[submission.student_id].notes
        batch.append(grade)
    return batch, maxima


def print_summary(course, grades, maxima, left_out):
    # Off a terminal, rich assumes 80 columns and would wrap the table's rows.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(summary_table(grades, maxima))
    console.print(f"course directory: {course.root}", soft_wrap=True)
    print_export_paths(console, course.root, course.root / "grades.csv", left_out)
    console.print(f"feedback:         {course.feedback_directory}", soft_wrap=True)


def print_export_paths(console, folder, grades_csv, left_out):
    """Print where the exports are, and how many students the Moodle file leaves out."""
    console.print(f"grades.csv:       {grades_csv}", soft_wrap=True)
    console.print(f"per test:         {folder / exports.BREAKDOWN_FILE}", soft_wrap=True)
    console.print(f"Moodle import:    {folder / exports.MOODLE_FILE}", soft_wrap=True)
    console.print(f"report:           {folder / exports.REPORT_FILE}", soft_wrap=True)
    if left_out:
        listed = ", ".join(result.student_id for result, _ in left_out)
        console.print(
            f"{exports.MOODLE_FILE} leaves out {len(left_out)} students without a usable identifier "
            f"(see the report): {listed}",
            soft_wrap=True,
        )


def write_exports(course, folder, roster, moodle, gradebook_opener):
    """Write the breakdown, the Moodle file and the report; return the students the Moodle file leaves out."""
    settings = exports.moodle_settings(course.config, **(moodle or {}))
    rows = intake.read_roster(roster) if roster else {}
    try:
        with gradebook_opener() as gradebook:
            return exports.write_exports(gradebook, course.root, folder, settings, rows)
    except OSError as error:
        raise GradingError(f"cannot write the exports into {folder}: {error.strerror}") from error
    except MissingEntry as error:
        raise GradingError(
            f"the gradebook {course.db_url} has no assignment '{ASSIGNMENT}'; grade submissions into it first"
        ) from error


def run_grade(submissions_path, course_dir, db_url, roster, moodle=None, workers=None, scheduler=None, fork_kernels=True):
    """Run the whole pipeline on one batch of submissions; return the exit status.

    `moodle` contains the --moodle-* options; `workers`, `scheduler` and `fork_kernels` are
    the options --workers, --scheduler and --fork-kernels (see grader.parallel and
    grader.forkserver).
    """
    course_root = choose_course_directory(submissions_path, course_dir)
    if submissions_path is None:
        submissions_path = SAMPLES_DIRECTORY
        roster = roster or SAMPLE_ROSTER

    # Read the submissions first, so that bad input changes nothing in the course directory.
    submissions, scratch = intake.collect(submissions_path, roster)
    try:
        course = Course(course_root, db_url).open()
        log.info("Course directory: %s", course.root)
        generate_and_check_release(course)
        register_students(course, submissions)
        intake.place(submissions, course.submitted_directory)
    finally:
        if scratch is not None:
            scratch.cleanup()

    gradable = [s.student_id for s in submissions if not s.problem]
    if fork_kernels:
        course.use_forked_kernels()
    grade_many = choose_grader(workers, scheduler, fork_kernels)
    outcomes = {o.student_id: o for o in grade_all(course, gradable, grade_many=grade_many)}
    for submission in submissions:
        outcome = outcomes.setdefault(submission.student_id, Outcome(submission.student_id))
        if not outcome.graded:
            # No new grade, so no earlier one of this student may stay in the gradebook.
            course.discard_results(submission.student_id)
    grades, maxima = collect_grades(course, submissions, outcomes)
    exports.save_problems(course.root, grades)
    left_out = write_exports(course, course.root, roster, moodle, course.gradebook)
    print_summary(course, grades, maxima, left_out)

    failed = [grade.student_id for grade in grades if grade.problems]
    if failed:
        log.error("%d of %d submissions could not be graded: %s", len(failed), len(submissions), ", ".join(failed))
        return 1
    return 0


def run_export(course_dir, db_url, path, roster=None, moodle=None):
    """Export grades.csv, the other exports and the report from the gradebook without grading; return the exit status."""
    prepare_environment()
    course = Course(course_dir, db_url)
    path = path or course.root / "grades.csv"
    with course.existing_gradebook() as gradebook:
        try:
            export_grades_csv(gradebook, path)
        except OSError as error:
            raise GradingError(f"cannot write {path}: {error.strerror}; choose another file with --to") from error
    left_out = write_exports(course, path.parent, roster, moodle, course.existing_gradebook)
    console = Console() if sys.stdout.isatty() else Console(width=200)
    print_export_paths(console, path.parent, path, left_out)
    return 0


def moodle_arguments(arguments):
    """Return the --moodle-* options that were given, as keyword arguments of exports.moodle_settings."""
    return {
        "identifier": arguments.moodle_identifier,
        "identifier_column": arguments.moodle_identifier_column,
        "grade_column": arguments.moodle_grade_column,
    }


def main(argv=None):
    arguments = build_parser().parse_args(argv)
    configure_logging(Console(stderr=True), arguments.verbose)
    try:
        if arguments.command == "release":
            return run_release(arguments.check)
        if arguments.command == "grade":
            return run_grade(
                arguments.submissions,
                arguments.course_dir,
                arguments.db,
                arguments.roster,
                moodle_arguments(arguments),
                arguments.workers,
                arguments.scheduler,
                arguments.fork_kernels,
            )
        if arguments.command == "export":
            return run_export(arguments.course_dir, arguments.db, arguments.to, arguments.roster, moodle_arguments(arguments))
        return run_grade(None, None, None, None)
    except (GradingError, intake.IntakeError) as error:
        log.error("%s", error)
        return 2
    except SQLAlchemyError as error:
        # An invalid --db URL or an unreachable database server.
        log.error("Cannot use the gradebook: %s: %s. Check --db or CourseDirectory.db_url.", type(error).__name__, error)
        return 2
