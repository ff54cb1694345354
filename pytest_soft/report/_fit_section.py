"""The fit section of the terminal summary: what was fitted, the loss before and after, every
parameter, the cost and the outcome.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._numeric import exact_sum
from .._text import format_number, visible

if TYPE_CHECKING:
    from ..fit import FitResult
    from ._model import SoftResult

__all__ = [
    "not_converged_advice",
    "render_fit",
    "render_fit_check",
    "render_parameters",
    "render_uncertainty",
]

_METHOD_NAMES = {
    "lsq": "lsq (trust-region least squares on square-root scores)",
    "lbfgs": "lbfgs (L-BFGS-B on the suite loss)",
    "adam": "adam",
    "sgd": "sgd",
    "powell": "powell (scipy's Powell on the suite loss; no gradient used)",
    "nelder-mead": "nelder-mead (scipy's Nelder-Mead simplex on the suite loss; no gradient used)",
}

#: Strongly correlated pairs and undetermined groups shown in the terminal; reports list all.
SHOWN_PAIRS = 5


def _stderr_text(stderr: Any) -> str:
    """`` ± e`` for a scalar, a summary for an array; empty where there is none."""
    import numpy as np

    if stderr is None:
        return ""
    if np.ndim(stderr) == 0:
        return f" ± {float(stderr):.3g}" if math.isfinite(float(stderr)) else ""
    flat = np.ravel(np.asarray(stderr, dtype=float))
    known = flat[np.isfinite(flat)]
    if known.size == 0:
        return ""
    text = f", stderr median {np.median(known):.3g}, max {known.max():.3g}"
    if known.size < flat.size:
        text += f" ({flat.size - known.size} of {flat.size} without)"
    return text


def render_uncertainty(result: FitResult) -> list[str]:
    """What the fit says about how well it determined the parameters: how the standard errors
    were computed (or why there are none), strongly correlated pairs, undetermined values."""
    from ..fit._uncertainty import CORRELATION_SHOWN

    u = result.uncertainty
    if u is None:
        return []
    lines = []
    if not u.available:
        lines.append(u.note)
    else:
        if math.isfinite(u.residual_variance):
            spread = (
                f"s² = loss/(n - p) = {format_number(u.residual_variance)} (n {u.residuals}, "
                f"p {u.fitted}"
            )
        else:
            # Independent groups were fitted one by one: each has its own residuals' spread.
            spread = (
                f"s² = loss/(n - p) within each of the {result.blocks} independent parameter "
                f"groups (n {u.residuals}, p {u.fitted} in all"
            )
        lines.append(
            f"± standard errors from s² (JᵀJ)⁻¹, {spread}; weighted scores taken as squared "
            "residuals)"
        )
        pairs = u.strong_correlations()
        if pairs:
            shown = ", ".join(
                f"{visible(a)} ~ {visible(b)} {c:+.3f}" for a, b, c in pairs[:SHOWN_PAIRS]
            )
            more = len(pairs) - SHOWN_PAIRS
            lines.append(
                f"strongly correlated (|correlation| > {CORRELATION_SHOWN}): {shown}"
                + (f" and {more} more pairs (all in the JSON report)" if more > 0 else "")
            )
    for group in u.undetermined[:SHOWN_PAIRS]:
        if group.unused:
            hint = "add a test whose score depends on it, or leave it out with --fit-params"
        else:
            hint = "add a test that separates them, or fix one with --fit-params"
        lines.append(f"warning: {visible(group.describe())}; {hint}")
    if len(u.undetermined) > SHOWN_PAIRS:
        lines.append(
            f"warning: {len(u.undetermined) - SHOWN_PAIRS} more undetermined groups (all in the "
            "JSON report)"
        )
    return lines


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


def render_parameters(result: FitResult) -> list[str]:
    """One line per fitted parameter: before -> after, ± its standard error where there is one."""
    import numpy as np

    lines = []
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
        u = result.uncertainty
        if u is not None:
            shown = _stderr_text(u.stderr.get(change.full_name))
            if not shown and u.available:
                shown = " (not determined: no standard error)"
            text += shown
        lines.append(text)
    return lines


def render_fit(
    result: FitResult,
    written: Sequence[Path] = (),
    dry_run: bool = False,
    root: Path | None = None,
) -> list[str]:
    """The fit section: what was fitted, loss before -> after, every parameter, cost, outcome."""
    cases = f" ({result.cases} cases)" if result.cases != result.terms else ""
    lines = [] if result.converged else [f"NOT CONVERGED: {not_converged_advice(result)}"]
    lines += [
        f"method {_METHOD_NAMES.get(result.method, result.method)}",
        f"{result.terms} soft test{'s' if result.terms != 1 else ''}{cases}, "
        f"{len(result.parameters)} parameter{'s' if len(result.parameters) != 1 else ''} "
        f"({result.scalars} value{'s' if result.scalars != 1 else ''})",
        *_backend_lines(result),
        *result.batches,
        *(f"note: {note}" for note in result.notes),
        f"loss {format_number(result.loss_before)} -> {format_number(result.loss_after)}"
        f"{_change(result.loss_before, result.loss_after)}",
    ]
    if result.holdout_terms:
        lines.append(
            f"held-out loss ({result.holdout_terms} soft test"
            f"{'s' if result.holdout_terms != 1 else ''} kept out of the fit) "
            f"{format_number(result.holdout_before)} -> {format_number(result.holdout_after)}"
        )
    lines += render_parameters(result)
    lines += render_uncertainty(result)
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
    if result.screened:
        minima = f"{result.minima} distinct minim{'um' if result.minima == 1 else 'a'}"
        if result.starts_left:
            ended = (
                f"of the {result.starts_run} starts run, {result.starts_run - result.starts_left}"
                f" ended in {minima} and {result.starts_left} "
                f"{'was' if result.starts_left == 1 else 'were'} left early, settling above a "
                "lower loss already found"
            )
        else:
            ended = f"the {result.starts_run} starts run ended in {minima}"
        lines.append(f"restarts screened from {result.screened} sample points; {ended}")
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


def _backend_lines(result: FitResult) -> list[str]:
    lines = []
    if result.workers is not None:
        w = result.workers
        shares = ", ".join(f"{worker} {n}" for worker, n in w.shards)
        lines.append(
            f"evaluated on {len(w.shards)} pytest-xdist worker{'s' if len(w.shards) != 1 else ''}"
            f" (soft test cases each: {shares}): {w.rounds} rounds of requests, "
            f"{w.messaging_ms:.2f} ms of messaging each"
        )
    if "jax" not in result.backend:
        return lines
    return [
        *lines,
        f"backend {result.backend}: JAX compiled {result.compiled} function"
        f"{'s' if result.compiled != 1 else ''} in {result.compile_seconds:.2f} s (part of the "
        "fit's time)"
        + (", in float64 (jax_enable_x64 on for the fit only)" if result.float64 else ""),
    ]


def render_fit_check(fit: FitResult, results: Mapping[str, SoftResult]) -> tuple[list[str], bool]:
    """Does this run measure what the fit reported? Lines for the end of the run, and whether
    every soft test the fit scored scores the same here.

    The run uses the fitted values when the fit improved the loss, else the values it started
    from; each soft test is compared with the fit's score for those values."""
    expected = fit.scores_after if fit.improved else fit.scores_before
    differ = []
    compared = []
    for name, score in expected.items():
        result = results.get(name)
        if result is None:
            continue
        compared.append(name)
        got = result.score
        if got is None or not abs(got - score) <= 1e-9 * max(abs(got), abs(score)) + 1e-300:
            differ.append(f"{name} (fit {format_number(score)}, run {format_number(got)})")
    if not compared:
        return [], True
    which = "after" if fit.improved else "before"
    loss = exact_sum([results[n].weight * expected[n] for n in compared])
    if not differ:
        return [
            f"fit check: this run's scores of the {len(compared)} soft test(s) the fit scored "
            f"match the fit's {which} scores (their loss {format_number(loss)})"
        ], True
    shown = "; ".join(differ[:5]) + (f"; and {len(differ) - 5} more" if len(differ) > 5 else "")
    return [
        f"fit check: {len(differ)} of {len(compared)} soft test(s) scored differently in this "
        f"run than in the fit with the same parameters, so the fit's loss {which} "
        f"({format_number(loss)}) is not what this run measures. "
        + (
            "The fit ran JAX in float64; this run computes in JAX's own precision (float32 "
            "unless jax_enable_x64 is set, e.g. in conftest.py), or their scores depend on "
            f"state or randomness: {shown}"
            if fit.float64
            else f"Their scores depend on state or randomness: {shown}"
        )
    ], False


def not_converged_advice(result: FitResult) -> str:
    """What stopped a fit short of convergence, and what to do about it."""
    from ..fit import StopKind

    reason, kind = result.stop_reason, result.stop.kind
    if kind is StopKind.TIME_BUDGET:
        return (
            f"the time budget (--fit-timeout) ran out before the fit converged ({reason}); the "
            "best parameters seen are kept. Give --fit-timeout more time and fit again."
        )
    if kind in (StopKind.ITERATION_LIMIT, StopKind.EVALUATION_LIMIT):
        return (
            f"the fit stopped at its iteration limit before it converged ({reason}); the best "
            "parameters seen are kept. Raise --fit-max-iter and fit again."
        )
    return (
        f"the optimiser stopped without meeting its convergence test ({reason}). Try another "
        "--fit-method, --fit-restarts, or a looser --fit-tol."
    )
