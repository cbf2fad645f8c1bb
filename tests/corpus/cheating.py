"""Submissions that try to get points without computing the gradient, and how each is stopped.

The feedback texts contain no quotes, because the feedback HTML escapes them.
"""

import solution
import utils
from corpus import Case, answered, writer
from corpus.diagnosis import EX1_FRESH, EX1_HANDOUT, EX2_FULL, exercise1_source

RIGHT_EXERCISE2 = '''def exercise2(W, B, X, T):
    A = X
    for i in range(3):
        A = torch.relu(A @ W[i] + B[i])
    Y = A @ W[3] + B[3]
    return ((Y - T) ** 2).mean()
'''


def handout_answers():
    """Return the handout's gradients as Python source: two lists of numpy arrays."""
    X, T = utils.getdata()
    W, B = utils.getparams()
    Z1 = X @ W[0] + B[0]
    A1 = Z1.clip(min=0)
    Z2 = A1 @ W[1] + B[1]
    A2 = Z2.clip(min=0)
    Z3 = A2 @ W[2] + B[2]
    A3 = Z3.clip(min=0)
    Y = A3 @ W[3] + B[3]
    DW, DB = solution.exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T)
    as_source = lambda arrays: "[" + ", ".join(f"np.array({a.tolist()!r})" for a in arrays) + "]"
    return as_source(DW), as_source(DB), repr(float(((Y - T) ** 2).mean()))


HANDOUT_DW, HANDOUT_DB, HANDOUT_ERROR = handout_answers()

HARD_CODED_EXERCISE1 = f'''def exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T):
    return {HANDOUT_DW}, {HANDOUT_DB}
'''

# An error whose value and gradient on the handout data are the handout's, whatever W and B are.
HARD_CODED_EXERCISE2 = f'''def exercise2(W, B, X, T):
    gradients = {HANDOUT_DW} + {HANDOUT_DB}
    err = torch.tensor({HANDOUT_ERROR})
    for gradient, parameter in zip(gradients, W + B):
        err = err + (torch.tensor(gradient, dtype=torch.float32) * (parameter - parameter.detach())).sum()
    return err
'''

PRINT_ONLY_EXERCISE1 = '''print(1.5422821523392451)


def exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T):
    DW = [np.zeros(w.shape) for w in W]
    DB = [np.zeros(b.shape) for b in B]
    DW[0][0, 0] = -1.5422821523392451
    return DW, DB
'''

PRINT_ONLY_EXERCISE2 = '''print(1.5422821)


def exercise2(W, B, X, T):
    return torch.tensor(5.7785)
'''

AUTOGRAD_EXERCISE1 = '''def exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T):
    import torch

    weights = [torch.tensor(w, requires_grad=True) for w in W]
    biases = [torch.tensor(b, requires_grad=True) for b in B]
    A = torch.tensor(X)
    for i in range(3):
        A = torch.relu(A @ weights[i] + biases[i])
    err = ((A @ weights[3] + biases[3] - torch.tensor(T)) ** 2).mean()
    err.backward()
    return [w.grad.numpy() for w in weights], [b.grad.numpy() for b in biases]
'''

# A right backward pass by hand, with an autograd comparison that never runs.
AUTOGRAD_UNUSED_EXERCISE1 = exercise1_source().replace(
    "    return DW, DB\n",
    "    if False:\n        err.backward()\n    return DW, DB\n",
)

PATCHED_NUMPY_EXERCISE1 = '''np.allclose = lambda *arguments, **options: True
np.linalg.norm = lambda value: 1.5422821523392451

''' + exercise1_source(delta="(Y - T) / Y.size")

PATCHED_TORCH_EXERCISE2 = '''torch.allclose = lambda *arguments, **options: True
torch.Tensor.item = lambda self: 5.7785


def exercise2(W, B, X, T):
    A = X
    for i in range(3):
        A = A @ W[i] + B[i]
    Y = A @ W[3] + B[3]
    return ((Y - T) ** 2).mean()
'''

PATCHED_BUILTINS_EXERCISE1 = '''import builtins

builtins.abs = lambda value: 0.0

''' + exercise1_source(delta="2 * (T - Y) / Y.size")

