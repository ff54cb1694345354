"""Soft tests for lanczos3.f: one per observation of Lanczos3.dat, scoring the squared residual."""

import lanczos3
import pytest

from pytest_soft import soft_test

OBSERVATIONS = lanczos3.PROBLEM.observations


@soft_test
@pytest.mark.parametrize("x, y", OBSERVATIONS, ids=[f"{i}" for i in range(len(OBSERVATIONS))])
def test_lanczos3(x, y):
    return (lanczos3.f(x) - y) ** 2
