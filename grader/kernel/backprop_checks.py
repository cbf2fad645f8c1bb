"""Checks that the hidden tests of the backprop notebook run inside the grading kernel.

Students never receive this module. The grading pipeline puts this folder on the
kernel's PYTHONPATH, and the source notebook reaches it through a symbolic link that
nbgrader's ignore list keeps out of the release.

Every reference gradient comes from PyTorch autograd in float64, computed here at test
time; nothing is read from the instructor's solution. Each check raises AssertionError
with a message for the student, which nbgrader records as a failed test cell.
"""

import numpy as np
import torch

import utils

# The handout's printed check, |dE/dW1[0, 0]|, in float64 and as float32 prints it.
HANDOUT_NORM = 1.5422821523392451
HANDOUT_NORM_FLOAT32 = 1.5422821

# float64 results agree with the handout to rounding; float32 may differ in the last
# digit, because PyTorch can sum in another order than NumPy.
NORM_TOLERANCE_FLOAT64 = 1e-12
NORM_TOLERANCE_FLOAT32 = 1e-6

# A gradient counts as right when it matches the float64 reference to float32 precision,
# so an answer computed in float32 loses only the printed-value check, which asks for
# float64. Every typical mistake is off by far more (a factor, a sign, a missing term).
GRADIENT_RTOL = 1e-4
GRADIENT_ATOL = 1e-5

HANDOUT_WIDTHS = (4, 6, 6, 6, 1)

# Fresh problems: (batch size, layer widths d0..d4, seed).
BATCH_CASES = [(2, HANDOUT_WIDTHS, 11), (7, HANDOUT_WIDTHS, 12)]
WIDTH_CASES = [(3, (5, 8, 3, 7, 2), 21), (4, (2, 3, 9, 4, 3), 22)]


def handout_problem():
    """Return (W, B, X, T) of the handout as float64 NumPy arrays."""
    X, T = utils.getdata()
    W, B = utils.getparams()
    return W, B, X, T


def random_problem(batch_size, widths, seed):
    """Draw (W, B, X, T) for a 3-hidden-layer network with layer widths d0..d4.

    X is (batch_size, d0) and T is (batch_size, d4). Weights are scaled by
    1/sqrt(fan_in) so that a fair share of the ReLU units is active.
    """
    rng = np.random.default_rng(seed)
    W = [rng.normal(size=(fan_in, fan_out)) / np.sqrt(fan_in) for fan_in, fan_out in zip(widths, widths[1:])]
    B = [rng.normal(scale=0.5, size=fan_out) for fan_out in widths[1:]]
    X = rng.normal(size=(batch_size, widths[0]))
    T = rng.normal(size=(batch_size, widths[-1]))
    return W, B, X, T


def forward(W, B, X):
    """Run the forward pass in NumPy and return (Z1, A1, Z2, A2, Z3, A3, Y)."""
    Z1 = X.dot(W[0]) + B[0]
    A1 = np.maximum(0, Z1)
    Z2 = A1.dot(W[1]) + B[1]
    A2 = np.maximum(0, Z2)
    Z3 = A2.dot(W[2]) + B[2]
    A3 = np.maximum(0, Z3)
    Y = A3.dot(W[3]) + B[3]
    return Z1, A1, Z2, A2, Z3, A3, Y


def reference_gradients(W, B, X, T):
    """Differentiate the mean squared error with PyTorch autograd in float64.

    Returns:
        (DW, DB, err): the gradients as lists of float64 arrays shaped like W and B,
        and the error as a float.
    """
    weights = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in W]
    biases = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in B]
    A = torch.tensor(X, dtype=torch.float64)
    for k in range(3):
        A = torch.relu(A @ weights[k] + biases[k])
    Y = A @ weights[3] + biases[3]
    err = ((Y - torch.tensor(T, dtype=torch.float64)) ** 2).mean()

    gradients = torch.autograd.grad(err, weights + biases)
    DW = [g.numpy() for g in gradients[:4]]
    DB = [g.numpy() for g in gradients[4:]]
    return DW, DB, err.item()


