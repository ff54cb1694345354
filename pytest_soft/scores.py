"""Scores: what a soft test may return, and ready-made differentiable score functions.

A score is a loss: 0 is perfect, smaller is better. A soft test returns a real scalar, or a 1-d
array of per-case scores that counts as their sum. The functions here (``squared_error`` and
friends) are written with ``autograd.numpy``, so a fit can differentiate through them.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval

from . import _binding
from .errors import ScoreError

__all__ = [
    "Score",
    "absolute_error",
    "check_score",
    "huber",
    "relative_error",
    "squared_error",
]


@dataclass(frozen=True)
class Score:
    """A validated score: its total, and the number of cases for a vectorised soft test."""

    value: float
    cases: int | None = None


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__module__}.{type(value).__qualname__})".replace("builtins.", "")


def check_score(value: Any, test: str) -> Score:
    """Validate what soft test ``test`` returned; raise :class:`ScoreError` saying what is wrong.

    ``value`` may be an autograd box (during a fit); its underlying value is what is checked.
    """
    raw = getval(value)
    where = f"soft test {test} returned"
    if raw is None:
        raise ScoreError(
            f"{where} None; a soft test returns its score (0 is perfect, smaller is better). "
            "Did you forget `return`?"
        )
    if isinstance(raw, (bool, np.bool_)):
        raise ScoreError(
            f"{where} a bool ({raw!r}); a soft test returns a score, not pass/fail. Return a "
            "number (0 is perfect), or make it an ordinary test with `assert`."
        )
    if isinstance(raw, (str, bytes)):
        raise ScoreError(f"{where} a string {_describe(raw)}; return a real number.")
    if isinstance(raw, (complex, np.complexfloating)) or (
        isinstance(raw, np.ndarray) and raw.dtype.kind == "c"
    ):
        raise ScoreError(
            f"{where} a complex value {_describe(raw)}; a score is real: return its magnitude "
            "squared, e.g. abs(z) ** 2."
        )
    if isinstance(raw, (list, tuple)):
        raise ScoreError(
            f"{where} a {type(raw).__name__} {_describe(raw)}; return a real number, or a 1-d "
            "numpy array of per-case scores (np.array(...))."
        )
    if isinstance(raw, (int, float)):
        try:
            total = float(raw)
        except OverflowError:  # an int beyond the range of a float
            raise ScoreError(
                f"{where} an int too large for a float; scores must be finite numbers."
            ) from None
        cases = None
    elif isinstance(raw, (np.integer, np.floating)):
        total = float(raw)
        cases = None
    elif isinstance(raw, np.ndarray):
        if raw.dtype.kind not in "iuf":
            raise ScoreError(f"{where} an array of dtype {raw.dtype}; return real numbers (float).")
        if raw.ndim == 0:
            total, cases = float(raw), None
        elif raw.ndim == 1:
            if raw.size == 0:
                raise ScoreError(f"{where} an empty array; return at least one per-case score.")
            finite = np.isfinite(raw)
            if not finite.all():
                bad = int(np.flatnonzero(~finite)[0])
                raise ScoreError(
                    f"{where} a non-finite per-case score ({float(raw[bad])!r} at case {bad} of "
                    f"{raw.size}); scores must be finite numbers."
                )
            try:
                total = math.fsum(raw.tolist())
            except OverflowError:  # every case finite, but their sum is beyond a float
                raise ScoreError(
                    f"{where} {raw.size} per-case scores whose sum is too large for a float; "
                    "scores must be finite numbers."
                ) from None
            cases = int(raw.size)
        else:
            raise ScoreError(
                f"{where} an array of shape {raw.shape}; return a scalar or a 1-d array of "
                "per-case scores (flatten it with .ravel(), or sum it)."
            )
    else:
        raise ScoreError(f"{where} {_describe(raw)}; return a real number.")
    if not math.isfinite(total):
        raise ScoreError(
            f"{where} {total!r}; scores must be finite numbers (a NaN or infinity usually means "
            "the implementation overflowed or divided by zero for this case)."
        )
    return Score(total, cases)


def per_case_sums() -> contextlib.AbstractContextManager[None]:
    """Inside the block, the score functions keep the first axis (one score per case): a fit
    calls a parametrized soft test once for all its cases (batched evaluation)."""
    return _binding.per_case()


def _sum(x: Any) -> Any:
    if anp.ndim(x) >= 1 and _binding.current().per_case:
        return x if anp.ndim(x) == 1 else anp.sum(x, axis=tuple(range(1, anp.ndim(x))))
    return anp.sum(x)


def squared_error(actual: Any, expected: Any) -> Any:
    """Sum of squared differences: ``sum((actual - expected) ** 2)``."""
    return _sum((actual - expected) ** 2)


def absolute_error(actual: Any, expected: Any) -> Any:
    """Sum of absolute differences: ``sum(|actual - expected|)`` (not smooth at 0)."""
    return _sum(anp.abs(actual - expected))


def relative_error(actual: Any, expected: Any, floor: float = 1e-12) -> Any:
    """Sum of absolute differences relative to the expected magnitude:
    ``sum(|actual - expected| / max(|expected|, floor))``. ``floor`` keeps an expected value
    of 0 from dividing by zero.
    """
    return _sum(anp.abs(actual - expected) / anp.maximum(anp.abs(expected), floor))


def huber(actual: Any, expected: Any, delta: float = 1.0) -> Any:
    """Huber loss, summed: quadratic (``r**2 / 2``) for residuals up to ``delta``, linear beyond,
    so a few outliers do not dominate the suite loss.
    """
    if not delta > 0:
        raise ValueError(f"huber: delta must be positive, got {delta!r}")
    r = anp.abs(actual - expected)
    quadratic = anp.minimum(r, delta)
    linear = r - quadratic
    return _sum(0.5 * quadratic**2 + delta * linear)
