"""Soft tests for rat42.f: one per observation of Rat42.dat, scoring the squared residual."""

import pytest
import rat42

from pytest_soft import soft_test

OBSERVATIONS = rat42.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_rat42(x, y):
    return (rat42.f(x) - y) ** 2