def call_exercise1(exercise1, W, B, X, T):
    """Call the student's exercise1 on copies of a problem and return (DW, DB).

    Raises:
        AssertionError: if the result is not two lists of 4 arrays each.
    """
    W = [w.copy() for w in W]
    B = [b.copy() for b in B]
    Z1, A1, Z2, A2, Z3, A3, Y = forward(W, B, X)
    result = exercise1(W, B, X.copy(), Z1, A1, Z2, A2, Z3, A3, Y, T.copy())

    assert isinstance(result, (tuple, list)) and len(result) == 2, (
        f"exercise1 must return a pair (DW, DB), but it returned {type(result).__name__}."
    )
    DW, DB = result
    for name, gradients in (("DW", DW), ("DB", DB)):
        assert isinstance(gradients, (tuple, list)) and len(gradients) == 4, (
            f"{name} must be a list of 4 arrays, one per layer, but it is {type(gradients).__name__}"
            f"{f' of length {len(gradients)}' if hasattr(gradients, '__len__') else ''}."
        )
    return [np.asarray(g, dtype=np.float64) for g in DW], [np.asarray(g, dtype=np.float64) for g in DB]


def assert_gradient_close(name, actual, expected, rtol=GRADIENT_RTOL, atol=GRADIENT_ATOL):
    """Assert that one gradient array has the expected shape and values.

    `name` is the array's name in the student's code, for example "DW[2]".
    """
    assert actual.shape == expected.shape, (
        f"{name} has shape {actual.shape}, but the parameter it belongs to has shape {expected.shape}."
    )
    assert np.all(np.isfinite(actual)), f"{name} contains NaN or infinite values."

    difference = np.abs(actual - expected)
    allowed = atol + rtol * np.abs(expected)
    if np.any(difference > allowed):
        index = np.unravel_index(np.argmax(difference - allowed), difference.shape)
        raise AssertionError(
            f"{name} is wrong: at index {tuple(int(i) for i in index)} it is {actual[index]:.10g}, "
            f"expected {expected[index]:.10g}."
        )


def check_exercise1_norm(exercise1):
    """Check the printed value |DW[0][0, 0]| on the handout data to float64 precision."""
    DW, _ = call_exercise1(exercise1, *handout_problem())
    value = float(np.linalg.norm(DW[0][0, 0]))
    assert abs(value - HANDOUT_NORM) <= NORM_TOLERANCE_FLOAT64, (
        f"|DW[0][0, 0]| is {value!r}, expected {HANDOUT_NORM!r}. If only the last digits differ, "
        "compute in float64, NumPy's default."
    )


def check_exercise1_parameter(exercise1, name, k):
    """Check one gradient, DW[k] or DB[k], entry by entry on the handout data."""
    W, B, X, T = handout_problem()
    DW, DB = call_exercise1(exercise1, W, B, X, T)
    expected_DW, expected_DB, _ = reference_gradients(W, B, X, T)
    if name == "DW":
        assert_gradient_close(f"DW[{k}]", DW[k], expected_DW[k])
    elif name == "DB":
        assert_gradient_close(f"DB[{k}]", DB[k], expected_DB[k])
    else:
        raise ValueError(f"invalid gradient name {name!r}: expected 'DW' or 'DB'")


def check_exercise1_on_fresh_problems(exercise1, cases):
    """Check every gradient on freshly drawn problems of other batch sizes or widths."""
    for batch_size, widths, seed in cases:
        W, B, X, T = random_problem(batch_size, widths, seed)
        DW, DB = call_exercise1(exercise1, W, B, X, T)
        expected_DW, expected_DB, _ = reference_gradients(W, B, X, T)
        where = f" (batch size {batch_size}, layer widths {widths})"
        for k in range(4):
            assert_gradient_close(f"DW[{k}]{where}", DW[k], expected_DW[k])
            assert_gradient_close(f"DB[{k}]{where}", DB[k], expected_DB[k])


