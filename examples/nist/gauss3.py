"""Gauss3 (NIST StRD, average difficulty), the implementation under test:

    y = b1*exp(-b2*x) + b3*exp(-(x-b4)**2 / b5**2) + b6*exp(-(x-b7)**2 / b8**2)

with b1..b8 declared as parameters, starting from the NIST start that NIST_START names
(1 by default), or from gauss3.params.json once a fit has written it.
"""

import autograd.numpy as np
import strd

from pytest_soft import Parameters

PROBLEM = strd.load("Gauss3")
theta = Parameters(**PROBLEM.start_values())


def model(x, b1, b2, b3, b4, b5, b6, b7, b8):
    """The NIST model, as a plain function of x and the parameters."""
    return (
        b1 * np.exp(-b2 * x)
        + b3 * np.exp(-((x - b4) ** 2) / b5**2)
        + b6 * np.exp(-((x - b7) ** 2) / b8**2)
    )


def f(x):
    return model(x, theta.b1, theta.b2, theta.b3, theta.b4, theta.b5, theta.b6, theta.b7, theta.b8)
