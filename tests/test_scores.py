"""What a soft test may return (check_score), and the built-in score functions with their
autograd gradients."""

from __future__ import annotations

import math
import re
from decimal import Decimal

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

from pytest_soft.errors import ScoreError
from pytest_soft.scores import (
    Score,
    absolute_error,
    check_score,
    huber,
    relative_error,
    squared_error,
)

TEST_ID = "tests/test_fit.py::test_curve[x=0.5]"


# -- check_score: accepted ----------------------------------------------------------------------


@pytest.mark.compat
@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        (0, Score(0.0)),
        (3, Score(3.0)),
        (0.25, Score(0.25)),
        (-1.5, Score(-1.5)),
        (np.float64(0.1 + 0.2), Score(0.1 + 0.2)),
        (np.float32(0.5), Score(0.5)),
        (np.float16(2.0), Score(2.0)),
        (np.int64(7), Score(7.0)),
        (np.uint8(200), Score(200.0)),
        (np.array(0.125), Score(0.125)),
        (np.array(4, dtype=np.int32), Score(4.0)),
    ],
    ids=repr,
)
def test_real_scalars_are_scores(returned, expected):
    score = check_score(returned, TEST_ID)
    assert score == expected
    assert type(score.value) is float


def test_a_1d_array_counts_as_the_sum_of_its_cases():
    score = check_score(np.array([0.1, 0.2, 0.3]), TEST_ID)
    assert score.cases == 3
    # exactly rounded: math.fsum, not a left-to-right sum (which gives 0.6000000000000001)
    assert score.value == 0.6 == math.fsum([0.1, 0.2, 0.3])

    assert check_score(np.array([2, 3], dtype=np.int64), TEST_ID) == Score(5.0, cases=2)
    assert check_score(np.array([0.5]), TEST_ID) == Score(0.5, cases=1)
    assert check_score(np.zeros(1000), TEST_ID) == Score(0.0, cases=1000)


def test_a_traced_score_is_checked_by_its_value():
    seen = []

    def loss(x):
        score = x**2
        seen.append(check_score(score, TEST_ID))
        return score

    assert grad(loss)(3.0) == 6.0
    assert seen == [Score(9.0)]


# -- check_score: rejected ----------------------------------------------------------------------

REJECTED = [
    # (id, returned, what the message must also say)
    ("None", None, "returned None; a soft test returns its score"),
    ("True", True, "a bool (True)"),
    ("False", False, "a bool (False)"),
    ("np.bool_", np.bool_(True), "a bool"),
    ("complex", 1 + 2j, "complex value"),
    ("np.complex128", np.complex128(1.0), "complex value"),
    ("complex-array", np.array([1.0 + 0j, 2.0]), "complex value"),
    ("str", "0.5", "a string '0.5'"),
    ("bytes", b"0.5", "a string"),
    ("list", [0.1, 0.2], "a list [0.1, 0.2]"),
    ("tuple", (0.1,), "a tuple (0.1,)"),
    ("2-d-array", np.zeros((2, 3)), r"an array of shape (2, 3)"),
    ("3-d-array", np.zeros((1, 1, 1)), r"an array of shape (1, 1, 1)"),
    ("empty-array", np.zeros(0), "an empty array"),
    ("bool-array", np.array([True, False]), "array of dtype bool"),
    ("object-array", np.array([0.5, None]), "array of dtype object"),
    ("str-array", np.array(["a"]), "array of dtype <U1"),
    ("nan", math.nan, "returned nan; scores must be finite"),
    ("inf", math.inf, "returned inf; scores must be finite"),
    ("-inf", -math.inf, "returned -inf"),
    ("np.nan", np.float64("nan"), "returned nan"),
    ("0-d-inf", np.array(np.inf), "returned inf"),
    ("nan-in-array", np.array([0.0, 1.0, np.nan, 2.0]), "(nan at case 2 of 4)"),
    ("inf-in-array", np.array([np.inf]), "(inf at case 0 of 1)"),
    ("sum-overflows", np.array([1e308, 1e308]), "sum is too large for a float"),
    ("huge-int", 10**400, "too large for a float"),
    ("Decimal", Decimal("0.5"), "Decimal('0.5')"),
    ("dict", {"score": 0.5}, "return a real number"),
]


@pytest.mark.compat
@pytest.mark.parametrize(
    ("returned", "message"), [pytest.param(*case[1:], id=case[0]) for case in REJECTED]
)
def test_anything_else_is_rejected_with_the_test_named(returned, message):
    with pytest.raises(ScoreError) as info:
        check_score(returned, TEST_ID)
    text = str(info.value)
    assert text.startswith(f"soft test {TEST_ID} returned ")
    assert message in text


