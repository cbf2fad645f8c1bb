"""Submissions with one typical mistake each, and the diagnosis their feedback must give.

A hidden test's diagnosis shows only where the visible test before it in the same cell
passes, so a gradient of the wrong shape shows the visible shape test's message instead.
The feedback texts contain no quotes, because the feedback HTML escapes them.
"""

from corpus import Case, answered, writer

CELLS_EX1 = ["ex1_norm", "ex1_dw0", "ex1_db0", "ex1_dw1", "ex1_db1", "ex1_dw2", "ex1_db2", "ex1_dw3", "ex1_db3"]
EX1_HANDOUT = {"ex1_norm": 2, "ex1_dw0": 2, "ex1_db0": 1, "ex1_dw1": 2, "ex1_db1": 1, "ex1_dw2": 2, "ex1_db2": 1, "ex1_dw3": 2, "ex1_db3": 1}
EX1_FRESH = {"ex1_batch_sizes": 3, "ex1_layer_widths": 3}
EX2_FULL = {"ex2_norm": 2, "ex2_error": 2, "ex2_graph": 3, "ex2_fresh_data": 3}


def exercise1_source(delta="2 * (Y - T) / Y.size", weight="A[i].T @ delta", bias="delta.sum(axis=0)",
                     mask="(Z[i] > 0)", result="DW, DB"):
    """Return an exercise1 that loops over the layers, with the given expressions in place of the right ones."""
    return f'''def exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T):
    A = [X, A1, A2, A3, Y]
    Z = [None, Z1, Z2, Z3, Y]
    DW = [None] * 4
    DB = [None] * 4
    delta = {delta}
    for i in range(3, -1, -1):
        DW[i] = {weight}
        DB[i] = {bias}
        if i > 0:
            delta = (delta @ W[i].T) * {mask}
    return {result}
'''


def exercise2_source(body):
    return "def exercise2(W, B, X, T):\n" + "".join(f"    {line}\n" for line in body)


RIGHT_FORWARD = ["A = X", "for i in range(3):", "    A = torch.relu(A @ W[i] + B[i])", "Y = A @ W[3] + B[3]"]


def case(student_id, points, feedback, exercise1, exercise2=None):
    """Return a Case; exercise2 is the right one unless given."""
    exercise2 = exercise2 or exercise2_source(RIGHT_FORWARD + ["return ((Y - T) ** 2).mean()"])
    return Case(student_id, writer(answered(exercise1, exercise2)), points=points, feedback=feedback)


def ex2_case(student_id, points, feedback, body):
    return case(student_id, {**EX1_HANDOUT, **EX1_FRESH, **points}, feedback, exercise1_source(), exercise2_source(body))


