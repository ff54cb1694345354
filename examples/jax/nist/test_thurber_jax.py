"""Soft tests for thurber_jax.f, the same as examples/nist/test_thurber.py:
one per observation of Thurber.dat, scoring the squared residual."""

import pytest
import thurber_jax

from pytest_soft import soft_test

OBSERVATIONS = thurber_jax.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_thurber_jax(x, y):
    return (thurber_jax.f(x) - y) ** 2
