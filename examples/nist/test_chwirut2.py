"""Soft tests for chwirut2.f: one per observation of Chwirut2.dat, scoring the squared residual."""

import chwirut2
import pytest

from pytest_soft import soft_test

OBSERVATIONS = chwirut2.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_chwirut2(x, y):
    return (chwirut2.f(x) - y) ** 2
