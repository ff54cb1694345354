"""Soft tests for rat42_jax.f, the same as examples/nist/test_rat42.py:
one per observation of Rat42.dat, scoring the squared residual."""

import pytest
import rat42_jax

from pytest_soft import soft_test

OBSERVATIONS = rat42_jax.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_rat42_jax(x, y):
    return (rat42_jax.f(x) - y) ** 2
