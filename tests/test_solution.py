"""The reference solution against PyTorch autograd, finite differences and the handout's numbers."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import solution
import utils

HANDOUT_NORM = 1.5422821523392451

# Centred differences with step 1e-6 have an error of about 1e-9 on these functions.
FINITE_DIFFERENCE_STEP = 1e-6
FINITE_DIFFERENCE_TOLERANCE = 1e-6
AUTOGRAD_RTOL = 1e-10
AUTOGRAD_ATOL = 1e-12

# (batch size, layer widths d0..d4)
SHAPES = [(1, (4, 6, 6, 6, 1)), (5, (4, 6, 6, 6, 1)), (3, (2, 7, 3, 5, 4)), (8, (6, 1, 9, 2, 3))]


def random_problem(batch_size, widths, seed):
    rng = np.random.default_rng(seed)
    W = [rng.normal(size=(a, b)) for a, b in zip(widths, widths[1:])]
    B = [rng.normal(size=b) for b in widths[1:]]
    X = rng.normal(size=(batch_size, widths[0]))
    T = rng.normal(size=(batch_size, widths[-1]))
    return W, B, X, T


def forward(W, B, X):
    Z1 = X.dot(W[0]) + B[0]
    A1 = np.maximum(0, Z1)
    Z2 = A1.dot(W[1]) + B[1]
    A2 = np.maximum(0, Z2)
    Z3 = A2.dot(W[2]) + B[2]
    A3 = np.maximum(0, Z3)
    Y = A3.dot(W[3]) + B[3]
    return Z1, A1, Z2, A2, Z3, A3, Y


def error(W, B, X, T):
    return np.mean((forward(W, B, X)[-1] - T) ** 2)


def manual_gradients(W, B, X, T):
    return solution.exercise1(W, B, X, *forward(W, B, X), T)


def autograd_gradients(W, B, X, T):
    weights = [torch.tensor(w, requires_grad=True) for w in W]
    biases = [torch.tensor(b, requires_grad=True) for b in B]
    err = solution.exercise2(weights, biases, torch.tensor(X), torch.tensor(T))
    err.backward()
    return [w.grad.numpy() for w in weights], [b.grad.numpy() for b in biases], err


def finite_difference(W, B, X, T, parameter, index):
    """Return the centred difference of the error along one entry of one parameter array."""
    original = parameter[index]
    parameter[index] = original + FINITE_DIFFERENCE_STEP
    above = error(W, B, X, T)
    parameter[index] = original - FINITE_DIFFERENCE_STEP
    below = error(W, B, X, T)
    parameter[index] = original
    return (above - below) / (2 * FINITE_DIFFERENCE_STEP)


@pytest.mark.parametrize("batch_size, widths", SHAPES)
def test_exercise2_forward_matches_numpy(batch_size, widths):
    W, B, X, T = random_problem(batch_size, widths, seed=batch_size)
    _, _, err = autograd_gradients(W, B, X, T)
    assert err.dim() == 0
    assert err.item() == pytest.approx(error(W, B, X, T), rel=1e-12)


@pytest.mark.parametrize("batch_size, widths", SHAPES)
def test_exercise1_matches_autograd(batch_size, widths):
    W, B, X, T = random_problem(batch_size, widths, seed=batch_size)
    DW, DB = manual_gradients(W, B, X, T)
    expected_DW, expected_DB, _ = autograd_gradients(W, B, X, T)
    for k in range(4):
        assert DW[k].shape == W[k].shape
        assert DB[k].shape == B[k].shape
        np.testing.assert_allclose(DW[k], expected_DW[k], rtol=AUTOGRAD_RTOL, atol=AUTOGRAD_ATOL, err_msg=f"DW[{k}]")
        np.testing.assert_allclose(DB[k], expected_DB[k], rtol=AUTOGRAD_RTOL, atol=AUTOGRAD_ATOL, err_msg=f"DB[{k}]")


@pytest.mark.parametrize("batch_size, widths", SHAPES)
def test_exercise1_matches_finite_differences(batch_size, widths):
    W, B, X, T = random_problem(batch_size, widths, seed=100 + batch_size)
    DW, DB = manual_gradients(W, B, X, T)
    for name, parameters, gradients in (("W", W, DW), ("B", B, DB)):
        for k, (parameter, gradient) in enumerate(zip(parameters, gradients)):
            for index in np.ndindex(parameter.shape):
                estimate = finite_difference(W, B, X, T, parameter, index)
                assert gradient[index] == pytest.approx(estimate, abs=FINITE_DIFFERENCE_TOLERANCE), f"{name}[{k}]{index}"


def test_exercise1_does_not_change_its_arguments():
    W, B, X, T = random_problem(4, (4, 6, 6, 6, 1), seed=7)
    arguments = [W, B, X, *forward(W, B, X), T]
    copies = [[a.copy() for a in x] if isinstance(x, list) else x.copy() for x in arguments]
    solution.exercise1(*arguments)
    for argument, copy in zip(arguments, copies):
        if isinstance(argument, list):
            assert all(np.array_equal(a, c) for a, c in zip(argument, copy))
        else:
            assert np.array_equal(argument, copy)


def test_utils_returns_handout_shapes_as_float64():
    X, T = utils.getdata()
    W, B = utils.getparams()
    assert X.shape == (1, 4)
    assert T.shape == (1, 1)
    assert [w.shape for w in W] == [(4, 6), (6, 6), (6, 6), (6, 1)]
    assert [b.shape for b in B] == [(6,), (6,), (6,), (1,)]
    assert all(a.dtype == np.float64 for a in [X, T, *W, *B])


# The handout's data file, where the course's shared folder lies beside the repository.
HANDOUT_DATA = Path(__file__).resolve().parents[2] / "shared" / "handout" / "data.json"


@pytest.mark.skipif(not HANDOUT_DATA.is_file(), reason="the handout's data.json is not beside the repository")
def test_utils_matches_handout_data_exactly():
    data = json.loads(HANDOUT_DATA.read_text())
    X, T = utils.getdata()
    W, B = utils.getparams()
    assert np.array_equal(X, data["X"])
    assert np.array_equal(T, data["T"])
    for k in range(4):
        assert np.array_equal(W[k], data["W"][k]), f"W[{k}]"
        assert np.array_equal(B[k], data["B"][k]), f"B[{k}]"


def test_utils_returns_new_arrays_each_call():
    W, _ = utils.getparams()
    W[0][0, 0] = 100.0
    assert utils.getparams()[0][0][0, 0] == -0.339


def test_handout_forward_values():
    X, T = utils.getdata()
    W, B = utils.getparams()
    Z1, A1, Z2, A2, Z3, A3, Y = forward(W, B, X)
    assert Y.item() == pytest.approx(1.8248556, abs=5e-8)
    assert error(W, B, X, T) == pytest.approx(5.7785, abs=5e-5)
    assert [int((Z > 0).sum()) for Z in (Z1, Z2, Z3)] == [5, 4, 3]


def test_handout_printed_value_exercise1():
    X, T = utils.getdata()
    W, B = utils.getparams()
    DW, _ = manual_gradients(W, B, X, T)
    assert DW[0][0, 0] == -HANDOUT_NORM
    assert str(np.linalg.norm(DW[0][0, 0])) == "1.5422821523392451"


def test_handout_printed_value_exercise2():
    X, T = utils.getdata()
    W, B = utils.getparams()
    X, T = torch.Tensor(X), torch.Tensor(T)
    W = [torch.nn.Parameter(torch.Tensor(w)) for w in W]
    B = [torch.nn.Parameter(torch.Tensor(b)) for b in B]
    solution.exercise2(W, B, X, T).backward()
    printed = np.linalg.norm(W[0].grad[0, 0])
    assert str(printed) == "1.5422821"
    assert abs(float(printed) - 1.5422821) < 1e-6
