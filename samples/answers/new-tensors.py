"""Sample answer: exercise2 computes the error on new tensors copied from W and B."""


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
    activations = [X, A1, A2, A3]
    masks = [None, Z1 > 0, Z2 > 0, Z3 > 0]
    DW = [None] * 4
    DB = [None] * 4

    delta = 2 * (Y - T) / (Y.shape[0] * Y.shape[1])
    for i in reversed(range(4)):
        DW[i] = np.matmul(activations[i].T, delta)
        DB[i] = np.sum(delta, axis=0)
        if i > 0:
            delta = np.matmul(delta, W[i].T) * masks[i]

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
    weights = [torch.tensor(w.detach().numpy(), requires_grad=True) for w in W]
    biases = [torch.tensor(b.detach().numpy(), requires_grad=True) for b in B]

    h = X
    for w, b in zip(weights[:-1], biases[:-1]):
        h = torch.relu(h @ w + b)
    y = h @ weights[-1] + biases[-1]

    return ((y - T) ** 2).mean()
