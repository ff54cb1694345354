"""Soft tests for linear_jax.predict: the same 100 noisy points as examples/linear, one soft
test each, scoring the squared error. Each case's x has 3 features: the fit maps the test over
the cases with jax.vmap, so the dot product stays within a case."""

import linear_jax
import numpy as np
import pytest

from pytest_soft import soft_test

rng = np.random.default_rng(20261128)
TRUE_W = np.array([1.5, -2.0, 0.5])
TRUE_B = 0.7
X = rng.normal(size=(100, 3))
Y = X @ TRUE_W + TRUE_B + rng.normal(scale=0.1, size=100)
POINTS = list(zip(X, Y.tolist()))


@soft_test
@pytest.mark.parametrize("x, y", POINTS, ids=[f"point{i}" for i in range(len(POINTS))])
def test_point(x, y):
    return (linear_jax.predict(x) - y) ** 2
