"""DanWood (NIST StRD, lower difficulty), the implementation under test:

    y = b1*x**b2

with b1 and b2 declared as parameters, starting from the NIST start that NIST_START names
(1 by default), or from danwood.params.json once a fit has written it.
"""

import strd

from pytest_soft import Parameters

PROBLEM = strd.load("DanWood")
theta = Parameters(**PROBLEM.start_values())


def model(x, b1, b2):
    """The NIST model, as a plain function of x and the parameters."""
    return b1 * x**b2


def f(x):
    return model(x, theta.b1, theta.b2)
