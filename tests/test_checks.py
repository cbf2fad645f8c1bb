"""The hidden tests' library passes the reference answers and fails each typical mistake."""

import builtins

import numpy as np
import pytest
import torch

import backprop_checks as checks
import solution


def scaled_exercise1(factor):
    """Return an exercise1 whose gradients are the reference times `factor`."""

    def exercise1(*arguments):
        DW, DB = solution.exercise1(*arguments)
        return [factor * g for g in DW], [factor * g for g in DB]

    return exercise1


def exercise1_with_one_wrong_entry(name, k):
    """Return an exercise1 whose DW[k] or DB[k] is off in a single entry."""

    def exercise1(*arguments):
        DW, DB = solution.exercise1(*arguments)
        gradients = DW if name == "DW" else DB
        gradients[k] = gradients[k].copy()
        gradients[k].flat[-1] += 0.1
        return DW, DB

    return exercise1


def exercise1_bias_of_first_sample(*arguments):
    DW, DB = solution.exercise1(*arguments)
    Y, T = arguments[-2], arguments[-1]
    DB[3] = (2 * (Y - T) / Y.size)[0]
    return DW, DB


def exercise2_numpy_detour(W, B, X, T):
    A = X.detach().numpy()
    for k in range(3):
        A = np.maximum(0, A @ W[k].detach().numpy() + B[k].detach().numpy())
    Y = A @ W[3].detach().numpy() + B[3].detach().numpy()
    return torch.tensor(np.mean((Y - T.numpy()) ** 2), requires_grad=True)


def exercise2_skips_last_bias(W, B, X, T):
    A = X
    for k in range(3):
        A = torch.relu(A @ W[k] + B[k])
    return ((A @ W[3] - T) ** 2).mean()


def exercise2_sum(W, B, X, T):
    return solution.exercise2(W, B, X, T) * T.numel()


def test_reference_answers_pass_every_check():
    checks.check_exercise1_norm(solution.exercise1)
    for k in range(4):
        checks.check_exercise1_parameter(solution.exercise1, "DW", k)
        checks.check_exercise1_parameter(solution.exercise1, "DB", k)
    checks.check_exercise1_on_fresh_problems(solution.exercise1, checks.BATCH_CASES + checks.WIDTH_CASES)
    checks.check_exercise2_norm(solution.exercise2)
    checks.check_exercise2_error(solution.exercise2)
    checks.check_exercise2_gradients(solution.exercise2, [(1, checks.HANDOUT_WIDTHS, None)])
    checks.check_exercise2_gradients(solution.exercise2, checks.BATCH_CASES + checks.WIDTH_CASES)


def test_reference_gradients_match_solution_on_handout():
    W, B, X, T = checks.handout_problem()
    DW, DB, err = checks.reference_gradients(W, B, X, T)
    assert DW[0][0, 0] == pytest.approx(-checks.HANDOUT_NORM, abs=1e-15)
    assert err == pytest.approx(5.7785, abs=5e-5)


@pytest.mark.parametrize("name", ["DW", "DB"])
@pytest.mark.parametrize("k", range(4))
def test_parameter_check_names_wrong_gradient(name, k):
    with pytest.raises(AssertionError, match=rf"{name}\[{k}\] is wrong"):
        checks.check_exercise1_parameter(exercise1_with_one_wrong_entry(name, k), name, k)


def test_parameter_check_ignores_other_parameters():
    checks.check_exercise1_parameter(exercise1_with_one_wrong_entry("DW", 2), "DW", 1)


def float32_exercise1(*arguments):
    """Return the reference backward pass computed on float32 copies of the arrays."""
    as_float32 = [[a.astype(np.float32) for a in x] if isinstance(x, list) else x.astype(np.float32) for x in arguments]
    return solution.exercise1(*as_float32)


def test_float32_answer_fails_only_printed_value():
    with pytest.raises(AssertionError, match="expected 1.5422821523392451"):
        checks.check_exercise1_norm(float32_exercise1)
    for k in range(4):
        checks.check_exercise1_parameter(float32_exercise1, "DW", k)
        checks.check_exercise1_parameter(float32_exercise1, "DB", k)
    checks.check_exercise1_on_fresh_problems(float32_exercise1, checks.BATCH_CASES + checks.WIDTH_CASES)


def test_fresh_problems_catch_bias_of_first_sample():
    checks.check_exercise1_parameter(exercise1_bias_of_first_sample, "DB", 3)
    with pytest.raises(AssertionError, match=r"DB\[3\].*batch size 3"):
        checks.check_exercise1_on_fresh_problems(exercise1_bias_of_first_sample, checks.BATCH_CASES)


