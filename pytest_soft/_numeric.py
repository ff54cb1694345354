"""Numeric helpers shared by the fit engine, the reports and the tracking files.

Plain Python, no numpy: the reports and tracking import it without the fit's dependencies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["exact_sum"]


def exact_sum(parts: Iterable[float]) -> float:
    """An exactly rounded sum, so the order in which the parts arrive (e.g. from xdist workers)
    does not change the last digit; inf or nan when the parts overflow a float."""
    parts = list(parts)
    try:
        return math.fsum(parts)
    except (OverflowError, ValueError):  # a sum beyond the range of a float: inf (or nan)
        return sum(parts)