RIGGED_EXERCISE1 = '''class AlwaysEqual(np.ndarray):
    def __eq__(self, other):
        return True

    def __sub__(self, other):
        return np.zeros(self.shape)


def exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T):
    DW = [np.zeros(w.shape).view(AlwaysEqual) for w in W]
    DB = [np.zeros(b.shape).view(AlwaysEqual) for b in B]
    return DW, DB
'''

RIGGED_EXERCISE2 = '''class FixedTensor(torch.Tensor):
    def item(self):
        return 5.778521747118064


def exercise2(W, B, X, T):
    A = X
    for i in range(3):
        A = torch.relu(A @ W[i] + B[i])
    Y = A @ W[3] + B[3]
    return (((Y - T) ** 2).mean() * 0).as_subclass(FixedTensor)
'''

# Assigning to the module fails at once. Writing to its __dict__ is caught by the checks
# that still run, and the pipeline then withholds the automatic points of every test.
PATCHED_CHECKS_EXERCISE1 = HARD_CODED_EXERCISE1 + '''

import backprop_checks

try:
    backprop_checks.check_exercise1_norm = lambda exercise1: None
except AttributeError as error:
    print(error)
for name in list(vars(backprop_checks)):
    if name.startswith("check_exercise1"):
        vars(backprop_checks)[name] = lambda *arguments: None
'''

CASES = [
    Case(
        "cheat-hard-coded-arrays",
        writer(answered(HARD_CODED_EXERCISE1, HARD_CODED_EXERCISE2)),
        points={},
        feedback=["exercise1 returns the handout", "values for other data", "exercise2 returns the handout",
                  "error for other data"],
    ),
    Case(
        "cheat-print-only",
        writer(answered(PRINT_ONLY_EXERCISE1, PRINT_ONLY_EXERCISE2)),
        points={},
        feedback=["is 1.5422821 again (batch size 1, layer widths (4, 6, 6, 6, 1))", "error for other data"],
    ),
    Case(
        "cheat-autograd-exercise1",
        writer(answered(AUTOGRAD_EXERCISE1, RIGHT_EXERCISE2)),
        points=EX2_FULL,
        feedback=["exercise1 uses PyTorch", "automatic differentiation", "the instructor reviews your answer"],
        summary=["Exercise 1 needs manual grading"],
    ),
    Case(
        "cheat-autograd-unused",
        writer(answered(AUTOGRAD_UNUSED_EXERCISE1, RIGHT_EXERCISE2)),
        points={**EX1_HANDOUT, **EX1_FRESH, **EX2_FULL},
        feedback=["The instructor reviews Exercise 1 and sets its points by hand."],
        summary=["Exercise 1 needs manual grading"],
    ),
    Case(
        "cheat-patched-numpy",
        writer(answered(PATCHED_NUMPY_EXERCISE1, RIGHT_EXERCISE2)),
        points={},
        feedback=["Your code replaced numpy.allclose, numpy.linalg.norm, which the grader relies on"],
        summary=["tests failed because the code replaced numpy.allclose"],
    ),
    Case(
        "cheat-patched-torch",
        writer(answered(exercise1_source(), PATCHED_TORCH_EXERCISE2)),
        points={**EX1_HANDOUT, **EX1_FRESH},
        feedback=["Your code replaced torch.Tensor.item, torch.allclose, which the grader relies on"],
        summary=["tests failed because the code replaced torch.Tensor.item"],
    ),
    Case(
        "cheat-patched-builtins",
        writer(answered(PATCHED_BUILTINS_EXERCISE1, RIGHT_EXERCISE2)),
        points={},
        feedback=["Your code replaced builtins.abs, which the grader relies on"],
        summary=["tests failed because the code replaced builtins.abs"],
    ),
    Case(
        "cheat-rigged-objects",
        writer(answered(RIGGED_EXERCISE1, RIGGED_EXERCISE2)),
        points={},
        feedback=["DW[0] must be a NumPy array (numpy.ndarray), but its type is AlwaysEqual.",
                  "exercise2 must return a torch.Tensor, but it returned an object of type FixedTensor."],
    ),
    Case(
        "cheat-patched-checks",
        writer(answered(PATCHED_CHECKS_EXERCISE1, RIGHT_EXERCISE2)),
        points={},
        feedback=["backprop_checks.check_exercise1_norm belongs to the grader and cannot be changed",
                  "Your code replaced backprop_checks.check_exercise1_norm"],
        summary=["0 automatic points, every test needs manual grading"],
    ),
]