def test_half_gradient_fails_every_check():
    with pytest.raises(AssertionError):
        checks.check_exercise1_norm(scaled_exercise1(0.5))
    with pytest.raises(AssertionError):
        checks.check_exercise1_on_fresh_problems(scaled_exercise1(0.5), checks.WIDTH_CASES)


def test_wrong_return_type_is_explained():
    with pytest.raises(AssertionError, match=r"must return a pair \(DW, DB\)"):
        checks.check_exercise1_norm(lambda *arguments: None)
    with pytest.raises(AssertionError, match="DW must be a list of 4 arrays"):
        checks.check_exercise1_norm(lambda *arguments: ([np.zeros((4, 6))], []))


def test_transposed_gradient_reports_shape():
    def transposed(*arguments):
        DW, DB = solution.exercise1(*arguments)
        return [g.T for g in DW], DB

    with pytest.raises(AssertionError, match=r"DW\[0\] is wrong: it is the transpose(.|\n)*has shape \(6, 4\)"):
        checks.check_exercise1_parameter(transposed, "DW", 0)


def test_graph_check_names_unreached_parameter():
    with pytest.raises(AssertionError, match=r"does not depend on B\[3\]"):
        checks.check_exercise2_gradients(exercise2_skips_last_bias, [(1, checks.HANDOUT_WIDTHS, None)])


def test_numpy_detour_fails_gradient_checks_but_not_value():
    checks.check_exercise2_error(exercise2_numpy_detour)
    with pytest.raises(AssertionError, match="new tensor that requires a gradient but has no history"):
        checks.check_exercise2_gradients(exercise2_numpy_detour, [(1, checks.HANDOUT_WIDTHS, None)])
    with pytest.raises(AssertionError, match="new tensor that requires a gradient but has no history"):
        checks.check_exercise2_norm(exercise2_numpy_detour)


def test_sum_reduction_fails_on_fresh_problems_only():
    checks.check_exercise2_error(exercise2_sum)
    with pytest.raises(AssertionError, match="is wrong"):
        checks.check_exercise2_gradients(exercise2_sum, checks.BATCH_CASES)


def test_exercise2_must_return_scalar_tensor():
    with pytest.raises(AssertionError, match="must return a torch.Tensor"):
        checks.check_exercise2_error(lambda W, B, X, T: 5.7785)
    with pytest.raises(AssertionError, match="must return a scalar tensor"):
        checks.check_exercise2_error(lambda W, B, X, T: torch.zeros(2, 2))


def exercise1_with_mistake(delta_scale=1.0, sign=1.0, mask="right", layer_input="right", bias="sum", transpose=False, reverse=False):
    """Return an exercise1 written as a student would, with the named mistakes."""

    def exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T):
        inputs = {"right": [X, A1, A2, A3], "Z": [X, Z1, Z2, Z3], "above": [A1, A2, A3, Y]}[layer_input]
        pre_activations = [None, Z1, Z2, Z3]
        DW, DB = [None] * 4, [None] * 4
        delta = sign * 2 * (Y - T) / Y.size * (Y.size if delta_scale == "N*d" else delta_scale)
        for k in reversed(range(4)):
            DW[k] = delta.T @ inputs[k] if transpose else inputs[k].T @ delta
            DB[k] = {"sum": delta.sum(axis=0), "unsummed": delta, "first": delta[0], "mean": delta.mean(axis=0)}[bias]
            if k > 0:
                masks = {"right": pre_activations[k] > 0, "missing": 1.0, "above": pre_activations[k + 1] > 0 if k < 3 else 1.0}
                delta = (delta @ W[k].T) * masks[mask]
        return (DW[::-1], DB[::-1]) if reverse else (DW, DB)

    return exercise1


def check_on_handout(name, k):
    return lambda exercise1: checks.check_exercise1_parameter(exercise1, name, k)


def check_on_batches(exercise1):
    checks.check_exercise1_on_fresh_problems(exercise1, checks.BATCH_CASES)


