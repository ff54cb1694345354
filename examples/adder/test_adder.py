"""Soft tests for adder.add: each returns a score, the squared distance from the right answer.

An adder that says 2 + 2 = 4.1 scores (4.1 - 4) ** 2 = 0.01; one that says 2 + 2 = -11 scores
(-11 - 4) ** 2 = 225. Both are wrong, but the first is much less wrong, and the score says so.
"""

import adder

from pytest_soft import soft_test


@soft_test(threshold=0.01)  # within 0.1 of 4 is good enough: a plain run fails above that
def test_two_plus_two():
    return (adder.add(2, 2) - 4) ** 2


@soft_test
def test_zero_plus_zero():
    return (adder.add(0, 0) - 0) ** 2


@soft_test
def test_one_plus_two():
    return (adder.add(1, 2) - 3) ** 2


@soft_test
def test_negative_numbers():
    return (adder.add(-5, 3) - (-2)) ** 2


@soft_test
def test_commutes():
    return (adder.add(3, 7) - adder.add(7, 3)) ** 2
