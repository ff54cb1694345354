"""Soft tests for misra1a_jax.f, the same as examples/nist/test_misra1a.py:
one per observation of Misra1a.dat, scoring the squared residual."""

import misra1a_jax
import pytest

from pytest_soft import soft_test

OBSERVATIONS = misra1a_jax.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_misra1a_jax(x, y):
    return (misra1a_jax.f(x) - y) ** 2
