"""Sample answer: fully correct, both exercises written out layer by layer."""


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
    n_samples, n_outputs = Y.shape
    d_out = 2.0 * (Y - T) / (n_samples * n_outputs)

    grad_w4 = np.dot(A3.T, d_out)
    grad_b4 = d_out.sum(axis=0)

    d_h3 = np.dot(d_out, W[3].T) * (Z3 > 0).astype(float)
    grad_w3 = np.dot(A2.T, d_h3)
    grad_b3 = d_h3.sum(axis=0)

    d_h2 = np.dot(d_h3, W[2].T) * (Z2 > 0).astype(float)
    grad_w2 = np.dot(A1.T, d_h2)
    grad_b2 = d_h2.sum(axis=0)

    d_h1 = np.dot(d_h2, W[1].T) * (Z1 > 0).astype(float)
    grad_w1 = np.dot(X.T, d_h1)
    grad_b1 = d_h1.sum(axis=0)

    return [grad_w1, grad_w2, grad_w3, grad_w4], [grad_b1, grad_b2, grad_b3, grad_b4]


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
    h1 = torch.clamp(X @ W[0] + B[0], min=0)
    h2 = torch.clamp(h1 @ W[1] + B[1], min=0)
    h3 = torch.clamp(h2 @ W[2] + B[2], min=0)
    out = h3 @ W[3] + B[3]
    loss = ((out - T) ** 2).mean()
    return loss
