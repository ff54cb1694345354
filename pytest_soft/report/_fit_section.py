"""The fit section of the terminal summary: what was fitted, the loss before and after, every
parameter, the cost and the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._text import format_number, visible

if TYPE_CHECKING:
    from ..fit import FitResult

__all__ = ["render_fit"]

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
            f"held-out loss ({result.holdout_terms} soft test"
            f"{'s' if result.holdout_terms != 1 else ''} kept out of the fit) "
            f"{format_number(result.holdout_before)} -> {format_number(result.holdout_after)}"
        )
    width = max((len(visible(p.full_name)) for p in result.parameters), default=0)
    for change in result.parameters:
        before, after = change.before, change.after
        text = (
            f"  {visible(change.full_name):<{width}}  {_describe_value(before)} -> "
            f"{_describe_value(after)}"
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
