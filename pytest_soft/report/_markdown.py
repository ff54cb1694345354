"""The Markdown summary of a JSON report, for a CI job summary or a pull-request comment.
Every test id, parameter name and path is escaped, so none can break the table or inject markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._text import is_dirty, number_cell, short_commit, value_change, visible
from ._model import (
    ABOVE_THRESHOLD,
    ERROR,
    baseline_sentences,
    flat_values,
    stderr_summary,
    uncertainty_sentences,
)

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~&$])")


def md_text(text: str) -> str:
    """``text`` as literal Markdown inline text, safe inside a GitHub table cell: every
    character Markdown (or GitHub's table syntax) would act on is backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", visible(text))


def _md_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int]
) -> list[str]:
    """A GitHub table; the columns numbered in ``right`` are right-aligned."""
    right = set(right)
    align = ["--:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _md_git(run: Mapping[str, Any]) -> str:
    commit = short_commit(run)
    if not commit:
        return ""
    text = f"commit `{commit}`"
    if is_dirty(run):
        text += " with uncommitted changes"
    return text


def render_markdown(report: Mapping[str, Any], worst: int = 10, listed: int = 20) -> str:
    """A Markdown summary for a CI job summary or a pull-request comment: suite loss, the fit,
    the changes against the baseline, the worst tests. Every test id is escaped."""
    counts = report.get("counts", {})
    run = report.get("run", {})
    lines = [f"## Soft tests: suite loss {number_cell(report.get('loss'))}", ""]
    facts = [
        f"{counts.get('tests', 0)} soft tests",
        f"suite loss **{number_cell(report.get('loss'))}**",
    ]
    if counts.get(ABOVE_THRESHOLD):
        facts.append(f"{counts[ABOVE_THRESHOLD]} above threshold")
    if counts.get(ERROR):
        facts.append(f"{counts[ERROR]} without a score")
    if git := _md_git(run):
        facts.append(git)
    lines += [" · ".join(facts), ""]

    fit = report.get("fit")
    if fit:
        lines += [
            f"**Fit** ({md_text(str(fit['method']))}): loss {number_cell(fit['loss_before'])} → "
            f"{number_cell(fit['loss_after'])} ("
            f"{value_change(fit['loss_before'], fit['loss_after'])}"
            f"), {fit['iterations']} iterations; stopped: {md_text(str(fit['stop_reason']))}.",
            "",
        ]
        errors = bool(fit.get("correlation"))
        params = [
            (md_text(p["name"]), _md_param(p["before"]), _md_param(p["after"]))
            + ((stderr_summary(p.get("stderr")),) if errors else ())
            for p in fit["parameters"]
        ]
        if params:
            header = ("parameter", "before", "after") + (("± stderr",) if errors else ())
            lines += [*_md_table(header, params[:listed], (1, 2, 3)), ""]
        sentences = uncertainty_sentences(fit)
        if sentences:
            lines += [*(f"- {md_text(line)}" for line in sentences), ""]

    baseline = report.get("baseline")
    if baseline:
        lines += _md_baseline(baseline, listed)

    tests = [t for t in report.get("tests", [])][: max(worst, 0)]
    if tests:
        lines += [f"### Worst {len(tests)} soft tests", ""]
        rows = [
            (
                md_text(t["nodeid"]),
                number_cell(t["score"]),
                number_cell(t["weight"]),
                number_cell(t["weighted"]),
                number_cell(t["threshold"]),
                md_text(t["outcome"]),
            )
            for t in tests
        ]
        header = ("test", "score", "weight", "weighted", "threshold", "outcome")
        lines += [*_md_table(header, rows, (1, 2, 3, 4)), ""]
    return "\n".join(lines).rstrip() + "\n"


def _md_param(value: Any) -> str:
    if isinstance(value, list):
        flat = flat_values(value)
        return f"array of {len(flat)}" if flat else "empty array"
    return number_cell(value)


def _md_baseline(baseline: Mapping[str, Any], listed: int) -> list[str]:
    from ..tracking import DISAPPEARED, NOT_RUN, REGRESSED, STATUSES, UNCHANGED

    verdict, compared = baseline_sentences(baseline)  # numbers and our own words only
    if baseline.get("regressed"):
        verdict = verdict.replace("regressed", "**regressed**", 1)
    lines = [
        f"### Against the baseline {md_text(str(baseline.get('path') or ''))}",
        "",
        f"{verdict}. {compared[0].upper()}{compared[1:]}.",
        "",
    ]
    counts = baseline.get("counts", {})
    if counts:
        lines += [" · ".join(f"{n} {s}" for s, n in counts.items()), ""]
    rows = []
    for status in STATUSES:
        if status in (UNCHANGED, NOT_RUN):
            continue  # counted above; listing them would drown the changes
        changes = [t for t in baseline["tests"] if t["status"] == status]
        limit = len(changes) if status == REGRESSED else listed
        for t in changes[:limit]:
            new = "no score" if status not in (DISAPPEARED,) and t["new"] is None else None
            rows.append(
                (
                    md_text(status),
                    md_text(t["nodeid"]),
                    number_cell(t["old"]),
                    new or number_cell(t["new"]),
                    value_change(t["old"], t["new"]),
                )
            )
        if len(changes) > limit:
            rows.append((md_text(status), f"… and {len(changes) - limit} more", "", "", ""))
    if rows:
        lines += [*_md_table(("status", "test", "old", "new", "change"), rows, (2, 3, 4)), ""]
    return lines
