"""Soft tests for chwirut2_jax.f, the same as examples/nist/test_chwirut2.py:
one per observation of Chwirut2.dat, scoring the squared residual."""

import chwirut2_jax
import pytest

from pytest_soft import soft_test

OBSERVATIONS = chwirut2_jax.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_chwirut2_jax(x, y):
    return (chwirut2_jax.f(x) - y) ** 2
