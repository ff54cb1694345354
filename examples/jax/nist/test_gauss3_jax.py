"""Soft tests for gauss3_jax.f, the same as examples/nist/test_gauss3.py:
one per observation of Gauss3.dat, scoring the squared residual."""

import gauss3_jax
import pytest

from pytest_soft import soft_test

OBSERVATIONS = gauss3_jax.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_gauss3_jax(x, y):
    return (gauss3_jax.f(x) - y) ** 2