# (mistake, options of exercise1_with_mistake, check, expected first line of the message)
EXERCISE1_DIAGNOSES = [
    ("missing factor 2", dict(delta_scale=0.5), check_on_handout("DW", 2), r"DW\[2\] is wrong: it is half the right value"),
    ("factor 2 twice", dict(delta_scale=2.0), check_on_handout("DB", 1), r"DB\[1\] is wrong: it is twice the right value"),
    ("sum, not mean", dict(delta_scale="N*d"), check_on_batches, r"DW\[0\] \(batch size 3, .*\) is wrong: it is N·d = 3 times too large"),
    ("divided twice", dict(delta_scale=1 / 3), check_on_batches, r"is wrong: it is N·d = 3 times too small"),
    ("sign flipped", dict(sign=-1.0), check_on_handout("DW", 3), r"DW\[3\] is wrong: its sign is flipped"),
    ("transposed", dict(transpose=True), check_on_handout("DW", 1), r"DW\[1\] is wrong: it is the transpose of the right gradient: compute A1.T @ delta"),
    ("bias unsummed", dict(bias="unsummed"), check_on_batches, r"DB\[0\] \(batch size 3, .*\) is wrong: it has one row per sample"),
    ("bias of first sample", dict(bias="first"), check_on_batches, r"DB\[0\] \(batch size 3, .*\) is wrong: it is the delta of the first sample only"),
    ("bias mean", dict(bias="mean"), check_on_batches, r"DB\[0\] \(batch size 3, .*\) is wrong: it is the mean of delta over the batch"),
    ("ReLU derivative missing", dict(mask="missing"), check_on_handout("DW", 0), r"DW\[0\] is wrong: the ReLU derivative is missing"),
    ("ReLU derivative of the layer above", dict(mask="above"), check_on_handout("DB", 0), r"DB\[0\] is wrong: the ReLU derivative is taken at the wrong layer"),
    ("pre-activations for activations", dict(layer_input="Z"), check_on_handout("DW", 2), r"DW\[2\] is wrong: it uses Z2 where the input of the layer, A2, belongs"),
    ("activations of the layer above", dict(layer_input="above"), check_on_handout("DW", 1), r"DW\[1\] is wrong: it uses A2 where the input of the layer, A1, belongs"),
    ("lists in reverse order", dict(reverse=True), check_on_handout("DW", 0), r"DW\[0\] is wrong: it holds the gradient of W\[3\]"),
    ("missing factor 2 and sign", dict(delta_scale=0.5, sign=-1.0), check_on_handout("DW", 2), r"half the right value.*; also, its sign is flipped"),
]


@pytest.mark.parametrize("options, check, message", [case[1:] for case in EXERCISE1_DIAGNOSES], ids=[case[0] for case in EXERCISE1_DIAGNOSES])
def test_exercise1_mistake_is_diagnosed(options, check, message):
    with pytest.raises(AssertionError, match=message):
        check(exercise1_with_mistake(**options))


def test_diagnosis_leaves_unknown_mistake_unexplained():
    with pytest.raises(AssertionError, match=r"^DW\[2\] is wrong\.\nAt index"):
        checks.check_exercise1_parameter(exercise1_with_one_wrong_entry("DW", 2), "DW", 2)


def exercise2_with_mistake(reduction="mean", relu=True, cut=None):
    def exercise2(W, B, X, T):
        if cut == "detach":
            W = [w.detach() for w in W]
        if cut == "copies":
            B = [torch.tensor(b.detach().numpy(), requires_grad=True) for b in B]
        A = X
        for k in range(3):
            A = A @ W[k] + B[k]
            A = torch.relu(A) if relu else A
        squares = (A @ W[3] + B[3] - T) ** 2
        if reduction == "sum":
            return squares.sum()
        if reduction == "batch":
            return squares.sum(dim=1).mean()
        return squares.mean()

    return exercise2


EXERCISE2_DIAGNOSES = [
    ("sum", dict(reduction="sum"), checks.BATCH_CASES, r"The error is wrong \(batch size 3, .*\): it is the sum of the squared errors"),
    ("mean over the batch only", dict(reduction="batch"), checks.WIDTH_CASES, r"sums the squared errors over the outputs and averages only over the samples"),
    ("ReLU missing", dict(relu=False), [(1, checks.HANDOUT_WIDTHS, None)], r"The error is wrong: the ReLU is missing"),
    ("detach", dict(cut="detach"), [(1, checks.HANDOUT_WIDTHS, None)], r"does not depend on W\[0\], W\[1\], W\[2\], W\[3\]: .*without \.detach\(\)"),
    ("copies", dict(cut="copies"), [(1, checks.HANDOUT_WIDTHS, None)], r"The error depends on copies of B\[0\], B\[1\], B\[2\], B\[3\]"),
]


