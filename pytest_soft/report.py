"""Soft test results and how they are shown: the run summary and the full score table.

Plain Python: the pytest glue hands over :class:`SoftResult` records and prints the lines these
functions return.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["SoftResult", "format_number", "render_summary", "render_table", "suite_loss"]

# Outcomes of a soft test in a run.
PASSED = "passed"
ABOVE_THRESHOLD = "above threshold"
ERROR = "error"  # raised, returned no valid score, or its setup failed


@dataclass(frozen=True)
class SoftResult:
    """One soft test in one run. ``score`` is None when the test gave no valid score."""

    nodeid: str
    weight: float
    threshold: float | None
    score: float | None
    cases: int | None
    outcome: str

    @property
    def weighted(self) -> float | None:
        return None if self.score is None else self.weight * self.score


def suite_loss(results: Iterable[SoftResult]) -> float:
    """Sum of weight x score over the results that have a score (exactly rounded, so the
    order in which results arrive, e.g. from xdist workers, does not change the last digit).
    """
    return math.fsum(r.weighted for r in results if r.weighted is not None)


def format_number(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.6g}"


def worst_first(results: Iterable[SoftResult]) -> list[SoftResult]:
    """Results without a score first (they are the worst), then by weighted score, largest first."""
    return sorted(
        results,
        key=lambda r: (r.score is not None, -(r.weighted or 0.0), r.nodeid),
    )


def render_summary(results: Sequence[SoftResult], worst: int = 5) -> list[str]:
    """The short section every run with soft tests ends with."""
    scored = [r for r in results if r.score is not None]
    lines = [
        f"{len(results)} soft test{'s' if len(results) != 1 else ''}, "
        f"suite loss {format_number(suite_loss(results))} (sum of weight x score)"
    ]
    missing = len(results) - len(scored)
    if missing:
        lines.append(f"{missing} gave no score (errors above)")
    above = sum(r.outcome == ABOVE_THRESHOLD for r in results)
    if above:
        lines.append(f"{above} above threshold")
    top = [r for r in worst_first(scored)][: max(worst, 0)]
    if top and len(scored) > 1:
        lines.append(f"worst {len(top)}:")
        width = max(len(format_number(r.weighted)) for r in top)
        for r in top:
            lines.append(f"  {format_number(r.weighted):>{width}}  {r.nodeid}")
    return lines


def render_table(results: Sequence[SoftResult]) -> list[str]:
    """Every soft test, worst first: score, weight, weighted contribution, threshold, outcome."""
    header = ("score", "weight", "weighted", "threshold", "cases", "outcome", "test")
    rows = [
        (
            format_number(r.score),
            format_number(r.weight),
            format_number(r.weighted),
            format_number(r.threshold),
            "-" if r.cases is None else str(r.cases),
            r.outcome,
            r.nodeid,
        )
        for r in worst_first(results)
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(widths[i]) if i < 5 else cell.ljust(widths[i])
            for i, cell in enumerate(row[:-1])
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    lines.append(f"suite loss {format_number(suite_loss(results))}")
    return lines
