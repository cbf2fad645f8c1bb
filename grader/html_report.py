"""The instructor report: one self-contained HTML file with the class's scores and mistakes.

The page loads nothing: its style is inline and the histogram is a PNG drawn with
matplotlib and embedded as base64, so it opens offline, from an email or a USB stick.
"""

import base64
import html
import io
import logging
import re
import statistics
from collections import Counter
from datetime import datetime, timezone

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)

from grader import ASSIGNMENT  # noqa: E402

log = logging.getLogger(__name__)

# The histogram's colour appears nowhere else on the page, so that a test can find the
# histogram in a screenshot.
BAR_COLOR = "#2f6db5"

# Numbers that differ from student to student in otherwise equal messages: decimal
# values ("it is -1.397117748") and index tuples ("at index (3, 3)", "shapes (1,1)").
# Whole numbers stay, because they often are the diagnosis ("off by a factor 2").
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+(?:e[-+]?\d+)?|e[-+]?\d+)(?!\w|\.\d)", re.IGNORECASE)
INTEGER_TUPLE = re.compile(r"\((?:\s*-?\d+\s*,)+\s*(?:-?\d+\s*)?\)")

STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; color: #222; margin: 2em auto; max-width: 60em; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 2px solid #8fa9cc; padding-bottom: 0.2em; }
.generated { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border-bottom: 1px solid #ccc; padding: 0.25em 0.8em; text-align: left; vertical-align: top; }
th { background: #eef2f8; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
#pass-rates td:nth-child(3) { white-space: nowrap; }
.bar { display: inline-block; height: 0.8em; background: #6f95c8; print-color-adjust: exact; -webkit-print-color-adjust: exact; }
.none { color: #666; font-style: italic; }
img { max-width: 100%; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } tr, img { break-inside: avoid; } }
"""


def mistake_pattern(message):
    """Return a message with its student-specific numbers replaced by "…", to group equal mistakes."""
    return NUMBER.sub("…", INTEGER_TUPLE.sub("(…)", message))


def histogram_png(totals, max_total):
    """Draw the histogram of total scores, one bar per whole point, and return it as PNG bytes."""
    figure, axes = plt.subplots(figsize=(8, 3.2), dpi=100)
    edges = [k - 0.5 for k in range(int(max_total) + 2)]
    axes.hist(totals, bins=edges, color=BAR_COLOR, edgecolor="white")
    axes.set_xlim(-0.5, max_total + 0.5)
    axes.set_xlabel(f"total points (of {max_total:g})")
    axes.set_ylabel("students")
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def pass_rates(results):
    """Return [(cell id, exercise, max points, passed, graded)] per grade cell, over the graded students."""
    rates = {}
    for result in results:
        for cell in result.cells:
            entry = rates.setdefault(cell.cell_id, [cell.exercise, cell.max_points, 0, 0])
            entry[2] += cell.passed
            entry[3] += 1
    return [(cell_id, *entry) for cell_id, entry in rates.items()]


def frequent_mistakes(results):
    """Return [(pattern, students, cell ids, example)] of the failed tests' messages, most students first."""
    groups = {}
    for result in results:
        for cell in result.cells:
            if cell.message:
                group = groups.setdefault(mistake_pattern(cell.message), {"students": set(), "cells": Counter(), "example": cell.message})
                group["students"].add(result.student_id)
                group["cells"][cell.cell_id] += 1
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]["students"]), item[0]))
    return [(pattern, len(g["students"]), sorted(g["cells"]), g["example"]) for pattern, g in ordered]


def escape(value):
    return html.escape(str(value))


def points(value):
    return f"{value:g}"


