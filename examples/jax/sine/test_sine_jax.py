"""Soft unit tests for sine_jax.f: the same 200 points as examples/sine, y = sin(1.5 x). The
score is a JAX array, so --fit differentiates these tests with JAX."""

import numpy as np
import pytest
import sine_jax

from pytest_soft import soft_test

rng = np.random.default_rng(20261127)
XS = np.sort(rng.uniform(-20.0, 20.0, size=200))
CASES = [(float(x), float(np.sin(1.5 * x))) for x in XS]


@soft_test
@pytest.mark.parametrize("x, y", CASES, ids=[f"x={x:+.3f}" for x, _ in CASES])
def test_sine(x, y):
    return (sine_jax.f(x) - y) ** 2
