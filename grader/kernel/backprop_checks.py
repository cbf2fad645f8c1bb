"""Checks that the hidden tests of the backprop notebook run inside the grading kernel.

Students never receive this module. The grading pipeline puts this folder on the
kernel's PYTHONPATH, and the source notebook reaches it through a symbolic link that
nbgrader's ignore list keeps out of the release. The grading kernel imports it at
startup, before the student's code runs (see backprop_integrity).

Every reference gradient comes from PyTorch autograd in float64, computed here at test
time; nothing is read from the instructor's solution. Each check raises AssertionError
with a message for the student, which nbgrader records as a failed test cell. Each check
also calls the student's function on fresh data, so that returning the handout's numbers
fails, and names the likely mistake behind a wrong value (see backprop_mistakes).
"""

import functools
import sys

# Bound here, so that student code replacing these builtins does not change the checks.
from builtins import AssertionError, ValueError, abs, any, bool, enumerate, float, getattr, int, isinstance, len, list, range, tuple, type, zip

import numpy as np
import torch
import torch.overrides

import backprop_integrity
import backprop_mistakes
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
GRADIENT_RTOL = backprop_mistakes.RTOL
GRADIENT_ATOL = backprop_mistakes.ATOL

HANDOUT_WIDTHS = (4, 6, 6, 6, 1)

# Fresh problems: (batch size, layer widths d0..d4, seed).
# A batch of 2 would make the N·d = 2 times too large gradient of a sum look like a missing
# factor 2 (see backprop_mistakes), so the smallest batch has 3 samples.
BATCH_CASES = [(3, HANDOUT_WIDTHS, 11), (7, HANDOUT_WIDTHS, 12)]
WIDTH_CASES = [(3, (5, 8, 3, 7, 2), 21), (4, (2, 3, 9, 4, 3), 22)]

# A fresh problem of the handout's shape, one sample with one output, that every check on
# the handout's data repeats. With N = d = 1, the sum of squared errors equals their mean and
# the first sample's delta equals the sum over the batch, so it catches only answers that
# return the handout's numbers. Seed 55 keeps 4, 4 and 3 units active and DW[0][0, 0] nonzero.
HANDOUT_SHAPED_CASE = (1, HANDOUT_WIDTHS, 55)

# The start of the message for an exercise1 that uses autograd; grader/review.py looks for it.
AUTOGRAD_MESSAGE = "exercise1 uses PyTorch's automatic differentiation"


def guarded(check):
    """Make a check fail when student code replaced a function it relies on, before or while it ran."""

    @functools.wraps(check)
    def run(*arguments):
        backprop_integrity.assert_untampered()
        try:
            check(*arguments)
        finally:
            backprop_integrity.assert_untampered()

    return run


def read_handout_problem():
    X, T = utils.getdata()
    W, B = utils.getparams()
    return W, B, X, T


# Read once at import, before student code can change utils or its data.
HANDOUT_PROBLEM = read_handout_problem()


def handout_problem():
    """Return copies of (W, B, X, T) of the handout as float64 NumPy arrays."""
    W, B, X, T = HANDOUT_PROBLEM
    return [w.copy() for w in W], [b.copy() for b in B], X.copy(), T.copy()


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


def describe_case(batch_size, widths):
    return f" (batch size {batch_size}, layer widths {widths})"


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
    # enable_grad, in case student code switched autograd off for the whole kernel.
    with torch.enable_grad():
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


def type_name(value):
    return type(value).__name__


def checked_array(name, value):
    """Return the student's array as float64 after checking that it is a plain, finite float ndarray.

    Only the exact type numpy.ndarray is accepted: a subclass or another object could
    rig its comparisons or its conversion to an array.
    """
    if type(value) is not np.ndarray:
        raise AssertionError(f"{name} must be a NumPy array (numpy.ndarray), but its type is {type_name(value)}.")
    if value.dtype.kind != "f":
        raise AssertionError(f"{name} must be an array of floats, but its dtype is {value.dtype}.")
    if not np.all(np.isfinite(value)):
        raise AssertionError(f"{name} contains NaN or infinite values.")
    return value.astype(np.float64)


