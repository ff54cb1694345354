"""The ``@soft_test`` decorator and the ``soft_test`` marker's arguments.

Kept free of numpy and autograd: importing the plugin must cost nothing for suites that have no
soft tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import pytest

from .errors import SoftError

F = TypeVar("F", bound=Callable[..., Any])

MARKER = "soft_test"
MARKER_HELP = (
    "soft_test(weight=1.0, threshold=None, batch=True, tolerance=None): the test returns a "
    "score (0 is perfect, smaller is better) instead of passing or failing; tolerance (5%, 0.01 "
    "or 5%,0.01) is how much worse than the baseline it may get; see pytest-soft's README."
)
_ARGUMENTS = ("weight", "threshold", "batch", "tolerance")


@dataclass(frozen=True)
class SoftSpec:
    """How one soft test counts: its weight in the suite loss and its pass/fail threshold."""

    weight: float = 1.0
    threshold: float | None = None
    batch: bool = True
    # How much worse than the baseline the score may get, e.g. "5%,0.01" (see tracking.py).
    tolerance: str | None = None


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or (
        not isinstance(value, (int, float))
        and not (hasattr(value, "__float__") and hasattr(value, "dtype"))
    ):
        raise SoftError(f"soft_test: {name} must be a real number, got {value!r}.")
    number = float(value)
    if not math.isfinite(number):
        raise SoftError(f"soft_test: {name} must be finite, got {value!r}.")
    return number


def make_spec(*args: Any, **kwargs: Any) -> SoftSpec:
    """Check the marker's arguments and return the spec, or raise SoftError saying what is wrong."""
    if args:
        raise SoftError(
            f"soft_test takes keyword arguments only ({', '.join(_ARGUMENTS)}), got {args!r}."
        )
    unknown = sorted(set(kwargs) - set(_ARGUMENTS))
    if unknown:
        raise SoftError(
            f"soft_test got unknown argument(s) {', '.join(unknown)}; it accepts "
            f"{', '.join(_ARGUMENTS)}."
        )
    weight = _real("weight", kwargs.get("weight", 1.0))
    if weight < 0:
        raise SoftError(f"soft_test: weight must be 0 or more, got {weight!r}.")
    threshold = kwargs.get("threshold")
    if threshold is not None:
        threshold = _real("threshold", threshold)
    batch = kwargs.get("batch", True)
    if not isinstance(batch, bool):
        raise SoftError(f"soft_test: batch must be True or False, got {batch!r}.")
    tolerance = kwargs.get("tolerance")
    if tolerance is not None:
        from .errors import ToleranceError
        from .tracking import tolerance_text

        try:
            tolerance = tolerance_text(tolerance)
        except ToleranceError as exc:
            raise SoftError(f"soft_test: {exc}") from None
    return SoftSpec(weight=weight, threshold=threshold, batch=batch, tolerance=tolerance)


@overload
def soft_test(func: F, /) -> F: ...
@overload
def soft_test(
    *,
    weight: float = ...,
    threshold: float | None = ...,
    batch: bool = ...,
    tolerance: str | float | None = ...,
) -> Callable[[F], F]: ...


def soft_test(func: Any = None, /, **kwargs: Any) -> Any:
    """Mark a test as a soft test: it returns a score instead of passing or failing.

    Use it bare (``@soft_test``) or with arguments (``@soft_test(weight=2.0, threshold=1e-3)``).
    ``weight`` scales the test's score in the suite loss; with a ``threshold`` the test fails in
    a run where its score is above the threshold. ``batch=False`` keeps a fit from evaluating
    the cases of a parametrized test in one call. ``tolerance`` (``"5%"``, ``0.01`` or
    ``"5%,0.01"``) replaces ``--soft-fail-regression``'s tolerance for this test when its score
    is compared with a baseline. Same as ``@pytest.mark.soft_test(...)``.
    """
    make_spec(**kwargs)  # fail at import time, where the mistake is
    mark = getattr(pytest.mark, MARKER)(**kwargs)
    if func is None:
        return mark
    if not callable(func):
        raise SoftError(
            f"soft_test decorates a test function or class; got {func!r}. For arguments, write "
            "@soft_test(weight=..., threshold=...)."
        )
    return mark(func)
