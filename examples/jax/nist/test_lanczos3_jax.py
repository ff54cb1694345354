"""Soft tests for lanczos3_jax.f, the same as examples/nist/test_lanczos3.py:
one per observation of Lanczos3.dat, scoring the squared residual."""

import lanczos3_jax
import pytest

from pytest_soft import soft_test

OBSERVATIONS = lanczos3_jax.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_lanczos3_jax(x, y):
    return (lanczos3_jax.f(x) - y) ** 2
