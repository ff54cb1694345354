"""Soft tests for mgh09_jax.f, the same as examples/nist/test_mgh09.py:
one per observation of MGH09.dat, scoring the squared residual."""

import mgh09_jax
import pytest

from pytest_soft import soft_test

OBSERVATIONS = mgh09_jax.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_mgh09_jax(x, y):
    return (mgh09_jax.f(x) - y) ** 2
