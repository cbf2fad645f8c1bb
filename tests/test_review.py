"""The pipeline's review finds autograd in Exercise 1 and references to the grader's modules."""

import pytest

from grader.review import autograd_names_in, grader_modules_in

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
