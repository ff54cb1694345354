"""Soft tests for kirby2_jax.f, the same as examples/nist/test_kirby2.py:
one per observation of Kirby2.dat, scoring the squared residual."""

import kirby2_jax
import pytest

from pytest_soft import soft_test

OBSERVATIONS = kirby2_jax.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_kirby2_jax(x, y):
    return (kirby2_jax.f(x) - y) ** 2
