"""The pipeline's review finds autograd in Exercise 1 and references to the grader's modules."""

import re

import backprop_checks
import backprop_integrity
import nbformat
import pytest

from grader import review
from grader.review import autograd_evidence, autograd_names_in, grader_modules_in

AUTOGRAD_SOURCES = [
    ("backward", "err = ((Y - T) ** 2).mean()\nerr.backward()\nreturn W[0].grad", ["backward", "grad"]),
    ("requires_grad", "w = torch.tensor(W[0], requires_grad=True)", ["requires_grad"]),
    ("requires_grad_", "w = torch.from_numpy(W[0]).requires_grad_()", ["requires_grad_"]),
    ("autograd.grad", "g = torch.autograd.grad(err, w)", ["autograd", "grad"]),
    ("torch.func", "from torch.func import grad\ng = grad(f)(w)", ["torch.func"]),
    ("torch.func attribute", "g = torch.func.vjp(f, w)", ["torch.func", "vjp"]),
    ("import torch.autograd", "import torch.autograd as ag", ["torch.autograd"]),
    ("syntax error", "err.backward(\n", ["backward"]),
]


@pytest.mark.parametrize("source, expected", [case[1:] for case in AUTOGRAD_SOURCES], ids=[case[0] for case in AUTOGRAD_SOURCES])
def test_autograd_use_is_found(source, expected):
    assert autograd_names_in(source) == expected


@pytest.mark.parametrize(
    "source",
    [
        "delta = 2 * (Y - T) / Y.size  # the backward pass by hand, no autograd",
        '"""Compute the gradient like backward() would."""\ngradient = np.gradient(Y)',
        "grad = A1.T @ delta\nbackward = True",
    ],
    ids=["comment", "docstring and np.gradient", "variable names"],
)
def test_code_by_hand_is_not_flagged(source):
    assert autograd_names_in(source) == []


def test_grader_module_is_found():
    assert grader_modules_in("import backprop_checks as b") == ["backprop_checks"]
    assert grader_modules_in("def exercise1(W, B):\n    return W, B") == []


def test_messages_match_the_checks():
    """The review recognises the hidden tests' messages by their start, which must stay in step."""
    snapshot = backprop_integrity.Snapshot()
    snapshot.libraries["numpy"]["allclose"] = None

    assert review.AUTOGRAD_MESSAGE == backprop_checks.AUTOGRAD_MESSAGE
    with pytest.raises(AssertionError, match=f"^{re.escape(review.TAMPERING_MESSAGE)}numpy.allclose, which"):
        backprop_integrity.assert_untampered(snapshot)


def autograded_notebook(answer, error_message=None):
    """Return a notebook with an exercise1 answer cell and one Exercise 1 grade cell, as autograde leaves them."""
    answer_cell = nbformat.v4.new_code_cell(answer, metadata={"nbgrader": {"grade_id": "exercise1_answer", "solution": True}})
    test_cell = nbformat.v4.new_code_cell("check()", metadata={"nbgrader": {"grade_id": "ex1_norm", "grade": True}})
    if error_message:
        test_cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue=error_message, traceback=[])]
    return nbformat.v4.new_notebook(cells=[answer_cell, test_cell])


def test_autograd_seen_by_tests_is_evidence():
    notebook = autograded_notebook("def exercise1(*arguments):\n    return helper(*arguments)", "exercise1 uses PyTorch's automatic differentiation (it calls torch.autograd.grad), ...")
    assert autograd_evidence(notebook) == "the hidden tests saw exercise1 run PyTorch's autograd"


def test_autograd_in_code_is_evidence():
    notebook = autograded_notebook("def exercise1(W):\n    w = torch.tensor(W[0], requires_grad=True)")
    assert autograd_evidence(notebook) == "the code of exercise1 refers to requires_grad"


def test_answer_by_hand_is_no_evidence():
    notebook = autograded_notebook("def exercise1(W, B, X, Y, T):\n    delta = 2 * (Y - T) / Y.size", "DW[0] is wrong.")
    assert autograd_evidence(notebook) is None
