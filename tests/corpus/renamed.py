"""Submissions whose notebook is not named backprop.ipynb."""

from corpus import FULL_MARKS, Case, sample_notebook, writer

CORRECT = sample_notebook("correct-loop")

CASES = [
    # A browser download that renamed the only notebook is still this homework.
    Case("renamed-download", writer(CORRECT, "backprop (1).ipynb"), points=FULL_MARKS),
]
