"""Soft test results and how they are shown: the run summary and the full score table.

Plain Python: the pytest glue hands over :class:`SoftResult` records and prints the lines these
functions return.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fit import FitResult

__all__ = [
    "SoftResult",
    "format_number",
    "render_fit",
    "render_summary",
    "render_table",
    "suite_loss",
]

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
    weighted = [r.weighted for r in results if r.weighted is not None]
    try:
        return math.fsum(weighted)
    except (OverflowError, ValueError):  # a sum beyond the range of a float: inf (or nan)
        return sum(weighted)


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
    top = [r for r in worst_first(scored) if r.weighted][: max(worst, 0)]
    if top and len(scored) > 1:
        lines.append(f"worst {len(top)}:")
        width = max(len(format_number(r.weighted)) for r in top)
        for r in top:
            lines.append(f"  {format_number(r.weighted):>{width}}  {r.nodeid}")
    return lines


def render_table(
    results: Sequence[SoftResult], before: Mapping[str, float] | None = None
) -> list[str]:
    """Every soft test, worst first: score, weight, weighted contribution, threshold, cases,
    outcome; with ``before`` (scores before a fit, by node id) a column for them too.
    """
    header: tuple[str, ...] = ("score", "weight", "weighted", "threshold", "cases", "outcome")
    if before is not None:
        header = ("before", *header)
    rows = []
    for r in worst_first(results):
        row: tuple[str, ...] = (
            format_number(r.score),
            format_number(r.weight),
            format_number(r.weighted),
            format_number(r.threshold),
            "-" if r.cases is None else str(r.cases),
            r.outcome,
        )
        if before is not None:
            row = (format_number(before.get(r.nodeid)), *row)
        rows.append((*row, r.nodeid))
    header = (*header, "test")
    numeric = len(header) - 2  # every column but outcome and test is right-aligned
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(widths[i]) if i < numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row[:-1])
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    lines.append(f"suite loss {format_number(suite_loss(results))}")
    return lines


_METHOD_NAMES = {
    "lsq": "lsq (trust-region least squares on square-root scores)",
    "lbfgs": "lbfgs (L-BFGS-B on the suite loss)",
    "adam": "adam",
    "sgd": "sgd",
}


def _describe_value(value: Any) -> str:
    import numpy as np

    if np.ndim(value) == 0:
        return format_number(float(value))
    array = np.asarray(value)
    return (
        f"array {'x'.join(map(str, array.shape))} (mean {format_number(float(array.mean()))}, "
        f"min {format_number(float(array.min()))}, max {format_number(float(array.max()))})"
    )


def _change(before: float, after: float) -> str:
    if before == 0:
        return ""
    return f" ({(after - before) / abs(before):+.1%})"


def render_fit(
    result: FitResult,
    written: Sequence[Path] = (),
    dry_run: bool = False,
    root: Path | None = None,
) -> list[str]:
    """The fit section: what was fitted, loss before -> after, every parameter, cost, outcome."""
    import numpy as np

    cases = f" ({result.cases} cases)" if result.cases != result.terms else ""
    lines = [
        f"method {_METHOD_NAMES.get(result.method, result.method)}",
        f"{result.terms} soft test{'s' if result.terms != 1 else ''}{cases}, "
        f"{len(result.parameters)} parameter{'s' if len(result.parameters) != 1 else ''} "
        f"({result.scalars} value{'s' if result.scalars != 1 else ''})",
        f"loss {format_number(result.loss_before)} -> {format_number(result.loss_after)}"
        f"{_change(result.loss_before, result.loss_after)}",
    ]
    if result.holdout_terms:
        lines.append(
            f"held-out loss ({result.holdout_terms} soft tests kept out of the fit) "
            f"{format_number(result.holdout_before)} -> {format_number(result.holdout_after)}"
        )
    width = max((len(p.full_name) for p in result.parameters), default=0)
    for change in result.parameters:
        before, after = change.before, change.after
        text = (
            f"  {change.full_name:<{width}}  {_describe_value(before)} -> {_describe_value(after)}"
        )
        if np.ndim(after) > 0:
            delta = np.abs(np.asarray(after) - np.asarray(before))
            text += f", |change| max {format_number(float(delta.max()))}"
        lines.append(text)
    starts = ""
    if result.starts > 1:
        starts = (
            f" over {result.starts_run} of {result.starts} starts "
            f"({result.starts_at_best} reached the best, start {result.best_start + 1} first)"
        )
    lines.append(
        f"{result.iterations} iterations{starts}, {result.loss_evaluations} loss and "
        f"{result.gradient_evaluations} gradient evaluations, {result.seconds:.2f} s"
    )
    lines.append(f"stopped: {result.stop_reason}")
    if not result.improved:
        lines.append("the loss did not improve beyond rounding noise: no parameter file written")
    elif dry_run:
        lines.append("dry run: no parameter file written (the run below uses the tuned values)")
    else:
        for path in written:
            shown = path
            if root is not None:
                try:
                    shown = path.resolve().relative_to(root.resolve())
                except ValueError:
                    pass
            lines.append(f"wrote {shown}")
    return lines
