"""Command line of the grading pipeline: ``python -m grader [release|grade] ...``."""

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from grader import ASSIGNMENT, RELEASE_DIRECTORY, REPOSITORY, SAMPLE_ROSTER, SAMPLES_DIRECTORY, intake
from grader.autograde import grade_all
from grader.course import Course, GradingError
from grader.release import differing_files, update_repository_release
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

warning: grading into a course directory that already contains autograded results
(the repository itself by default) re-runs nbgrader autograde with --force and
replaces the earlier automatic scores of every student it grades.
"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m grader",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step, nbgrader's included")
    commands = parser.add_subparsers(dest="command")

    release = commands.add_parser("release", help="regenerate release/backprop/ from source/backprop/")
    release.add_argument(
        "--check", action="store_true", help="only compare; exit with status 1 when release/ is stale"
    )

    grade = commands.add_parser("grade", help="autograde submissions and export grades (the default)")
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
    return parser


def configure_logging(console, verbose):
    """Log the pipeline's steps; show nbgrader's own log only with --verbose, or its errors."""
    handler = RichHandler(console=console, show_path=False, show_time=False, markup=False)
    if not verbose:
        # nbgrader's apps log every file they copy at INFO, and warn about every changed
        # checksum of a test cell with hidden tests, which is expected here.
        handler.addFilter(lambda record: record.name.startswith("grader") or record.levelno >= logging.ERROR)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[handler], force=True)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


def run_release(check):
    """Regenerate or only check release/; return the exit status."""
    if check:
        with tempfile.TemporaryDirectory(prefix="backprop-release-") as scratch:
            built = Course(scratch).open().generate_release()
            stale = differing_files(built, RELEASE_DIRECTORY)
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


def warn_if_release_stale(course):
    """Warn when the committed release differs from what the source generates now."""
    if course.is_repository:
        return
    stale = differing_files(course.release_directory, RELEASE_DIRECTORY)
    if stale:
        log.warning(
            "release/%s of the repository differs from its source in %s; students may have an old "
            "version. Run: python -m grader release",
            ASSIGNMENT,
            ", ".join(stale),
        )


def register_students(course, submissions):
    """Add every student to the gradebook with the name the submission came with."""
    with course.gradebook() as gradebook:
        for submission in submissions:
            names = {"first_name": submission.first_name, "last_name": submission.last_name}
            if submission.email:
                names["email"] = submission.email
            gradebook.update_or_create_student(submission.student_id, **names)


def run_grade(submissions_path, course_dir, db_url, roster):
    """Run the whole pipeline on one batch of submissions; return the exit status."""
    if submissions_path is None:
        submissions_path = SAMPLES_DIRECTORY
        roster = roster or SAMPLE_ROSTER
        course_root = choose_course_directory(None, course_dir)
    else:
        course_root = choose_course_directory(submissions_path, course_dir)

    course = Course(course_root, db_url).open()
    log.info("Course directory: %s", course.root)
    course.generate_release()
    warn_if_release_stale(course)

    submissions, scratch = intake.collect(submissions_path, roster)
    try:
        register_students(course, submissions)
        intake.place(submissions, course.submitted_directory)
    finally:
        if scratch is not None:
            scratch.cleanup()

    gradable = [s.student_id for s in submissions if not s.problem]
    outcomes = {o.student_id: o for o in grade_all(course, gradable)}

    grades_csv = course.root / "grades.csv"
    with course.gradebook() as gradebook:
        export_grades_csv(gradebook, grades_csv)
        grades = {grade.student_id: grade for grade in read_grades(gradebook)}
        maxima = exercise_maxima(gradebook)

    failed = []
    for submission in submissions:
        problems = [submission.problem] if submission.problem else []
        outcome = outcomes.get(submission.student_id)
        if outcome is not None:
            problems += [problem.splitlines()[0] for problem in outcome.problems]
        if problems:
            failed.append(submission.student_id)
            grade = grades.setdefault(submission.student_id, StudentGrade(submission.student_id, submission.display_name))
            grade.problems += problems

    # Off a terminal, rich assumes 80 columns and would wrap the table's rows.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(summary_table(sorted(grades.values(), key=lambda g: g.student_id), maxima))
    console.print(f"course directory: {course.root}", soft_wrap=True)
    console.print(f"grades.csv:       {grades_csv}", soft_wrap=True)
    console.print(f"feedback:         {course.feedback_directory}", soft_wrap=True)
    if failed:
        log.error("%d of %d submissions could not be graded: %s", len(failed), len(submissions), ", ".join(failed))
        return 1
    return 0


def main(argv=None):
    arguments = build_parser().parse_args(argv)
    configure_logging(Console(stderr=True), arguments.verbose)
    try:
        if arguments.command == "release":
            return run_release(arguments.check)
        if arguments.command == "grade":
            return run_grade(arguments.submissions, arguments.course_dir, arguments.db, arguments.roster)
        return run_grade(None, None, None, None)
    except (GradingError, intake.IntakeError) as error:
        log.error("%s", error)
        return 2
