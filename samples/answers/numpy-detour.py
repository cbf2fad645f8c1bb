"""Sample answer: exercise2 computes the error in NumPy, so the graph to W and B is lost."""


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
    A = [X, A1, A2, A3]
    Z = [None, Z1, Z2, Z3]
    DW, DB = [], []

    dZ = 2 * (Y - T) / Y.size
    for l in range(3, -1, -1):
        DW.append(A[l].T @ dZ)
        DB.append(dZ.sum(axis=0))
        if l > 0:
            dZ = (dZ @ W[l].T) * (Z[l] > 0)

    return DW[::-1], DB[::-1]


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
    Ws = [w.detach().numpy() for w in W]
    Bs = [b.detach().numpy() for b in B]

    A = X.numpy()
    for i in range(3):
        A = np.maximum(0, A.dot(Ws[i]) + Bs[i])
    Y = A.dot(Ws[3]) + Bs[3]

    err = np.mean((Y - T.numpy()) ** 2)
    return torch.tensor(err, requires_grad=True)