@pytest.mark.parametrize("options, cases, message", [case[1:] for case in EXERCISE2_DIAGNOSES], ids=[case[0] for case in EXERCISE2_DIAGNOSES])
def test_exercise2_mistake_is_diagnosed(options, cases, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_exercise2_gradients(exercise2_with_mistake(**options), cases)


def test_numpy_detour_is_explained():
    with pytest.raises(AssertionError, match="exercise2 returns a new tensor that requires a gradient but has no history"):
        checks.check_exercise2_gradients(exercise2_numpy_detour, [(1, checks.HANDOUT_WIDTHS, None)])


# Computed outside the exercises, which must not run autograd themselves.
HANDOUT_DW, HANDOUT_DB, HANDOUT_ERROR = checks.reference_gradients(*checks.handout_problem())


def hard_coded_exercise1(*arguments):
    return [g.copy() for g in HANDOUT_DW], [g.copy() for g in HANDOUT_DB]


def hard_coded_exercise2(W, B, X, T):
    """Return an error whose value and gradients are the handout's, whatever the data."""
    result = torch.tensor(HANDOUT_ERROR, dtype=torch.float32)
    for gradient, parameter in zip(HANDOUT_DW + HANDOUT_DB, W + B):
        result = result + (torch.tensor(gradient, dtype=torch.float32) * (parameter - parameter.detach())).sum()
    return result


@pytest.mark.parametrize(
    "check",
    [
        checks.check_exercise1_norm,
        lambda exercise1: checks.check_exercise1_parameter(exercise1, "DW", 2),
        lambda exercise1: checks.check_exercise1_parameter(exercise1, "DB", 0),
        lambda exercise1: checks.check_exercise1_on_fresh_problems(exercise1, checks.BATCH_CASES),
        lambda exercise1: checks.check_exercise1_on_fresh_problems(exercise1, checks.WIDTH_CASES),
    ],
    ids=["norm", "DW[2]", "DB[0]", "batch sizes", "layer widths"],
)
def test_hard_coded_exercise1_fails(check):
    with pytest.raises(AssertionError, match="returns the handout's values for other data"):
        check(hard_coded_exercise1)


@pytest.mark.parametrize(
    "check",
    [
        checks.check_exercise2_norm,
        checks.check_exercise2_error,
        lambda exercise2: checks.check_exercise2_gradients(exercise2, [(1, checks.HANDOUT_WIDTHS, None)]),
        lambda exercise2: checks.check_exercise2_gradients(exercise2, checks.BATCH_CASES),
    ],
    ids=["norm", "error", "graph", "fresh data"],
)
def test_hard_coded_exercise2_fails(check):
    with pytest.raises(AssertionError, match="exercise2 returns the handout's (gradient|error) for other data"):
        check(hard_coded_exercise2)


def test_hard_coded_exercise2_passes_handout_data_alone():
    """The fresh data, not the handout's, is what catches a hard-coded error."""
    W, B, X, T = checks.to_torch_problem(*checks.handout_problem())
    err = hard_coded_exercise2(W, B, X, T)
    err.backward()
    assert abs(W[0].grad[0, 0].item() + checks.HANDOUT_NORM) < 1e-6


def autograd_exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T):
    weights = [torch.tensor(w, requires_grad=True) for w in W]
    biases = [torch.tensor(b, requires_grad=True) for b in B]
    A = torch.tensor(X)
    for k in range(3):
        A = torch.relu(A @ weights[k] + biases[k])
    err = ((A @ weights[3] + biases[3] - torch.tensor(T)) ** 2).mean()
    gradients = torch.autograd.grad(err, weights + biases)
    return [g.numpy() for g in gradients[:4]], [g.numpy() for g in gradients[4:]]


def torch_func_exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T):
    def error(weights):
        A = torch.tensor(X)
        for k in range(3):
            A = torch.relu(A @ weights[k] + torch.tensor(B[k]))
        return ((A @ weights[3] + torch.tensor(B[3]) - torch.tensor(T)) ** 2).mean()

    DW = torch.func.grad(error)([torch.tensor(w) for w in W])
    return [g.numpy() for g in DW], solution.exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T)[1]


def torch_without_autograd_exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T):
    DW, DB = solution.exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T)
    return [torch.from_numpy(g).clone().numpy() for g in DW], DB


@pytest.mark.parametrize("exercise1", [autograd_exercise1, torch_func_exercise1], ids=["autograd.grad", "torch.func"])
def test_autograd_in_exercise1_fails_for_review(exercise1):
    with pytest.raises(AssertionError, match=f"^{checks.AUTOGRAD_MESSAGE}.*the instructor reviews your answer"):
        checks.check_exercise1_parameter(exercise1, "DW", 0)


def test_torch_without_autograd_passes_in_exercise1():
    checks.check_exercise1_parameter(torch_without_autograd_exercise1, "DW", 0)


class AlwaysEqual(np.ndarray):
    def __eq__(self, other):
        return True


class ConvertsToHandout:
    def __array__(self, dtype=None, copy=None):
        return np.full((4, 6), -checks.HANDOUT_NORM)

    def __float__(self):
        return checks.HANDOUT_NORM