def checked_pair(result):
    """Return (DW, DB) from exercise1's result after checking its structure and types."""
    if type(result) not in (tuple, list) or len(result) != 2:
        raise AssertionError(f"exercise1 must return a pair (DW, DB), but it returned an object of type {type_name(result)}.")
    pair = []
    for name, gradients in zip(("DW", "DB"), result):
        if type(gradients) not in (tuple, list) or len(gradients) != 4:
            length = f" of length {len(gradients)}" if type(gradients) in (tuple, list) else ""
            raise AssertionError(f"{name} must be a list of 4 arrays, one per layer, but its type is {type_name(gradients)}{length}.")
        pair.append([checked_array(f"{name}[{k}]", gradients[k]) for k in range(4)])
    return pair


class AutogradRecorder(torch.overrides.TorchFunctionMode):
    """Record how PyTorch's autograd was used while it is active, in `uses`.

    exercise1 gets NumPy arrays only, so a call of an autograd entry point or any tensor
    that requires a gradient while it runs means that it differentiates with PyTorch.

    NOTE: code that switches torch function modes off (torch._C.DisableTorchFunction)
    escapes this; grader/review.py also searches the answer's code for autograd.
    """

    ENTRY_POINTS = {
        torch.autograd.grad: "torch.autograd.grad",
        torch.autograd.backward: "torch.autograd.backward",
        torch.Tensor.backward: "Tensor.backward()",
        torch.Tensor.requires_grad_: "Tensor.requires_grad_()",
    }

    def __init__(self):
        super().__init__()
        self.uses = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        outputs = result if type(result) in (tuple, list) else (result,)
        if func in self.ENTRY_POINTS:
            self.uses.append(f"it calls {self.ENTRY_POINTS[func]}")
        elif any(isinstance(output, torch.Tensor) and output.requires_grad for output in outputs):
            self.uses.append("it computes with tensors that require a gradient")
        return result


def call_exercise1(exercise1, W, B, X, T):
    """Call the student's exercise1 on copies of a problem and return (DW, DB) as float64 arrays.

    Raises:
        AssertionError: if the result is not two lists of 4 float arrays each, or if
            exercise1 used PyTorch's autograd.
    """
    W = [w.copy() for w in W]
    B = [b.copy() for b in B]
    Z1, A1, Z2, A2, Z3, A3, Y = forward(W, B, X)
    recorder = AutogradRecorder()
    with recorder:
        result = exercise1(W, B, X.copy(), Z1, A1, Z2, A2, Z3, A3, Y, T.copy())
    if recorder.uses:
        raise AssertionError(
            f"{AUTOGRAD_MESSAGE} ({recorder.uses[0]}), but Exercise 1 asks for the backward pass by hand "
            "in NumPy. This test gives no points automatically; the instructor reviews your answer."
        )
    return checked_pair(result)


def gradient_message(label, actual, expected, explanation):
    """Return the message for a wrong gradient: what is wrong first, then the first differing entry."""
    if explanation:
        first_line = f"{label} is wrong: {explanation}."
    else:
        first_line = f"{label} is wrong."
    if actual.shape != expected.shape:
        return f"{first_line}\nIt has shape {actual.shape}, but the parameter it belongs to has shape {expected.shape}."
    difference = np.abs(actual - expected)
    allowed = GRADIENT_ATOL + GRADIENT_RTOL * np.abs(expected)
    index = np.unravel_index(np.argmax(difference - allowed), difference.shape)
    # Adding 0.0 turns a reference of -0.0 into 0.0, which reads better.
    return (
        f"{first_line}\nAt index {tuple(int(i) for i in index)} it is {float(actual[index]) + 0.0:.10g}, "
        f"expected {float(expected[index]) + 0.0:.10g}."
    )


