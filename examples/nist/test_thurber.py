"""Soft tests for thurber.f: one per observation of Thurber.dat, scoring the squared residual."""

import pytest
import thurber

from pytest_soft import soft_test

OBSERVATIONS = thurber.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_thurber(x, y):
    return (thurber.f(x) - y) ** 2
