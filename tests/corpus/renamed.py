"""Submissions whose notebook is not named backprop.ipynb."""

import nbformat

from corpus import REPOSITORY, Case, writer

CORRECT = nbformat.read(REPOSITORY / "samples" / "submitted" / "correct-loop" / "backprop" / "backprop.ipynb", as_version=4)
FULL_MARKS = {
    "ex1_norm": 2, "ex1_dw0": 2, "ex1_db0": 1, "ex1_dw1": 2, "ex1_db1": 1, "ex1_dw2": 2, "ex1_db2": 1,
    "ex1_dw3": 2, "ex1_db3": 1, "ex1_batch_sizes": 3, "ex1_layer_widths": 3,
    "ex2_norm": 2, "ex2_error": 2, "ex2_graph": 3, "ex2_fresh_data": 3,
}

CASES = [
    # A browser download that renamed the only notebook is still this homework.
    Case("renamed-download", writer(CORRECT, "backprop (1).ipynb"), points=FULL_MARKS),
]