def assert_gradient_close(label, actual, expected, explain=None):
    """Assert that one gradient array has the expected shape and values.

    `label` names the array in the student's code, for example "DW[2]". `explain`, called
    only when the array is wrong, returns the likely mistake in plain words or None.
    """
    if backprop_mistakes.matches(actual, expected):
        return
    explanation = explain() if explain else None
    raise AssertionError(gradient_message(label, actual, expected, explanation))


def explain_exercise1_gradient(name, k, actual, problem, on_handout):
    """Return a function that explains a wrong DW[k] or DB[k] computed on `problem`."""

    def explain():
        if not on_handout:
            handout_DW, handout_DB, _ = reference_gradients(*handout_problem())
            if backprop_mistakes.matches(actual, (handout_DW if name == "DW" else handout_DB)[k]):
                return (
                    "it equals the gradient of the handout's sample, so exercise1 returns the handout's values "
                    "for other data. Compute DW and DB from the arguments of exercise1"
                )
        return backprop_mistakes.diagnose_gradient(name, k, actual, *problem)

    return explain


def check_gradients_of_exercise1(exercise1, problem, names, where="", on_handout=False):
    """Call exercise1 on `problem` and check the gradients named by (name, k) pairs against the reference."""
    DW, DB = call_exercise1(exercise1, *problem)
    expected_DW, expected_DB, _ = reference_gradients(*problem)
    for name, k in names:
        actual = (DW if name == "DW" else DB)[k]
        expected = (expected_DW if name == "DW" else expected_DB)[k]
        explain = explain_exercise1_gradient(name, k, actual, problem, on_handout)
        assert_gradient_close(f"{name}[{k}]{where}", actual, expected, explain)


@guarded
def check_exercise1_norm(exercise1):
    """Check the printed value |DW[0][0, 0]| on the handout data to float64 precision, then on fresh data."""
    DW, _ = call_exercise1(exercise1, *handout_problem())
    value = float(np.linalg.norm(DW[0][0, 0]))
    if abs(value - HANDOUT_NORM) > NORM_TOLERANCE_FLOAT64:
        raise AssertionError(
            f"|DW[0][0, 0]| is {value!r}, expected {HANDOUT_NORM!r}. If only the last digits differ, "
            "compute in float64, NumPy's default."
        )

    batch_size, widths, seed = HANDOUT_SHAPED_CASE
    problem = random_problem(batch_size, widths, seed)
    DW, _ = call_exercise1(exercise1, *problem)
    expected_DW, _, _ = reference_gradients(*problem)
    value, expected = abs(float(DW[0][0, 0])), abs(float(expected_DW[0][0, 0]))
    if abs(value - expected) > GRADIENT_ATOL + GRADIENT_RTOL * expected:
        if abs(value - HANDOUT_NORM) <= GRADIENT_ATOL:
            raise AssertionError(
                f"exercise1 returns the handout's values for other data: |DW[0][0, 0]| is {HANDOUT_NORM_FLOAT32} "
                f"again{describe_case(batch_size, widths)}, expected {expected:.10g}. "
                "Compute DW and DB from the arguments of exercise1."
            )
        raise AssertionError(
            f"|DW[0][0, 0]| is {value:.10g} on other data{describe_case(batch_size, widths)}, expected {expected:.10g}."
        )


@guarded
def check_exercise1_parameter(exercise1, name, k):
    """Check one gradient, DW[k] or DB[k], entry by entry on the handout data and on fresh data of its shape."""
    if name not in ("DW", "DB"):
        raise ValueError(f"invalid gradient name {name!r}: expected 'DW' or 'DB'")
    check_gradients_of_exercise1(exercise1, handout_problem(), [(name, k)], on_handout=True)
    batch_size, widths, seed = HANDOUT_SHAPED_CASE
    problem = random_problem(batch_size, widths, seed)
    check_gradients_of_exercise1(exercise1, problem, [(name, k)], describe_case(batch_size, widths))


