"""The implementation under test: f(x) = sin(omega * x), with omega left for the fit to find."""

import autograd.numpy as np

from pytest_soft import Param, Parameters

theta = Parameters(omega=Param(1.0, bounds=(0.0, 5.0)))


def f(x):
    return np.sin(theta.omega * x)
