"""Sample answer: exercise1 returns every weight gradient transposed, (fan_out, fan_in)."""


def exercise1(W, B, X, Z1, A1, Z2, A2, Z3, A3, Y, T):
    """Compute the gradient of the mean squared error by backpropagation in NumPy.

    Args:
        W, B: lists of the 4 weight matrices, W[i] of shape (fan_in, fan_out), and of
            the 4 bias vectors, B[i] of shape (fan_out,).
        X: the inputs, shape (N, 4) for the handout's network.
        Z1, A1, Z2, A2, Z3, A3: pre-activations and ReLU activations of the hidden
            layers, each of shape (N, 6) for the handout's network.
        Y: the outputs, shape (N, 1) for the handout's network.
        T: the targets, same shape as Y.

    Returns:
        (DW, DB): two lists of 4 NumPy arrays, DW[i] with the shape of W[i] and DB[i]
        with the shape of B[i].
    """
    prev_acts = [X, A1, A2, A3]
    pre_acts = [None, Z1, Z2, Z3]
    DW = [None] * 4
    DB = [None] * 4

    delta = 2 * (Y - T) / Y.size

    for k in range(3, -1, -1):
        DW[k] = delta.T @ prev_acts[k]
        DB[k] = delta.sum(axis=0)
        if k > 0:
            delta = (delta @ W[k].T) * (pre_acts[k] > 0)

    return DW, DB


def exercise2(W, B, X, T):
    """Compute the mean squared error of the network with PyTorch operations.

    Args:
        W, B: lists of the 4 weight and the 4 bias parameters (nn.Parameter), W[i] of
            shape (fan_in, fan_out) and B[i] of shape (fan_out,).
        X: the inputs, a tensor of shape (N, 4) for the handout's network.
        T: the targets, a tensor of shape (N, 1) for the handout's network.

    Returns:
        The error as a scalar tensor, computed from W and B so that err.backward()
        fills W[i].grad and B[i].grad.
    """
    A = X
    for k in range(3):
        A = torch.relu(A @ W[k] + B[k])
    Y = A @ W[3] + B[3]
    return ((Y - T) ** 2).mean()
