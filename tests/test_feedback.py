"""The feedback preprocessor's traceback filter, on tracebacks shaped as IPython writes them."""

from grader.feedback import cell_description, filter_traceback, hidden_line_numbers

TEST_CELL = """\
# The gradient DW[0] of the weights of layer 1 (2 points)
DW, DB = exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T)
### BEGIN HIDDEN TESTS
import backprop_checks

backprop_checks.check_exercise1_parameter(exercise1, "DW", 0)
### END HIDDEN TESTS"""

HEADER = ["\x1b[31m-----\x1b[39m", "\x1b[31mValueError\x1b[39m    Traceback (most recent call last)"]

HIDDEN_CALL_FRAME = """\
\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[5]\x1b[39m\x1b[32m, line 6\x1b[39m
\x1b[32m      4\x1b[39m import backprop_checks
\x1b[32m      5\x1b[39m 
\x1b[32m----> \x1b[39m\x1b[32m6\x1b[39m backprop_checks.check_exercise1_parameter(exercise1, "DW", 0)
\x1b[32m      7\x1b[39m ### END HIDDEN TESTS
"""

CHECKS_FRAME = """\
\x1b[36mFile \x1b[39m\x1b[32m/srv/course/grader/kernel/backprop_checks.py:148\x1b[39m, in check_exercise1_parameter
\x1b[32m--> 148\x1b[39m DW, DB = exercise1(W, B, X, *forward(W, B, X), T)
"""

STUDENT_FRAME = """\
\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[2]\x1b[39m\x1b[32m, line 28\x1b[39m, in exercise1
\x1b[32m---> \x1b[39m\x1b[32m28\x1b[39m             delta = delta.dot(W[k]) * (Z[k] > 0)
"""

VISIBLE_CALL_FRAME = """\
\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[5]\x1b[39m\x1b[32m, line 2\x1b[39m
\x1b[32m      1\x1b[39m # The gradient DW[0] of the weights of layer 1 (2 points)
\x1b[32m----> \x1b[39m\x1b[32m2\x1b[39m DW, DB = exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T)
\x1b[32m      3\x1b[39m ### BEGIN HIDDEN TESTS
\x1b[32m      4\x1b[39m import backprop_checks
"""

MESSAGE = "\x1b[31mValueError\x1b[39m: shapes (1,1) and (6,1) not aligned"


def test_hidden_lines_include_markers():
    assert hidden_line_numbers(TEST_CELL, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS") == {3, 4, 5, 6, 7}


def test_hidden_call_keeps_student_frame():
    hidden = hidden_line_numbers(TEST_CELL, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
    traceback = HEADER + [HIDDEN_CALL_FRAME, CHECKS_FRAME, STUDENT_FRAME, MESSAGE]
    filtered = filter_traceback(traceback, 5, hidden)
    text = "\n".join(filtered)
    assert filtered[:2] == HEADER
    assert STUDENT_FRAME in filtered
    assert filtered[-1] == MESSAGE
    assert "backprop_checks" not in text
    assert "HIDDEN" not in text
    assert "The hidden test's own lines are not shown." in text


def test_visible_call_drops_hidden_context():
    hidden = hidden_line_numbers(TEST_CELL, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
    filtered = filter_traceback(HEADER + [VISIBLE_CALL_FRAME, STUDENT_FRAME, MESSAGE], 5, hidden)
    text = "\n".join(filtered)
    assert "DW, DB = exercise1(W, B, X, Z1" in text
    assert "# The gradient DW[0]" in text
    assert "backprop_checks" not in text
    assert "HIDDEN" not in text
    assert STUDENT_FRAME in filtered


def test_other_cells_traceback_unchanged():
    traceback = HEADER + [STUDENT_FRAME, MESSAGE]
    assert filter_traceback(traceback, 9, {3, 4}) == traceback


def test_cell_description_from_comment():
    assert cell_description(TEST_CELL) == "The gradient DW[0] of the weights of layer 1"
    assert cell_description("x = 1") == ""
