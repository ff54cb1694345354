"""Soft tests for gauss3.f: one per observation of Gauss3.dat, scoring the squared residual."""

import gauss3
import pytest

from pytest_soft import soft_test

OBSERVATIONS = gauss3.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_gauss3(x, y):
    return (gauss3.f(x) - y) ** 2
