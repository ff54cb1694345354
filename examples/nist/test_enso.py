"""Soft tests for enso.f: one per observation of ENSO.dat, scoring the squared residual."""

import enso
import pytest

from pytest_soft import soft_test

OBSERVATIONS = enso.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_enso(x, y):
    return (enso.f(x) - y) ** 2
