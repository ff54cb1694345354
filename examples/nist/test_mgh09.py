"""Soft tests for mgh09.f: one per observation of MGH09.dat, scoring the squared residual."""

import mgh09
import pytest

from pytest_soft import soft_test

OBSERVATIONS = mgh09.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_mgh09(x, y):
    return (mgh09.f(x) - y) ** 2
