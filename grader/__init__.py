"""The instructor's pipeline of the course "Error Backpropagation".

It builds the student release from source/, takes in submissions from a folder or a
learning platform's zip export, autogrades them with nbgrader, writes feedback and
grades.csv, and prints a summary. Run it with ``python -m grader``.
"""

from pathlib import Path

ASSIGNMENT = "backprop"
REPOSITORY = Path(__file__).resolve().parent.parent
SOURCE_DIRECTORY = REPOSITORY / "source" / ASSIGNMENT
RELEASE_DIRECTORY = REPOSITORY / "release" / ASSIGNMENT
SAMPLES_DIRECTORY = REPOSITORY / "samples" / "submitted"
SAMPLE_ROSTER = REPOSITORY / "samples" / "students.csv"
