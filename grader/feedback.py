"""Student feedback without hidden tests: an nbconvert preprocessor for nbgrader's generate_feedback.

nbgrader 0.9.6 writes the autograded notebook to HTML as it is, so the feedback would
show the source of every hidden test and tracebacks through the hidden checks' module
(its source lines and its absolute path). nbgrader_config.py adds FeedbackPreprocessor
after nbgrader's GetGrades, so that every feedback page, also one made by a plain
`nbgrader generate_feedback`, gets:

- the test cells' source without the region between ``### BEGIN HIDDEN TESTS`` and
  ``### END HIDDEN TESTS``;
- tracebacks without the frames of the hidden checks and without hidden lines, but with
  every frame of the student's own code and the final message;
- a table at the top with the points per exercise and test cell, and the message that
  explains each lost point.
"""

import html
import re

from nbconvert.preprocessors import Preprocessor
from nbformat.v4 import new_markdown_cell
from traitlets import Bool, Unicode

# ANSI colour codes, which IPython puts into every traceback line.
ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")

# A frame's first line: "Cell In[13], line 21" or "File /path/backprop_checks.py:130, in f(...)".
CELL_FRAME = re.compile(r"^Cell In\[(?P<count>\d+)\], line \d+")

# A source line of a frame: "---> 21 code" for the line that raised, "     20 code" around it.
FRAME_LINE = re.compile(r"^(?P<arrow>-*>)?\s*(?P<number>\d+)(\s|$)")

HIDDEN_CHECKS_MODULE = "backprop_checks.py"

# Grade cells are named ex1_* and ex2_* in the source notebook.
EXERCISES = {"ex1": "Exercise 1", "ex2": "Exercise 2"}


def exercise_of(cell_id):
    """Return the exercise a grade cell belongs to, e.g. "ex1_dw0" -> "Exercise 1"."""
    return EXERCISES.get(cell_id.split("_")[0], "Other")


# The first line of a test cell: "# The gradient DW[0] of the weights of layer 1 (2 points)".
DESCRIPTION = re.compile(r"^#\s*(?P<text>.*?)\s*(\(\d+ points?\))?\s*$")


def cell_description(source):
    """Return what a test cell checks, from the comment on its first line, or "" without one."""
    first_line = source.lstrip().split("\n", 1)[0]
    match = DESCRIPTION.match(first_line)
    return match["text"] if match else ""


def strip_ansi(text):
    return ANSI_CODE.sub("", text)


