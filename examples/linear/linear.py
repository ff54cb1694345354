"""The implementation under test: a linear model y = x . w + b, with w and b left to the fit."""

import autograd.numpy as np

from pytest_soft import Parameters

theta = Parameters(w=np.zeros(3), b=0.0)


def predict(x):
    """x: one point (3 features) or a stack of points (n, 3)."""
    return np.dot(x, theta.w) + theta.b
