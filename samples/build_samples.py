"""Build the sample submissions of the backprop homework from the release notebook.

Each file samples/answers/<student_id>.py contains one sample student's `exercise1` and
`exercise2`. This script copies release/backprop/backprop.ipynb, puts the source of each
function into the answer cell with the grade_id `exercise1_answer` or `exercise2_answer`,
and writes samples/submitted/<student_id>/backprop/backprop.ipynb. The student
`unanswered` has no answers file: its submission is a plain copy of the release notebook.

Run it after every change to the release notebook or to an answers file, and commit
the result:

    python samples/build_samples.py          # rebuild every sample
    python samples/build_samples.py --check  # exit 1 if a committed sample is stale
"""

import argparse
import ast
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

SAMPLES = Path(__file__).resolve().parent
RELEASE_NOTEBOOK = SAMPLES.parent / "release" / "backprop" / "backprop.ipynb"
ANSWERS = SAMPLES / "answers"
SUBMITTED = SAMPLES / "submitted"

UNANSWERED = "unanswered"
ANSWER_CELLS = {"exercise1_answer": "exercise1", "exercise2_answer": "exercise2"}


def read_functions(path):
    """Return {name: source} for the top-level functions of a Python file, without running it."""
    text = path.read_text()
    lines = text.splitlines()
    functions = {}
    for node in ast.parse(text, filename=str(path)).body:
        if isinstance(node, ast.FunctionDef):
            first = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
            functions[node.name] = "\n".join(lines[first - 1 : node.end_lineno])
    return functions


def build_notebook(answers_path, target):
    """Write the release notebook to target with its answer cells taken from answers_path."""
    functions = read_functions(answers_path)
    notebook = nbformat.read(RELEASE_NOTEBOOK, as_version=4)

    filled = set()
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in ANSWER_CELLS:
            name = ANSWER_CELLS[grade_id]
            if name not in functions:
                raise ValueError(f"{answers_path} defines no function {name}.")
            cell.source = functions[name]
            filled.add(grade_id)

    missing = set(ANSWER_CELLS) - filled
    if missing:
        raise ValueError(f"{RELEASE_NOTEBOOK} has no cell with grade_id {', '.join(sorted(missing))}.")

    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)


def build_all(output):
    """Build every sample into output/<student_id>/backprop/backprop.ipynb."""
    for answers_path in sorted(ANSWERS.glob("*.py")):
        build_notebook(answers_path, output / answers_path.stem / "backprop" / "backprop.ipynb")

    unanswered = output / UNANSWERED / "backprop" / "backprop.ipynb"
    unanswered.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RELEASE_NOTEBOOK, unanswered)


def stale_files(built, committed):
    """Return the paths, relative to the sample folders, that differ between built and committed."""
    built_files = {path.relative_to(built) for path in built.rglob("*") if path.is_file()}
    committed_files = {path.relative_to(committed) for path in committed.rglob("*") if path.is_file()}
    stale = []
    for path in sorted(built_files | committed_files):
        if path not in built_files or path not in committed_files:
            stale.append(path)
        elif not filecmp.cmp(built / path, committed / path, shallow=False):
            stale.append(path)
    return stale


def main():
    """Rebuild the samples, or with --check report the committed ones that are stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="build into a temporary folder and exit with status 1 if samples/submitted differs",
    )
    arguments = parser.parse_args()

    if not arguments.check:
        if SUBMITTED.exists():
            shutil.rmtree(SUBMITTED)
        build_all(SUBMITTED)
        return 0

    with tempfile.TemporaryDirectory() as temporary:
        built = Path(temporary)
        build_all(built)
        stale = stale_files(built, SUBMITTED)

    if stale:
        for path in stale:
            print(f"stale: samples/submitted/{path}", file=sys.stderr)
        print("Run `python samples/build_samples.py` and commit samples/submitted/.", file=sys.stderr)
        return 1
    print("samples/submitted/ is up to date.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
