"""Soft tests for enso_jax.f, the same as examples/nist/test_enso.py:
one per observation of ENSO.dat, scoring the squared residual."""

import enso_jax
import pytest

from pytest_soft import soft_test

OBSERVATIONS = enso_jax.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_enso_jax(x, y):
    return (enso_jax.f(x) - y) ** 2
