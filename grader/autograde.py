"""Autograde every submission with nbgrader and generate its feedback, one student per job."""

import logging
import re
from dataclasses import dataclass, field

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from grader.review import review

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """The result of grading one student's submission."""

    student_id: str
    graded: bool = False
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    """Remarks on a graded submission: repairs, a dead or stuck kernel, a manual grading flag. The grade is kept."""


def last_lines(text, count=15):
    """Return the last `count` lines of nbgrader's log or traceback, for the log."""
    return "\n".join((text or "").strip().splitlines()[-count:])


# The last line of a Python traceback, e.g. "nbclient.exceptions.DeadKernelError: Kernel died".
EXCEPTION_LINE = re.compile(r"^\s*(?P<type>[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt))(: (?P<message>.*))?$")


def cause_of(result):
    """Return the exception that made an nbgrader step fail, for the summary.

    nbgrader ends every failure with its own NbGraderException, so the cause is the last
    other exception in its log or traceback.
    """
    text = f"{result.get('log') or ''}\n{result.get('error') or ''}"
    causes = [
        line.strip()
        for line in text.splitlines()
        if EXCEPTION_LINE.match(line) and "NbGraderException" not in line
    ]
    return causes[-1] if causes else "nbgrader gave no reason; run again with --verbose"


def grade_one(course, student_id):
    """Autograde one submission and write its feedback.

    nbgrader's failures, a broken submission's included, are logged and recorded in the
    outcome instead of raised, so the next student is graded all the same.
    """
    outcome = Outcome(student_id)
    result = course.autograde(student_id)
    if not result["success"]:
        error = result.get("error") or result.get("log")
        outcome.problems.append(f"autograding failed: {cause_of(result)}")
        log.error("Student %s: nbgrader autograde failed:\n%s", student_id, last_lines(error))
        return outcome
    outcome.graded = True
    outcome.notes += course.grading_events(student_id)
    # Before the feedback, which shows the gradebook comments that review writes.
    outcome.notes += review(course, student_id)

    result = course.generate_feedback(student_id)
    if not result["success"]:
        error = result.get("error") or result.get("log")
        outcome.problems.append(f"feedback failed: {cause_of(result)}")
        log.error("Student %s: nbgrader generate_feedback failed:\n%s", student_id, last_lines(error))
    return outcome


def grade_in_turn(course, student_ids):
    """Grade the students one after another in this process; yield each Outcome."""
    for student_id in student_ids:
        yield grade_one(course, student_id)


def grade_all(course, student_ids, console=None, grade_many=None):
    """Grade every student under a progress bar; return their outcomes in the order of `student_ids`.

    `grade_many(course, student_ids)` yields one Outcome per student as each finishes, in
    any order: grade_in_turn by default, or a parallel grader from grader.parallel.
    """
    outcomes = {}
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("time left"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("Grading", total=len(student_ids))
        for outcome in (grade_many or grade_in_turn)(course, student_ids):
            outcomes[outcome.student_id] = outcome
            log.info("Graded %s", outcome.student_id)
            progress.update(task, description=f"Graded {outcome.student_id}")
            progress.advance(task)
        progress.update(task, description="Graded")
    return [outcomes[student_id] for student_id in student_ids]
