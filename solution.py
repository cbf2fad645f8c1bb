"""The instructor's reference answers to the homework "Error Backpropagation".

This file never goes to students: nbgrader's `CourseDirectory.ignore` in
`nbgrader_config.py` keeps it out of `release/` and out of every graded submission.
The source notebook calls these functions inside its solution regions.

Notation, for a batch of N samples and layer widths d0 (inputs) to d4 (outputs):
X is (N, d0), T and Y are (N, d4), Zk and Ak are (N, dk), W[k] is (dk, dk+1) and
B[k] is (dk+1,). The error is the mean of (Y - T)**2 over all N * d4 entries.
"""

import torch


def exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T):
    """Compute the gradient of the mean squared error by backpropagation in NumPy.

    Args:
        W, B: lists of the 4 weight matrices, W[k] of shape (dk, dk+1), and the
            4 bias vectors, B[k] of shape (dk+1,).
        X: the inputs, shape (N, d0).
        Z1, A1, Z2, A2, Z3, A3: pre-activations and ReLU activations of the hidden
            layers, Zk and Ak of shape (N, dk).
        Y: the network's outputs, shape (N, d4).
        T: the targets, shape (N, d4).

    Returns:
        (DW, DB): lists with the gradients of the error with respect to W[k] and B[k],
        each of the same shape as the parameter.
    """
    inputs = [X, A1, A2, A3]
    pre_activations = [None, Z1, Z2, Z3]
    DW = [None] * 4
    DB = [None] * 4

    # delta is the gradient of the error with respect to a layer's pre-activation.
    # For the output layer that is the derivative of mean((Y - T)**2).
    delta = 2 * (Y - T) / Y.size

    for k in reversed(range(4)):
        DW[k] = inputs[k].T.dot(delta)
        DB[k] = delta.sum(axis=0)

        if k > 0:
            delta = delta.dot(W[k].T) * (pre_activations[k] > 0)

    return DW, DB


def exercise2(W, B, X, T):
    """Compute the mean squared error of the network in PyTorch.

    Args:
        W, B: lists of the 4 weight and 4 bias tensors (usually `nn.Parameter`),
            W[k] of shape (dk, dk+1) and B[k] of shape (dk+1,).
        X: the inputs, a tensor of shape (N, d0).
        T: the targets, a tensor of shape (N, d4).

    Returns:
        The error as a scalar tensor whose graph reaches every W[k] and B[k], so
        that `err.backward()` fills their `.grad`.
    """
    A = X
    for k in range(3):
        A = torch.relu(A @ W[k] + B[k])
    Y = A @ W[3] + B[3]

    return ((Y - T) ** 2).mean()
