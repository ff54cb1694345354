"""The soft-test sections of the terminal summary: the run summary, the score table, a run
compared with a baseline, the regressions, and the trend of a history file (the fit section is
in ``_fit_section``). Each function returns the lines to print.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._numeric import exact_sum
from .._text import (
    align_columns,
    commit_label,
    format_change,
    format_number,
    is_dirty,
    short_commit,
    visible,
)
from ._model import ABOVE_THRESHOLD, SoftResult, suite_loss, worst_first

if TYPE_CHECKING:
    from ..tracking import Change, Comparison


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
            lines.append(f"  {format_number(r.weighted):>{width}}  {visible(r.nodeid)}")
    return lines


def render_table(
    results: Sequence[SoftResult], before: Mapping[str, float] | None = None
) -> list[str]:
    """Every soft test, worst first: score, weight, weighted contribution, threshold, cases,
    outcome. With ``before`` (scores before a fit, by node id) the score column becomes
    before / after / change, and the suite loss line gives the loss before the fit too.
    """
    header: tuple[str, ...] = ("score", "weight", "weighted", "threshold", "cases", "outcome")
    if before is not None:
        header = ("before", "after", "change", *header[1:])
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
            old = before.get(r.nodeid)
            row = (format_number(old), row[0], format_change(old, r.score), *row[1:])
        rows.append((*row, visible(r.nodeid)))
    header = (*header, "test")
    numeric = len(header) - 2  # every column but outcome and test is right-aligned
    lines = align_columns([header, *rows], range(numeric))
    total = f"suite loss {format_number(suite_loss(results))}"
    scored = [r for r in results if r.score is not None]
    if before is not None and scored and all(r.nodeid in before for r in scored):
        loss_before = exact_sum([r.weight * before[r.nodeid] for r in scored])
        total += f" (before the fit {format_number(loss_before)})"
    lines.append(total)
    return lines


# -- comparisons and history --------------------------------------------------------------------


def _when(meta: Mapping[str, Any]) -> str:
    parts = []
    if commit := short_commit(meta):
        parts.append(f"commit {commit}{' (dirty)' if is_dirty(meta) else ''}")
    if meta.get("time"):
        parts.append(str(meta["time"]))
    return ", ".join(parts)


def _change_rows(changes: Sequence[Change], tolerance: bool = False) -> list[str]:
    header = ["old", "new", "delta", "change"] + (["tolerance"] if tolerance else [])
    rows = []
    for c in changes:
        delta = c.delta
        row = [
            format_number(c.old),
            "no score" if c.new is None else format_number(c.new),
            "-" if delta is None else f"{delta:+.6g}",
            format_change(c.old, c.new),
        ]
        if tolerance:
            row.append(str(c.tolerance))
        rows.append((*row, visible(c.nodeid)))
    # The test ids are printed as they are, trailing spaces and all.
    return align_columns([(*header, "test"), *rows], range(len(header)), indent="  ", strip=False)


def render_comparison(
    comparison: Comparison,
    listed: int = 10,
    missing: str = "not run in this selection",
    list_regressed: bool = True,
) -> list[str]:
    """This run against a baseline: the suite loss, counts, then the tests that changed.
    ``missing`` says why baseline tests absent from this run were not compared; without
    ``list_regressed`` the regressed tests are left to the failure summary."""
    from ..tracking import CHANGED, DISAPPEARED, IMPROVED, NEW, NOT_RUN, REGRESSED, WORSE

    old = comparison.old
    source = f"compared with {old.label}"
    if when := _when(old.meta):
        source += f" ({when})"
    lines = [source]
    if comparison.loss_tests:
        lines.append(
            f"suite loss {format_number(comparison.loss_old)} -> "
            f"{format_number(comparison.loss_new)} "
            f"({format_change(comparison.loss_old, comparison.loss_new)}) over the "
            f"{comparison.loss_tests} soft test{'s' if comparison.loss_tests != 1 else ''} "
            f"scored in both: {comparison.loss_status}"
        )
    else:
        lines.append("no soft test scored in both runs: nothing to compare")
    counts = comparison.counts
    if counts:
        lines.append(", ".join(f"{n} {status}" for status, n in counts.items()))
    sections = [
        (REGRESSED, f"regressed (worse by more than the tolerance, {comparison.tolerance}):"),
        (WORSE, "worse, within the tolerance:"),
        (IMPROVED, "improved:"),
    ]
    for status, title in sections:
        changes = comparison.by_status(status)
        if not changes:
            continue
        if status == REGRESSED and not list_regressed:
            lines.append(f"regressed: {len(changes)}, listed in the failure summary below")
            continue
        shown = changes if status == REGRESSED else changes[:listed]
        lines.append(title)
        lines += _change_rows(shown, tolerance=status != IMPROVED)
        if len(changes) > len(shown):
            lines.append(f"  ... and {len(changes) - len(shown)} more")
    named = [
        (CHANGED, "changed (the test's source changed since the baseline: not compared):"),
        (NEW, "new (not in the baseline):"),
        (DISAPPEARED, "disappeared (in the baseline, no longer collected):"),
    ]
    for status, title in named:
        changes = comparison.by_status(status)
        if not changes:
            continue
        lines.append(title)
        lines += [f"  {visible(c.nodeid)}" for c in changes[:listed]]
        if len(changes) > listed:
            lines.append(f"  ... and {len(changes) - listed} more")
    if comparison.by_status(NOT_RUN):
        lines.append(f"{len(comparison.by_status(NOT_RUN))} soft test(s) {missing}: not compared")
    return lines


def render_regressions(comparison: Comparison) -> list[str]:
    """The failure summary: the suite loss if it regressed, and every regressed test."""
    from ..tracking import REGRESSED

    lines = []
    if comparison.loss_status == REGRESSED:
        lines.append(
            f"suite loss {format_number(comparison.loss_old)} -> "
            f"{format_number(comparison.loss_new)} "
            f"({format_change(comparison.loss_old, comparison.loss_new)}), worse by more than "
            f"{comparison.tolerance}"
        )
    regressions = comparison.regressions
    if regressions:
        lines.append(
            f"{len(regressions)} soft test{'s' if len(regressions) != 1 else ''} regressed:"
        )
        lines += _change_rows(regressions, tolerance=True)
    return lines


def render_history(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The trend of a history file: one row per run (when, commit, tests, suite loss, change)."""
    header = ("when", "commit", "tests", "suite loss", "change")
    rows = []
    note = False
    previous: Mapping[str, Any] | None = None
    for run in runs:
        loss = run.get("loss")
        change = ""
        if previous is not None and loss is not None and previous.get("loss") is not None:
            old = previous["loss"]
            if loss == old:
                change = "0"
            else:
                change = f"{loss - old:+.6g}"
                if old != 0 and math.isfinite(old):
                    change += f" ({format_change(old, loss)})"
            if set(run.get("tests", {})) != set(previous.get("tests", {})):
                change += " *"
                note = True
        rows.append(
            (
                _short_time(run.get("time")),
                commit_label(run),
                str(run.get("count", len(run.get("tests", {})))),
                format_number(loss),
                change,
            )
        )
        previous = run
    lines = align_columns([header, *rows], {2, 3}, pad_last=True)
    if note:
        lines.append(
            "* another set of soft tests than the run before: the change is not like for like"
        )
    return lines


def _short_time(text: Any) -> str:
    if not isinstance(text, str):
        return "-"
    return text.replace("T", " ")[:16] + (" UTC" if text.endswith("+00:00") else "")