CASES = [
    case(
        "diagnosis-factor-two",
        EX2_FULL,
        ["DW[0] is wrong: it is half the right value", "DB[3] is wrong: it is half the right value"],
        exercise1_source(delta="(Y - T) / Y.size"),
    ),
    case(
        "diagnosis-sum-not-mean",
        {**EX1_HANDOUT, **EX2_FULL},
        ["is wrong: it is N·d = 3 times too large", "is wrong: it is N·d = 6 times too large"],
        exercise1_source(delta="2 * (Y - T)"),
    ),
    case(
        "diagnosis-mean-twice",
        {**EX1_HANDOUT, **EX2_FULL},
        ["is wrong: it is N·d = 3 times too small"],
        exercise1_source(delta="2 * (Y - T) / Y.size / Y.shape[0]"),
    ),
    case(
        "diagnosis-sign",
        {"ex1_norm": 2, **EX2_FULL},
        ["DW[2] is wrong: its sign is flipped"],
        exercise1_source(delta="2 * (T - Y) / Y.size"),
    ),
    case(
        "diagnosis-transposed",
        {"ex1_norm": 2, "ex1_db0": 1, "ex1_db1": 1, "ex1_db2": 1, "ex1_db3": 1, **EX2_FULL},
        ["DW[1] is wrong: it is the transpose of the right gradient: compute A1.T @ delta"],
        exercise1_source(weight="delta.T @ A[i]"),
    ),
    case(
        "diagnosis-bias-first-sample",
        {**EX1_HANDOUT, **EX2_FULL},
        ["DB[0] (batch size 3, layer widths (4, 6, 6, 6, 1)) is wrong: it is the delta of the first sample only"],
        exercise1_source(bias="delta[0]"),
    ),
    case(
        "diagnosis-bias-mean",
        {**EX1_HANDOUT, **EX2_FULL},
        ["is wrong: it is the mean of delta over the batch"],
        exercise1_source(bias="delta.mean(axis=0)"),
    ),
    # The hidden check runs before the visible shape test, so the feedback names the mistake.
    case(
        "diagnosis-bias-not-summed",
        {"ex1_norm": 2, "ex1_dw0": 2, "ex1_dw1": 2, "ex1_dw2": 2, "ex1_dw3": 2, **EX2_FULL},
        ["it has one row per sample: sum delta over the samples of the batch"],
        exercise1_source(bias="delta"),
    ),
    case(
        "diagnosis-relu-missing",
        {"ex1_dw3": 2, "ex1_db3": 1, **EX2_FULL},
        ["DW[1] is wrong: the ReLU derivative is missing"],
        exercise1_source(mask="1"),
    ),
    case(
        "diagnosis-relu-wrong-layer",
        {"ex1_dw3": 2, "ex1_db3": 1, **EX2_FULL},
        ["DW[0] is wrong: the ReLU derivative is taken at the wrong layer"],
        exercise1_source(mask="(Z[i + 1] > 0)"),
    ),
    case(
        "diagnosis-wrong-activations",
        {"ex1_db0": 1, "ex1_db1": 1, "ex1_db2": 1, "ex1_db3": 1, **EX2_FULL},
        ["DW[2] is wrong: it uses A3 where the input of the layer, A2, belongs"],
        exercise1_source(weight="A[i + 1].T @ delta"),
    ),
    case(
        "diagnosis-reversed-lists",
        {**EX2_FULL},
        ["DW[1] is wrong: it holds the gradient of W[2]", "DB[1] is wrong: it holds the gradient of B[2]"],
        exercise1_source(result="DW[::-1], DB[::-1]"),
    ),
    ex2_case(
        "diagnosis-ex2-sum",
        {"ex2_norm": 2, "ex2_error": 2, "ex2_graph": 3},
        ["The error is wrong (batch size 3, layer widths (4, 6, 6, 6, 1)): it is the sum of the squared errors"],
        RIGHT_FORWARD + ["return ((Y - T) ** 2).sum()"],
    ),
    ex2_case(
        "diagnosis-ex2-relu-missing",
        {},
        ["The error is wrong: the ReLU is missing"],
        ["A = X", "for i in range(3):", "    A = A @ W[i] + B[i]", "Y = A @ W[3] + B[3]", "return ((Y - T) ** 2).mean()"],
    ),
    ex2_case(
        "diagnosis-ex2-detach",
        {"ex2_error": 2},
        ["The error does not depend on W[0], W[1], W[2], W[3]", "without .detach(), .data, NumPy or new tensors"],
        ["W = [w.detach() for w in W]"] + RIGHT_FORWARD + ["return ((Y - T) ** 2).mean()"],
    ),
    ex2_case(
        "diagnosis-ex2-copies",
        {"ex2_error": 2},
        ["The error depends on copies of W[0]"],
        ["W = [torch.tensor(w.detach().numpy(), requires_grad=True) for w in W]"]
        + RIGHT_FORWARD + ["return ((Y - T) ** 2).mean()"],
    ),
    ex2_case(
        "diagnosis-ex2-numpy",
        {"ex2_error": 2},
        ["exercise2 returns a new tensor that requires a gradient but has no history"],
        [
            "A = X.detach().numpy()",
            "for i in range(3):",
            "    A = np.maximum(0, A @ W[i].detach().numpy() + B[i].detach().numpy())",
            "Y = A @ W[3].detach().numpy() + B[3].detach().numpy()",
            "return torch.tensor(np.mean((Y - T.numpy()) ** 2), requires_grad=True)",
        ],
    ),
]
