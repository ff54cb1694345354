"""Lanczos3 (NIST StRD, lower difficulty), the implementation under test:

    y = b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)

with b1..b6 declared as parameters, starting from the NIST start that NIST_START names
(1 by default), or from lanczos3.params.json once a fit has written it.
"""

import autograd.numpy as np
import strd

from pytest_soft import Parameters

PROBLEM = strd.load("Lanczos3")
theta = Parameters(**PROBLEM.start_values())


def model(x, b1, b2, b3, b4, b5, b6):
    """The NIST model, as a plain function of x and the parameters."""
    return b1 * np.exp(-b2 * x) + b3 * np.exp(-b4 * x) + b5 * np.exp(-b6 * x)


def f(x):
    return model(x, theta.b1, theta.b2, theta.b3, theta.b4, theta.b5, theta.b6)
