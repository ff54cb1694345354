"""Soft tests for kirby2.f: one per observation of Kirby2.dat, scoring the squared residual."""

import kirby2
import pytest

from pytest_soft import soft_test

OBSERVATIONS = kirby2.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_kirby2(x, y):
    return (kirby2.f(x) - y) ** 2
