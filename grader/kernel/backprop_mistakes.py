"""Name the likely mistake behind a wrong gradient, for the hidden tests' messages.

A wrong answer is compared with the results of deliberately wrong versions of the
computation: backward passes with the ReLU derivative dropped or taken at another layer,
with the wrong layer's activations, with the bias gradient not summed, and scaled
versions of the right gradient (half, twice, negated, N·d times too large or too small).
When the student's value matches one of them within the checks' tolerance, that version's
explanation becomes the message; otherwise there is no diagnosis. The errors of
Exercise 2 are compared the same way with wrong forward passes and reductions.

Notation as in the notebook: a batch of N samples, d outputs, delta is the gradient of the
error with respect to a layer's pre-activation Z, and the output delta is 2 (Y - T) / (N·d).
"""

import sys

# Bound here, so that student code replacing these builtins does not change the diagnosis.
from builtins import ValueError, abs, all, any, bool, dict, getattr, id, isinstance, range, reversed, set

import numpy as np
import torch

import backprop_integrity

# Same tolerances as the checks: a diagnosis must match as closely as a right answer would.
RTOL = 1e-4
ATOL = 1e-5

# Wrong factors for delta as it passes into hidden layer k (1 to 3), with their diagnosis.
MASK_VARIANTS = {
    "missing": "the ReLU derivative is missing: when delta passes down into a hidden layer, "
    "multiply it by (Z > 0) of that layer",
    "layer above": "the ReLU derivative is taken at the wrong layer: when delta passes down into a "
    "hidden layer, multiply it by (Z > 0) of that layer, not of the layer above it",
    "layer below": "the ReLU derivative is taken at the wrong layer: when delta passes down into a "
    "hidden layer, multiply it by (Z > 0) of that layer, not of the layer below it",
    "activation": "delta is multiplied by the activation A instead of the ReLU derivative (Z > 0)",
}

# The arrays that the gradient of W[k] multiplies delta with, named as in the notebook.
LAYER_INPUTS = {
    "right": ["X", "A1", "A2", "A3"],
    "pre-activation": ["X", "Z1", "Z2", "Z3"],
    "layer above": ["A1", "A2", "A3", "Y"],
    "layer below": [None, "X", "A1", "A2"],
}
INPUT_VARIANTS = ("pre-activation", "layer above", "layer below")

# Wrong reductions of delta, shape (N, n), to the gradient of B[k], in the order they are tried.
BIAS_VARIANTS = {
    "keepdims": "it has an extra axis of length 1: sum delta over the samples of the batch, "
    "delta.sum(axis=0), without keepdims",
    "unsummed": "it has one row per sample: sum delta over the samples of the batch, delta.sum(axis=0)",
    "first sample": "it is the delta of the first sample only: sum delta over all samples of the batch, "
    "delta.sum(axis=0)",
    "mean": "it is the mean of delta over the batch: take the sum, because the output delta already "
    "divides by N·d",
}


def forward_values(W, B, X):
    """Run the forward pass in float64 and return ([Z1, Z2, Z3], [A1, A2, A3], Y)."""
    Z, A = [], []
    inputs = X
    for k in range(3):
        Z.append(inputs @ W[k] + B[k])
        A.append(np.maximum(0, Z[k]))
        inputs = A[k]
    return Z, A, inputs @ W[3] + B[3]


def mask_for(variant, k, Z, A):
    """Return what delta is multiplied by when it passes into hidden layer k (1 to 3)."""
    if variant == "right":
        return Z[k - 1] > 0
    if variant == "missing":
        return 1.0
    if variant == "layer above":
        return Z[k] > 0 if k < 3 else 1.0
    if variant == "layer below":
        return Z[k - 2] > 0 if k > 1 else 1.0
    if variant == "activation":
        return A[k - 1]
    raise ValueError(f"invalid mask variant {variant!r}")


def layer_inputs(variant, X, Z, A, Y):
    """Return what the gradient of W[0] to W[3] multiplies delta with (None where nothing fits)."""
    if variant == "right":
        return [X, A[0], A[1], A[2]]
    if variant == "pre-activation":
        return [X, Z[0], Z[1], Z[2]]
    if variant == "layer above":
        return [A[0], A[1], A[2], Y]
    if variant == "layer below":
        return [None, X, A[0], A[1]]
    raise ValueError(f"invalid input variant {variant!r}")


def bias_gradient(variant, delta):
    """Return the gradient of a bias taken from delta, shape (N, n), the right way or a wrong one."""
    if variant == "right":
        return delta.sum(axis=0)
    if variant == "first sample":
        return delta[0]
    if variant == "unsummed":
        return delta
    if variant == "keepdims":
        return delta.sum(axis=0, keepdims=True)
    if variant == "mean":
        return delta.mean(axis=0)
    raise ValueError(f"invalid bias variant {variant!r}")


