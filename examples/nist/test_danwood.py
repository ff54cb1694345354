"""Soft tests for danwood.f: one per observation of DanWood.dat, scoring the squared residual."""

import danwood
import pytest

from pytest_soft import soft_test

OBSERVATIONS = danwood.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_danwood(x, y):
    return (danwood.f(x) - y) ** 2