@guarded
def check_exercise1_on_fresh_problems(exercise1, cases):
    """Check every gradient on freshly drawn problems of other batch sizes or widths."""
    names = [(name, k) for k in range(4) for name in ("DW", "DB")]
    for batch_size, widths, seed in cases:
        problem = random_problem(batch_size, widths, seed)
        check_gradients_of_exercise1(exercise1, problem, names, describe_case(batch_size, widths))


def to_torch_problem(W, B, X, T, dtype=torch.float32):
    """Convert a NumPy problem as the notebook does: tensors for X, T and Parameters for W, B."""
    X = torch.tensor(X, dtype=dtype)
    T = torch.tensor(T, dtype=dtype)
    W = [torch.nn.Parameter(torch.tensor(w, dtype=dtype)) for w in W]
    B = [torch.nn.Parameter(torch.tensor(b, dtype=dtype)) for b in B]
    return W, B, X, T


def call_exercise2(exercise2, W, B, X, T):
    """Call the student's exercise2 and return its error, checked to be a finite, one-element float tensor.

    Only the exact type torch.Tensor is accepted: a subclass could rig its comparisons
    or its conversion to a number.
    """
    err = exercise2(W, B, X, T)
    if type(err) is not torch.Tensor:
        raise AssertionError(f"exercise2 must return a torch.Tensor, but it returned an object of type {type_name(err)}.")
    if err.numel() != 1:
        raise AssertionError(f"exercise2 must return a scalar tensor, but its shape is {tuple(err.shape)}.")
    if not err.dtype.is_floating_point:
        raise AssertionError(f"exercise2 must return a float tensor, but its dtype is {err.dtype}.")
    if not bool(torch.isfinite(err.detach()).all()):
        raise AssertionError("The error returned by exercise2 is NaN or infinite.")
    return err


def handout_shaped_problems():
    """Yield (W, B, X, T, where, on_handout) for the handout and the fresh problem of its shape."""
    yield (*handout_problem(), "", True)
    batch_size, widths, seed = HANDOUT_SHAPED_CASE
    yield (*random_problem(batch_size, widths, seed), describe_case(batch_size, widths), False)


@guarded
def check_exercise2_norm(exercise2):
    """Check the value |W[0].grad[0, 0]| after err.backward(), on the handout data and on fresh data."""
    for W, B, X, T, where, on_handout in handout_shaped_problems():
        weights, biases, inputs, targets = to_torch_problem(W, B, X, T)
        err = call_exercise2(exercise2, weights, biases, inputs, targets)
        if err.grad_fn is None:
            raise AssertionError(backprop_mistakes.describe_disconnected(err))
        err.backward()
        if weights[0].grad is None:
            raise AssertionError(
                f"After err.backward(), W[0].grad is None. {backprop_mistakes.describe_unreached([0], err, weights, ['W[0]'])}"
            )
        value = abs(float(weights[0].grad[0, 0].item()))
        expected_DW, _, _ = reference_gradients(W, B, X, T)
        expected = abs(float(expected_DW[0][0, 0]))
        explanation = backprop_mistakes.diagnose_error(err.item(), W, B, X, T)
        reason = f" The error is wrong: {explanation}." if explanation else ""
        if on_handout and abs(value - HANDOUT_NORM_FLOAT32) > NORM_TOLERANCE_FLOAT32:
            raise AssertionError(
                f"|W[0].grad[0, 0]| is {value!r}, expected {HANDOUT_NORM_FLOAT32} within {NORM_TOLERANCE_FLOAT32}.{reason}"
            )
        if not on_handout and abs(value - expected) > GRADIENT_ATOL + GRADIENT_RTOL * expected:
            if abs(value - HANDOUT_NORM) <= GRADIENT_ATOL:
                raise AssertionError(
                    f"exercise2 returns the handout's gradient for other data: |W[0].grad[0, 0]| is "
                    f"{HANDOUT_NORM_FLOAT32} again{where}, expected {expected:.8g}. Compute the error from W, B, X and T."
                )
            raise AssertionError(f"|W[0].grad[0, 0]| is {value:.8g}{where}, expected {expected:.8g}.{reason}")