def backward_pass(W, B, X, T, mask="right", layer_input="right", bias="right"):
    """Compute (DW, DB) in float64, the right way or with the named mistakes.

    An entry is None where the mistake cannot be made for these shapes, for example the
    activations of a layer below the input.
    """
    Z, A, Y = forward_values(W, B, X)
    inputs = layer_inputs(layer_input, X, Z, A, Y)
    DW, DB = [None] * 4, [None] * 4
    delta = 2 * (Y - T) / Y.size
    for k in reversed(range(4)):
        if inputs[k] is not None:
            DW[k] = inputs[k].T @ delta
        DB[k] = bias_gradient(bias, delta)
        if k > 0:
            try:
                delta = (delta @ W[k].T) * mask_for(mask, k, Z, A)
            except ValueError:
                # The mask of another layer has another width.
                break
    return DW, DB


def scale_explanations(batch_size, outputs):
    """Return [(factor, explanation)] for gradients off by a constant factor, the likelier first."""
    entries = batch_size * outputs
    scales = [
        (0.5, "it is half the right value: the derivative of (Y - T)**2 is 2 (Y - T), "
         "so check the factor 2 in the output delta"),
        (2.0, "it is twice the right value: check the factor 2 in the output delta, "
         "which the derivative of (Y - T)**2 gives only once"),
        (entries, f"it is N·d = {entries} times too large: the error is the mean over all N·d entries of Y, "
         "not their sum, so divide the output delta by N·d (Y.size)"),
        (1 / entries, f"it is N·d = {entries} times too small: divide by N·d (Y.size) only once, "
         "in the output delta"),
        (outputs, f"it is d = {outputs} times too large: the mean runs over all N·d entries of Y, "
         "so divide by Y.size, not by the batch size N alone"),
        (batch_size, f"it is N = {batch_size} times too large, the batch size: divide the output delta by N·d (Y.size)"),
        (1 / batch_size, f"it is N = {batch_size} times too small, the batch size: divide by N·d only once, "
         "in the output delta, and sum over the samples of the batch after that"),
    ]
    distinct = []
    for factor, explanation in scales:
        if factor != 1 and all(abs(factor - seen) > 1e-12 for seen, _ in distinct):
            distinct.append((factor, explanation))
    return distinct


def sign_and_scale_explanations(batch_size, outputs):
    """Return [(factor, explanation)] for the sign flipped, off by a factor, or both."""
    sign = "its sign is flipped: the output delta is 2 (Y - T) / (N·d), not 2 (T - Y) / (N·d)"
    scales = scale_explanations(batch_size, outputs)
    return (
        [(-1.0, sign)]
        + scales
        + [(-factor, f"{explanation}; also, {sign}") for factor, explanation in scales]
    )


def matches(actual, candidate):
    """Tell whether the student's array equals a candidate within the checks' tolerance."""
    if candidate is None or actual.shape != np.shape(candidate):
        return False
    return bool(np.all(np.abs(actual - candidate) <= ATOL + RTOL * np.abs(candidate)))


def gradient_candidates(name, k, W, B, X, T):
    """Yield (value, explanation) for the wrong versions of DW[k] or DB[k], the likelier first."""
    right_DW, right_DB = backward_pass(W, B, X, T)
    right = (right_DW if name == "DW" else right_DB)[k]
    batch_size, outputs = T.shape

    layer_input = LAYER_INPUTS["right"][k]
    if name == "DW":
        yield right.T, f"it is the transpose of the right gradient: compute {layer_input}.T @ delta, " \
            f"which has the shape of W[{k}]"
    for j in range(4):
        other = (right_DW if name == "DW" else right_DB)[j]
        if j != k:
            yield other, f"it holds the gradient of {'W' if name == 'DW' else 'B'}[{j}]: put the gradients " \
                "in the order of the parameters, and reverse a list built from the output backwards"

    if name == "DB":
        for variant, explanation in BIAS_VARIANTS.items():
            yield backward_pass(W, B, X, T, bias=variant)[1][k], explanation
    for factor, explanation in sign_and_scale_explanations(batch_size, outputs):
        yield factor * right, explanation

    variants = [(dict(mask=v), text) for v, text in MASK_VARIANTS.items()]
    if name == "DW":
        variants += [
            (dict(layer_input=v), f"it uses {LAYER_INPUTS[v][k]} where the input of the layer, {layer_input}, "
             f"belongs: DW[{k}] = {layer_input}.T @ delta")
            for v in INPUT_VARIANTS
        ]
    for options, explanation in variants:
        DW, DB = backward_pass(W, B, X, T, **options)
        yield (DW if name == "DW" else DB)[k], explanation
    for options, explanation in variants:
        DW, DB = backward_pass(W, B, X, T, **options)
        for factor, scale in sign_and_scale_explanations(batch_size, outputs):
            value = (DW if name == "DW" else DB)[k]
            yield None if value is None else factor * value, f"{explanation}; also, {scale}"