def test_none_asks_whether_return_was_forgotten():
    with pytest.raises(
        ScoreError, match=re.compile(re.escape("did you forget `return`?"), re.IGNORECASE)
    ):
        check_score(None, TEST_ID)


# -- the score functions ------------------------------------------------------------------------

ACTUAL = np.array([1.0, 2.0, 3.0, -1.0])
EXPECTED = np.array([1.0, 0.0, 5.0, 0.5])
# residuals actual - expected: 0, 2, -2, -1.5


@pytest.mark.compat
@pytest.mark.parametrize(
    ("function", "kwargs", "value"),
    [
        (squared_error, {}, 0.0 + 4.0 + 4.0 + 2.25),
        (absolute_error, {}, 0.0 + 2.0 + 2.0 + 1.5),
        (relative_error, {}, 0.0 + 2.0 / 1e-12 + 2.0 / 5.0 + 1.5 / 0.5),
        (relative_error, {"floor": 1.0}, 0.0 + 2.0 / 1.0 + 2.0 / 5.0 + 1.5 / 1.0),
        # quadratic up to delta (r**2 / 2), linear beyond (delta * (r - delta) + delta**2 / 2)
        (huber, {}, 0.0 + (0.5 + 1.0) + (0.5 + 1.0) + (0.5 + 0.5)),
        (huber, {"delta": 2.0}, 0.0 + 2.0 + 2.0 + 1.125),
        (huber, {"delta": 0.5}, 0.0 + (0.125 + 0.75) + (0.125 + 0.75) + (0.125 + 0.5)),
    ],
    ids=lambda v: getattr(v, "__name__", None) or repr(v),
)
def test_score_functions_on_known_inputs(function, kwargs, value):
    assert function(ACTUAL, EXPECTED, **kwargs) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("function", [squared_error, absolute_error, relative_error, huber])
def test_score_functions_take_scalars_and_are_zero_when_perfect(function):
    assert function(2.5, 2.5) == 0.0
    assert function(ACTUAL, ACTUAL) == 0.0
    assert function(3.0, 1.0) > 0.0
    assert function(ACTUAL, EXPECTED) == function(ACTUAL.tolist(), EXPECTED)


def test_relative_error_scales_by_the_expected_magnitude():
    assert relative_error(-3.0, -2.0) == 0.5
    assert relative_error(110.0, 100.0) == pytest.approx(0.1)


@pytest.mark.parametrize("delta", [0.0, -1.0, math.nan])
def test_huber_needs_a_positive_delta(delta):
    with pytest.raises(ValueError, match="delta must be positive"):
        huber(1.0, 0.0, delta=delta)


# Analytic gradients with respect to `actual`, away from the kinks of |r|.
A = np.array([1.0, 2.0, 3.0, -1.0, 0.2])
E = np.array([1.5, 0.0, 5.0, 0.5, 0.25])
R = A - E  # -0.5, 2, -2, -1.5, -0.05


@pytest.mark.compat
@pytest.mark.parametrize(
    ("function", "kwargs", "gradient"),
    [
        (squared_error, {}, 2.0 * R),
        (absolute_error, {}, np.sign(R)),
        (relative_error, {}, np.sign(R) / np.maximum(np.abs(E), 1e-12)),
        (relative_error, {"floor": 1.0}, np.sign(R) / np.maximum(np.abs(E), 1.0)),
        (huber, {}, np.clip(R, -1.0, 1.0)),
        (huber, {"delta": 0.1}, np.clip(R, -0.1, 0.1)),
    ],
    ids=lambda v: getattr(v, "__name__", None) or repr(v),
)
def test_autograd_gradients_match_the_analytic_ones(function, kwargs, gradient):
    got = grad(lambda a: function(a, E, **kwargs))(A)
    np.testing.assert_allclose(got, gradient, rtol=1e-12, atol=0)


@pytest.mark.parametrize("function", [squared_error, absolute_error, relative_error, huber])
def test_gradients_flow_through_a_parameterised_model(function):
    # d/dw score(w * x, y), checked against a central finite difference
    x = np.array([0.5, -1.0, 2.0])
    y = np.array([1.0, 1.0, -3.0])

    def loss(w):
        return function(anp.tanh(w * x), y)

    w = 0.7
    h = 1e-6
    numeric = (loss(w + h) - loss(w - h)) / (2 * h)
    assert grad(loss)(w) == pytest.approx(numeric, rel=1e-6)