def table(table_id, headers, rows, numeric=()):
    """Return an HTML table; the columns whose index is in `numeric` are right-aligned."""
    head = "".join(f'<th{" class=number" if i in numeric else ""}>{escape(h)}</th>' for i, h in enumerate(headers))
    lines = [f'<table id="{table_id}">', f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    for row in rows:
        cells = "".join(f'<td{" class=number" if i in numeric else ""}>{value}</td>' for i, value in enumerate(row))
        lines.append(f"<tr>{cells}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def summary_section(results, max_total):
    graded = [r.total for r in results if r.graded]
    rows = [
        ("students in the gradebook", len(results)),
        ("graded", len(graded)),
        ("not graded (0 points in grades.csv)", len(results) - len(graded)),
    ]
    if graded:
        rows += [
            ("mean of the graded totals", f"{statistics.mean(graded):.1f} / {points(max_total)}"),
            ("median", f"{statistics.median(graded):g} / {points(max_total)}"),
            ("full marks", sum(total >= max_total for total in graded)),
        ]
    return "<h2>Summary</h2>\n" + table("summary", ["", "value"], [(escape(k), escape(v)) for k, v in rows], numeric={1})


def histogram_section(results, max_total):
    graded = [r.total for r in results if r.graded]
    parts = ["<h2>Total scores</h2>"]
    if not graded:
        return parts[0] + '\n<p class="none">No graded submissions.</p>'
    encoded = base64.b64encode(histogram_png(graded, max_total)).decode("ascii")
    parts.append(
        f'<img id="histogram" src="data:image/png;base64,{encoded}" width="800" height="320" '
        f'alt="Histogram of the total scores of {len(graded)} graded submissions">'
    )
    counts = sorted(Counter(graded).items())
    parts.append(f"<p>{len(graded)} graded submissions; students who were not graded are listed below.</p>")
    parts.append(table("score-counts", ["total points", "students"], [(points(t), n) for t, n in counts], numeric={0, 1}))
    return "\n".join(parts)


def pass_rate_section(results, descriptions):
    rows = []
    for cell_id, exercise, max_points, passed, graded in pass_rates(results):
        rate = 100 * passed / graded
        bar = f'<span class="bar" style="width: {rate * 1.2:.0f}px"></span>'
        description = escape(descriptions.get(cell_id, ""))
        rows.append((escape(cell_id), description, escape(exercise), points(max_points), passed, graded, f"{rate:.0f} %", bar))
    headers = ["test cell", "what it checks", "exercise", "points", "passed", "graded", "pass rate", ""]
    return "<h2>Pass rate of every test cell</h2>\n" + table("pass-rates", headers, rows, numeric={3, 4, 5, 6})


def mistakes_section(results):
    mistakes = frequent_mistakes(results)
    if not mistakes:
        return '<h2>Most frequent mistakes</h2>\n<p class="none">No test failed.</p>'
    rows = [
        (students, escape(", ".join(cells)), escape(pattern), escape(example))
        for pattern, students, cells, example in mistakes
    ]
    intro = "<p>The failed tests' messages, grouped where they differ only in numbers (shown as …).</p>"
    headers = ["students", "test cells", "message", "one example"]
    return "<h2>Most frequent mistakes</h2>\n" + intro + "\n" + table("mistakes", headers, rows, numeric={0})


def problems_section(results):
    rows = []
    for result in results:
        reasons = list(result.problems)
        if result.timed_out_cells:
            reasons.append(f"timed out in {', '.join(result.timed_out_cells)}, which got 0 points")
        if reasons:
            rows.append((escape(result.student_id), escape(result.name), escape("; ".join(reasons))))
    title = "<h2>Grading failed or timed out</h2>"
    if not rows:
        return title + '\n<p class="none">Every submission was graded without a timeout.</p>'
    intro = "<p>Check these students by hand: their grade is 0, or lacks the points of the cells that timed out.</p>"
    return title + "\n" + intro + "\n" + table("not-graded", ["student", "name", "reason"], rows)


def left_out_section(left_out, moodle_file):
    if not left_out:
        return ""
    rows = [(escape(r.student_id), escape(r.name), escape(reason)) for r, reason in left_out]
    intro = f"<p>{escape(moodle_file)} has no row for these students; enter their grades in Moodle by hand or fix the roster.</p>"
    return "<h2>Not in the grade-import file</h2>\n" + intro + "\n" + table("left-out", ["student", "name", "reason"], rows)


def render_report(results, max_total, descriptions, left_out=(), moodle_file="moodle_grades.csv"):
    """Return the report's HTML for the students' results (see grader.exports.read_results).

    `descriptions` maps grade cell ids to what each test checks.
    """
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        summary_section(results, max_total),
        histogram_section(results, max_total),
        pass_rate_section(results, descriptions),
        mistakes_section(results),
        problems_section(results),
        left_out_section(left_out, moodle_file),
    ]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>Grading report: {escape(ASSIGNMENT)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>Grading report: {escape(ASSIGNMENT)}</h1>",
        f'<p class="generated">Generated {generated} from the gradebook.</p>',
        *sections,
        "</body>",
        "</html>",
    ])


def write_report(results, path, max_total, descriptions, left_out=(), moodle_file="moodle_grades.csv"):
    """Write the instructor report to `path`; see render_report."""
    path.write_text(render_report(results, max_total, descriptions, left_out, moodle_file), encoding="utf-8")
    log.info("Wrote %s", path)