def diagnose_gradient(name, k, actual, W, B, X, T):
    """Return the likely mistake behind a wrong DW[k] or DB[k] in plain words, or None.

    `actual` is the student's float64 array, W, B, X and T the problem it was computed on.
    """
    for candidate, explanation in gradient_candidates(name, k, W, B, X, T):
        if matches(actual, candidate):
            return explanation
    if actual.size and np.all(actual == 0):
        return "it is all zeros: check that delta reaches this layer and is not reset on the way"
    return None


def handout_values_returned(actual, handout_value, expected):
    """Tell whether a result on fresh data equals the handout's value, which is wrong here."""
    return matches(actual, handout_value) and not matches(expected, handout_value)


# Wrong ways to compute the error of Exercise 2: forward pass options and the explanation.
ERROR_VARIANTS = [
    (dict(reduction="sum"), "it is the sum of the squared errors, N·d times the mean: take the mean over all "
     "entries, ((Y - T) ** 2).mean()"),
    (dict(reduction="batch mean"), "it sums the squared errors over the outputs and averages only over the "
     "samples: take the mean over all N·d entries, ((Y - T) ** 2).mean()"),
    (dict(relu="missing"), "the ReLU is missing: apply torch.relu to the pre-activation of each hidden layer"),
    (dict(relu="output too"), "the output layer has a ReLU too: the output Y is linear, only the three "
     "hidden layers use ReLU"),
    (dict(relu="missing", reduction="sum"), "the ReLU is missing, and the error is the sum of the squared "
     "errors: apply torch.relu in each hidden layer and take the mean over all entries"),
]


def error_variant(W, B, X, T, reduction="mean", relu="hidden"):
    """Compute the error in float64 autograd the right way or a wrong one; return (err, gradients)."""
    with torch.enable_grad():
        weights = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in W]
        biases = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in B]
        A = torch.tensor(X, dtype=torch.float64)
        for k in range(3):
            Z = A @ weights[k] + biases[k]
            A = Z if relu == "missing" else torch.relu(Z)
        Y = A @ weights[3] + biases[3]
        if relu == "output too":
            Y = torch.relu(Y)
        squares = (Y - torch.tensor(T, dtype=torch.float64)) ** 2
        if reduction == "sum":
            err = squares.sum()
        elif reduction == "batch mean":
            err = squares.sum(dim=1).mean()
        else:
            err = squares.mean()
        gradients = torch.autograd.grad(err, weights + biases, allow_unused=True)
    return err.item(), [None if g is None else g.numpy() for g in gradients]


def diagnose_error(value, W, B, X, T):
    """Return the likely mistake behind a wrong value of the error in plain words, or None."""
    for options, explanation in ERROR_VARIANTS:
        expected, _ = error_variant(W, B, X, T, **options)
        if matches(np.array(value), np.array(expected)):
            return explanation
    return None


def diagnose_error_gradient(index, actual, W, B, X, T):
    """Return the likely mistake behind a wrong gradient of parameter `index` (W[0..3], B[0..3]), or None."""
    for options, explanation in ERROR_VARIANTS:
        _, gradients = error_variant(W, B, X, T, **options)
        if matches(actual, gradients[index]):
            return explanation
    return None


def describe_unreached(unreached, err, parameters, names):
    """Explain why the error's graph does not reach the parameters at `unreached` (indices)."""
    copies = [names[i] for i in unreached if any(
        leaf is not parameters[i] and leaf.shape == parameters[i].shape and bool(torch.equal(leaf.detach(), parameters[i].detach()))
        for leaf in graph_leaves(err)
    )]
    listed = ", ".join(names[i] for i in unreached)
    if copies:
        return (
            f"The error depends on copies of {', '.join(copies)}, not on the given parameters: copies made "
            "with torch.tensor(...), .detach(), .data or NumPy are new tensors, so err.backward() leaves "
            f"the .grad of {listed} empty. Compute the error from W and B themselves."
        )
    return (
        f"The error does not depend on {listed}: compute the forward pass from every given W[i] and B[i], "
        "without .detach(), .data, NumPy or new tensors, which cut the connection."
    )


def graph_leaves(err):
    """Return the leaf tensors that err's autograd graph accumulates gradients into."""
    leaves, seen, pending = [], set(), [err.grad_fn]
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)
        if isinstance(variable, torch.Tensor):
            leaves.append(variable)
        pending.extend(next_node for next_node, _ in node.next_functions)
    return leaves


def describe_disconnected(err):
    """Explain why an error without autograd history (no grad_fn) cannot be differentiated."""
    if err.requires_grad:
        return (
            "exercise2 returns a new tensor that requires a gradient but has no history, for example "
            "torch.tensor(value, requires_grad=True): PyTorch cannot trace it back to W and B. Compute the "
            "error with PyTorch operations on W and B, without NumPy, .item() or new tensors."
        )
    return (
        "The error returned by exercise2 is not connected to W and B, so PyTorch cannot differentiate it: "
        "compute it with PyTorch operations on the given W and B, without NumPy, .detach(), .data, .item() "
        "or torch.no_grad()."
    )


backprop_integrity.SNAPSHOT.watch_own_module(sys.modules[__name__])