def to_torch_problem(W, B, X, T, dtype=torch.float32):
    """Convert a NumPy problem as the notebook does: tensors for X, T and Parameters for W, B."""
    X = torch.tensor(X, dtype=dtype)
    T = torch.tensor(T, dtype=dtype)
    W = [torch.nn.Parameter(torch.tensor(w, dtype=dtype)) for w in W]
    B = [torch.nn.Parameter(torch.tensor(b, dtype=dtype)) for b in B]
    return W, B, X, T


def call_exercise2(exercise2, W, B, X, T):
    """Call the student's exercise2 and return its error, checked to be a one-element tensor."""
    err = exercise2(W, B, X, T)
    assert isinstance(err, torch.Tensor), (
        f"exercise2 must return a torch.Tensor, but it returned {type(err).__name__}."
    )
    assert err.numel() == 1, f"exercise2 must return a scalar tensor, but its shape is {tuple(err.shape)}."
    return err


def check_exercise2_norm(exercise2):
    """Check the printed value |W[0].grad[0, 0]| after err.backward() on the handout data."""
    W, B, X, T = to_torch_problem(*handout_problem())
    err = call_exercise2(exercise2, W, B, X, T)
    assert err.requires_grad, (
        "The error returned by exercise2 does not require a gradient, so err.backward() cannot run."
    )
    err.backward()
    assert W[0].grad is not None, "After err.backward(), W[0].grad is None: the error does not depend on W[0]."
    value = float(np.linalg.norm(W[0].grad[0, 0].item()))
    assert abs(value - HANDOUT_NORM_FLOAT32) <= NORM_TOLERANCE_FLOAT32, (
        f"|W[0].grad[0, 0]| is {value!r}, expected {HANDOUT_NORM_FLOAT32} within {NORM_TOLERANCE_FLOAT32}."
    )


def check_exercise2_error(exercise2):
    """Check the value of the error on the handout data against the float64 reference."""
    W, B, X, T = handout_problem()
    _, _, expected = reference_gradients(W, B, X, T)
    err = call_exercise2(exercise2, *to_torch_problem(W, B, X, T))
    value = err.item()
    assert abs(value - expected) <= GRADIENT_ATOL + GRADIENT_RTOL * abs(expected), (
        f"The error is {value:.8g}, expected {expected:.8g}."
    )


def gradients_of(err, parameters, names):
    """Differentiate err with respect to each parameter, naming any it does not reach."""
    assert err.requires_grad, (
        "The error returned by exercise2 is not connected to W and B: PyTorch cannot differentiate it."
    )
    gradients = torch.autograd.grad(err, parameters, allow_unused=True)
    unreached = [name for name, gradient in zip(names, gradients) if gradient is None]
    assert not unreached, (
        f"The error does not depend on {', '.join(unreached)}: "
        "compute it from the given W and B, not from copies of them."
    )
    return [g.detach().double().numpy() for g in gradients]


def check_exercise2_gradients(exercise2, cases):
    """Check that err's graph reaches every W[k] and B[k], and that its gradients are right."""
    names = [f"W[{k}]" for k in range(4)] + [f"B[{k}]" for k in range(4)]
    for batch_size, widths, seed in cases:
        if seed is None:
            W, B, X, T = handout_problem()
            where = ""
        else:
            W, B, X, T = random_problem(batch_size, widths, seed)
            where = f" (batch size {batch_size}, layer widths {widths})"
        expected_DW, expected_DB, _ = reference_gradients(W, B, X, T)

        weights, biases, inputs, targets = to_torch_problem(W, B, X, T)
        err = call_exercise2(exercise2, weights, biases, inputs, targets)
        gradients = gradients_of(err, weights + biases, names)

        for name, actual, expected in zip(names, gradients, expected_DW + expected_DB):
            assert_gradient_close(f"The gradient of {name}{where}", actual, expected)
