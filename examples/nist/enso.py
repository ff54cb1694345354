"""ENSO (NIST StRD, average difficulty), the implementation under test:

    y = b1 + b2*cos(2*pi*x/12) + b3*sin(2*pi*x/12)
           + b5*cos(2*pi*x/b4) + b6*sin(2*pi*x/b4)
           + b8*cos(2*pi*x/b7) + b9*sin(2*pi*x/b7)

with b1..b9 declared as parameters, starting from the NIST start that NIST_START names
(1 by default), or from enso.params.json once a fit has written it.
"""

import autograd.numpy as np
import strd

from pytest_soft import Parameters

PROBLEM = strd.load("ENSO")
theta = Parameters(**PROBLEM.start_values())


def model(x, b1, b2, b3, b4, b5, b6, b7, b8, b9):
    """The NIST model, as a plain function of x and the parameters."""
    return (
        b1
        + b2 * np.cos(2 * np.pi * x / 12)
        + b3 * np.sin(2 * np.pi * x / 12)
        + b5 * np.cos(2 * np.pi * x / b4)
        + b6 * np.sin(2 * np.pi * x / b4)
        + b8 * np.cos(2 * np.pi * x / b7)
        + b9 * np.sin(2 * np.pi * x / b7)
    )


def f(x):
    return model(
        x, theta.b1, theta.b2, theta.b3, theta.b4, theta.b5, theta.b6, theta.b7, theta.b8, theta.b9
    )