@guarded
def check_exercise2_error(exercise2):
    """Check the value of the error against the float64 reference, on the handout data and on fresh data."""
    _, _, handout_err = reference_gradients(*handout_problem())
    for W, B, X, T, where, on_handout in handout_shaped_problems():
        _, _, expected = reference_gradients(W, B, X, T)
        err = call_exercise2(exercise2, *to_torch_problem(W, B, X, T))
        assert_error_close(err.item(), expected, (W, B, X, T), where, None if on_handout else handout_err)


def assert_error_close(value, expected, problem, where, handout_err=None):
    """Assert that the error's value is right; name the likely mistake when it is not."""
    if abs(value - expected) <= GRADIENT_ATOL + GRADIENT_RTOL * abs(expected):
        return
    if handout_err is not None and abs(value - handout_err) <= GRADIENT_ATOL + GRADIENT_RTOL * abs(handout_err):
        raise AssertionError(
            f"exercise2 returns the handout's error for other data: it is {value:.8g}{where}, expected "
            f"{expected:.8g}. Compute the error from W, B, X and T."
        )
    explanation = backprop_mistakes.diagnose_error(value, *problem)
    reason = f": {explanation}." if explanation else "."
    raise AssertionError(f"The error is wrong{where}{reason}\nIt is {value:.8g}, expected {expected:.8g}.")


def gradients_of(err, parameters, names):
    """Differentiate err with respect to each parameter, explaining any it does not reach."""
    if err.grad_fn is None:
        raise AssertionError(backprop_mistakes.describe_disconnected(err))
    gradients = torch.autograd.grad(err, parameters, allow_unused=True)
    unreached = [i for i, gradient in enumerate(gradients) if gradient is None]
    if unreached:
        raise AssertionError(backprop_mistakes.describe_unreached(unreached, err, parameters, names))
    return [g.detach().double().numpy() for g in gradients]


@guarded
def check_exercise2_gradients(exercise2, cases):
    """Check that err's graph reaches every W[k] and B[k], and that its value and gradients are right.

    A case with seed None is the handout's problem, checked together with a fresh problem
    of the same shape, so that returning the handout's numbers fails.
    """
    names = [f"W[{k}]" for k in range(4)] + [f"B[{k}]" for k in range(4)]
    handout_DW, handout_DB, handout_err = reference_gradients(*handout_problem())
    for batch_size, widths, seed in cases:
        if seed is None:
            problems = list(handout_shaped_problems())
        else:
            problems = [(*random_problem(batch_size, widths, seed), describe_case(batch_size, widths), False)]
        for W, B, X, T, where, on_handout in problems:
            expected_DW, expected_DB, expected_err = reference_gradients(W, B, X, T)
            weights, biases, inputs, targets = to_torch_problem(W, B, X, T)
            err = call_exercise2(exercise2, weights, biases, inputs, targets)
            gradients = gradients_of(err, weights + biases, names)
            assert_error_close(err.item(), expected_err, (W, B, X, T), where, None if on_handout else handout_err)

            for index, name, actual, expected in zip(range(8), names, gradients, expected_DW + expected_DB):
                handout = (handout_DW + handout_DB)[index]

                def explain(index=index, actual=actual, handout=handout, on_handout=on_handout):
                    if not on_handout and backprop_mistakes.matches(actual, handout):
                        return "it equals the handout's gradient, so exercise2 returns the handout's values for other data"
                    return backprop_mistakes.diagnose_error_gradient(index, actual, W, B, X, T)

                assert_gradient_close(f"The gradient of {name}{where}", actual, expected, explain)


backprop_integrity.SNAPSHOT.watch_own_module(sys.modules[__name__])
