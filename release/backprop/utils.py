"""Data and parameters of the homework "Error Backpropagation".

One sample X of shape (1, 4) with its target T of shape (1, 1), and the weights and
biases of a network with 4 inputs, three hidden layers of 6 ReLU units and 1 linear
output. The numbers are those of the original handout (Machine Learning 1, TU Berlin).
"""

import numpy as np

_X = [[-1.086, 0.997, 0.283, -1.506]]
_T = [[-0.579]]
_W = [
    [
        [-0.339, -0.047, 0.746, -0.319, -0.222, -0.217],
        [1.103, 1.093, 0.502, 0.193, 0.369, 0.745],
        [-0.468, 0.588, -0.627, -0.319, 0.454, -0.714],
        [-0.07, -0.431, -0.128, -1.399, -0.886, -0.35],
    ],
    [
        [0.379, -0.071, 0.001, 0.281, -0.359, 0.116],
        [-0.329, -0.705, -0.16, 0.234, 0.138, -0.005],
        [0.977, 0.169, 0.4, 0.914, -0.528, -0.424],
        [0.712, -0.326, 0.012, 0.437, 0.364, 0.716],
        [0.611, 0.437, -0.315, 0.325, 0.128, -0.541],
        [0.579, 0.33, 0.019, -0.095, -0.489, 0.081],
    ],
    [
        [0.191, -0.339, 0.474, -0.448, -0.867, 0.424],
        [-0.165, -0.051, -0.342, -0.656, 0.512, -0.281],
        [0.678, 0.33, -0.128, -0.443, -0.299, -0.495],
        [0.852, 0.067, 0.47, -0.517, 0.074, 0.481],
        [-0.137, 0.421, -0.443, -0.557, 0.155, -0.155],
        [0.262, -0.807, 0.291, 1.061, -0.01, 0.014],
    ],
    [
        [0.073],
        [-0.76],
        [0.174],
        [-0.655],
        [-0.175],
        [0.507],
    ],
]
_B = [
    [-0.76, 0.174, -0.655, -0.175, 0.507, -0.3],
    [0.205, 0.413, 0.114, -0.56, -0.136, 0.8],
    [-0.827, -0.113, -0.225, 0.049, 0.305, 0.657],
    [-0.27],
]



def getdata():
    """Return the input X, shape (1, 4), and the target T, shape (1, 1), as float64 arrays."""
    return np.array(_X, dtype=np.float64), np.array(_T, dtype=np.float64)


def getparams():
    """Return the parameters (W, B) as two lists of float64 arrays.

    W[i] has shape (fan_in, fan_out): (4, 6), (6, 6), (6, 6) and (6, 1).
    B[i] has shape (fan_out,): (6,), (6,), (6,) and (1,).
    Each call returns new arrays, so changing them does not change later calls.
    """
    W = [np.array(w, dtype=np.float64) for w in _W]
    B = [np.array(b, dtype=np.float64) for b in _B]
    return W, B
