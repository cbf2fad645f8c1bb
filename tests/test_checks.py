"""The hidden tests' library passes the reference answers and fails each typical mistake."""

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
    with pytest.raises(AssertionError, match=r"DB\[3\].*batch size 2"):
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

    with pytest.raises(AssertionError, match=r"DW\[0\] has shape \(6, 4\)"):
        checks.check_exercise1_parameter(transposed, "DW", 0)


def test_graph_check_names_unreached_parameter():
    with pytest.raises(AssertionError, match=r"does not depend on B\[3\]"):
        checks.check_exercise2_gradients(exercise2_skips_last_bias, [(1, checks.HANDOUT_WIDTHS, None)])


def test_numpy_detour_fails_gradient_checks_but_not_value():
    checks.check_exercise2_error(exercise2_numpy_detour)
    with pytest.raises(AssertionError, match="does not depend on W"):
        checks.check_exercise2_gradients(exercise2_numpy_detour, [(1, checks.HANDOUT_WIDTHS, None)])
    with pytest.raises(AssertionError, match=r"W\[0\].grad is None"):
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
