"""The implementation under test: an adder with its arithmetic left to the fit,
add(a, b) = w1 * a + w2 * b + c.

It starts out badly wrong (w1 = w2 = -3, c = 1, so 2 + 2 = -11); the soft tests say what adding
means, and the fit finds w1 = w2 = 1, c = 0.
"""

from pytest_soft import Parameters

theta = Parameters(w1=-3.0, w2=-3.0, c=1.0)


def add(a, b):
    return theta.w1 * a + theta.w2 * b + theta.c