def error_message(cell):
    """Return the last error of a code cell as "AssertionError: message", or "" when it ran without one.

    Only the exception's type and message are used, the last line of a traceback,
    because the frames above it may show hidden tests.
    """
    errors = [output for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    if not errors:
        return ""
    name, message = errors[-1].get("ename", "Error"), errors[-1].get("evalue", "")
    return f"{name}: {message}" if message else name


def hidden_line_numbers(source, begin, end):
    """Return the 1-based numbers of the lines from a begin marker to its end marker, both included."""
    numbers, hidden = set(), False
    for number, line in enumerate(source.splitlines(), start=1):
        if begin in line:
            hidden = True
        if hidden:
            numbers.add(number)
        if end in line:
            hidden = False
    return numbers


def filter_frame(frame, hidden_numbers):
    """Return a traceback frame without its hidden lines, or None when the line that raised is hidden."""
    kept = []
    for line in frame.split("\n"):
        match = FRAME_LINE.match(strip_ansi(line))
        if match and int(match["number"]) in hidden_numbers:
            if match["arrow"]:
                return None
            continue
        kept.append(line)
    return "\n".join(kept)


def filter_traceback(traceback, execution_count, hidden_numbers):
    """Remove the hidden checks from an IPython traceback: a list of ANSI-coloured frames.

    Frames in the hidden checks' module go, and so do the hidden lines of the test cell
    itself (execution_count). The header, the student's frames and the final message stay.
    """
    kept_frames, removed = [], False
    for frame in traceback:
        plain = strip_ansi(frame).lstrip()
        header = plain.split("\n", 1)[0]
        if HIDDEN_CHECKS_MODULE in header:
            removed = True
            continue
        match = CELL_FRAME.match(header)
        if match and int(match["count"]) == execution_count and hidden_numbers:
            filtered = filter_frame(frame, hidden_numbers)
            removed = removed or filtered != frame
            if filtered is None:
                continue
            frame = filtered
        kept_frames.append(frame)
    if removed and kept_frames:
        kept_frames.insert(len(kept_frames) - 1, "(The hidden test's own lines are not shown.)\n")
    return kept_frames


def points_text(points):
    return f"{points:g}"


class FeedbackPreprocessor(Preprocessor):
    """Hide the hidden tests in a graded notebook and put a table of points on top.

    Runs after nbgrader's GetGrades, which stores each grade cell's score and points in
    its metadata.
    """

    # nbconvert's preprocessors are off unless enabled; this one must always run.
    enabled = Bool(True, help="whether to hide the hidden tests and add the table of points").tag(config=True)

    begin_hidden_tests = Unicode("### BEGIN HIDDEN TESTS", help="the line that starts a hidden test region").tag(
        config=True
    )
    end_hidden_tests = Unicode("### END HIDDEN TESTS", help="the line that ends a hidden test region").tag(config=True)

    def preprocess(self, nb, resources):
        rows = []
        for cell in nb.cells:
            grading = cell.get("metadata", {}).get("nbgrader", {})
            if cell.cell_type == "code":
                self.hide_hidden_tests(cell)
            if grading.get("grade") and "score" in grading:
                test = (grading["grade_id"], cell_description(cell.source))
                rows.append((test, grading["score"], grading["points"], error_message(cell)))
        if rows:
            nb.cells.insert(0, new_markdown_cell(summary_html(rows)))
        return nb, resources

    def hide_hidden_tests(self, cell):
        """Remove the hidden test region from a cell's source and its tracebacks."""
        hidden = hidden_line_numbers(cell.source, self.begin_hidden_tests, self.end_hidden_tests)
        if not hidden:
            return
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output["traceback"] = filter_traceback(output.get("traceback", []), cell.get("execution_count"), hidden)
        lines = cell.source.splitlines()
        cell.source = "\n".join(line for number, line in enumerate(lines, start=1) if number not in hidden).rstrip()


SUMMARY_STYLE = (
    ".grading-summary table { border-collapse: collapse; margin-bottom: 1em; }"
    " .grading-summary th, .grading-summary td { border-bottom: 1px solid #ccc; padding: 2px 10px;"
    " text-align: left; vertical-align: top; }"
)


def summary_html(rows):
    """Return an HTML table of ((cell id, description), score, points, message) rows, with a sum per exercise."""
    exercises = {}
    for (cell_id, _), score, points, _ in rows:
        total = exercises.setdefault(exercise_of(cell_id), [0, 0])
        total[0] += score
        total[1] += points

    lines = ['<div class="grading-summary">', f"<style>{SUMMARY_STYLE}</style>", "<h2>Your points</h2>", "<table>"]
    lines.append("<tr><th>exercise</th><th>points</th></tr>")
    for exercise, (score, points) in exercises.items():
        lines.append(f"<tr><td>{exercise}</td><td>{points_text(score)} / {points_text(points)}</td></tr>")
    lines.append("</table>")
    lines.append("<table>")
    lines.append("<tr><th>test</th><th>what it checks</th><th>points</th><th>why points were lost</th></tr>")
    for (cell_id, description), score, points, message in rows:
        reason = html.escape(message) if score < points else ""
        link = f'<a href="#{html.escape(cell_id)}">{html.escape(cell_id)}</a>'
        lines.append(
            f"<tr><td>{link}</td><td>{html.escape(description)}</td>"
            f"<td>{points_text(score)} / {points_text(points)}</td><td>{reason}</td></tr>"
        )
    lines.append("</table>")
    lines.append("</div>")
    return "\n".join(lines)
