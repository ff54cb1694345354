"""Soft tests for misra1a.f: one per observation of Misra1a.dat, scoring the squared residual."""

import misra1a
import pytest

from pytest_soft import soft_test

OBSERVATIONS = misra1a.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_misra1a(x, y):
    return (misra1a.f(x) - y) ** 2