@pytest.mark.parametrize(
    "gradient, message",
    [
        (lambda g: g.view(AlwaysEqual), "DW\\[0\\] must be a NumPy array \\(numpy.ndarray\\), but its type is AlwaysEqual"),
        (lambda g: ConvertsToHandout(), "but its type is ConvertsToHandout"),
        (lambda g: g.tolist(), "but its type is list"),
        (lambda g: g.astype(np.int64), "must be an array of floats, but its dtype is int64"),
        (lambda g: np.full(g.shape, np.nan), "contains NaN or infinite values"),
    ],
    ids=["ndarray subclass", "array conversion", "list", "integers", "NaN"],
)
def test_exercise1_result_must_be_plain_float_array(gradient, message):
    def exercise1(*arguments):
        DW, DB = solution.exercise1(*arguments)
        return [gradient(DW[0])] + DW[1:], DB

    with pytest.raises(AssertionError, match=message):
        checks.check_exercise1_parameter(exercise1, "DW", 0)


def test_tensor_subclass_is_rejected():
    class FixedTensor(torch.Tensor):
        pass

    with pytest.raises(AssertionError, match="returned an object of type FixedTensor"):
        checks.check_exercise2_error(lambda W, B, X, T: solution.exercise2(W, B, X, T).as_subclass(FixedTensor))


@pytest.mark.parametrize(
    "owner, name, replacement",
    [
        (np, "allclose", lambda *arguments, **options: True),
        (np.linalg, "norm", lambda value: checks.HANDOUT_NORM),
        (np.testing, "assert_allclose", lambda *arguments, **options: None),
        (torch, "allclose", lambda *arguments, **options: True),
        (torch.Tensor, "item", lambda self: 5.7785),
        # Replacements that behave like the originals, so that pytest itself keeps working.
        (builtins, "abs", lambda value, original=builtins.abs: original(value)),
        (builtins, "isinstance", lambda value, types, original=builtins.isinstance: original(value, types)),
    ],
    ids=["numpy.allclose", "numpy.linalg.norm", "numpy.testing.assert_allclose", "torch.allclose", "torch.Tensor.item", "abs", "isinstance"],
)
def test_replaced_function_fails_checks(owner, name, replacement):
    label = {np: "numpy", np.linalg: "numpy.linalg", np.testing: "numpy.testing", torch: "torch", torch.Tensor: "torch.Tensor", builtins: "builtins"}[owner]
    had_attribute = name in vars(owner)
    original = vars(owner).get(name)
    setattr(owner, name, replacement)
    try:
        with pytest.raises(AssertionError, match=rf"^Your code replaced {label}\.{name}, which the grader relies on"):
            checks.check_exercise1_norm(solution.exercise1)
    finally:
        if had_attribute:
            setattr(owner, name, original)
        else:
            delattr(owner, name)
    checks.check_exercise1_norm(solution.exercise1)


def test_function_replaced_while_exercise_runs_fails():
    def exercise1(*arguments):
        np.allclose = lambda *arguments, **options: True
        return solution.exercise1(*arguments)

    original = np.allclose
    try:
        with pytest.raises(AssertionError, match=r"^Your code replaced numpy.allclose"):
            checks.check_exercise1_norm(exercise1)
    finally:
        np.allclose = original


def test_checks_cannot_be_assigned():
    with pytest.raises(AttributeError, match="belongs to the grader and cannot be changed"):
        checks.check_exercise1_norm = lambda exercise1: None


def test_check_replaced_in_module_dict_is_named():
    original = vars(checks)["check_exercise1_parameter"]
    vars(checks)["check_exercise1_parameter"] = lambda *arguments: None
    try:
        with pytest.raises(AssertionError, match=r"^Your code replaced backprop_checks.check_exercise1_parameter"):
            checks.check_exercise1_norm(solution.exercise1)
    finally:
        vars(checks)["check_exercise1_parameter"] = original


def test_checks_work_with_autograd_switched_off():
    torch.set_grad_enabled(False)
    try:
        checks.check_exercise1_parameter(solution.exercise1, "DW", 2)
        with pytest.raises(AssertionError, match="is wrong: it is half the right value"):
            checks.check_exercise1_parameter(scaled_exercise1(0.5), "DW", 2)
    finally:
        torch.set_grad_enabled(True)


def test_printed_gradient_check_names_missing_relu():
    with pytest.raises(AssertionError, match=r"^\|W\[0\].grad\[0, 0\]\| is .* The error is wrong: the ReLU is missing"):
        checks.check_exercise2_norm(exercise2_with_mistake(relu=False))
