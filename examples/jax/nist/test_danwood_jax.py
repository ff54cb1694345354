"""Soft tests for danwood_jax.f, the same as examples/nist/test_danwood.py:
one per observation of DanWood.dat, scoring the squared residual."""

import danwood_jax
import pytest

from pytest_soft import soft_test

OBSERVATIONS = danwood_jax.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_danwood_jax(x, y):
    return (danwood_jax.f(x) - y) ** 2
