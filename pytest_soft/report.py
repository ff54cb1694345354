"""Soft test results and how they are shown: the run summary, the score table, comparisons and
history in the terminal, and the JSON, Markdown and benchmark file reports (HTML: htmlreport).

Plain Python: the pytest glue hands over :class:`SoftResult` records and prints the lines these
functions return.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fit import FitResult
    from .tracking import Change, Comparison, Snapshot

__all__ = [
    "SoftResult",
    "build_report",
    "format_change",
    "format_number",
    "md_text",
    "render_benchmark",
    "render_comparison",
    "render_fit",
    "render_history",
    "render_json",
    "render_markdown",
    "render_regressions",
    "render_summary",
    "render_table",
    "suite_loss",
    "to_snapshot",
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
    fingerprint: str | None = None  # hash of the test's source (for baselines)
    tolerance: str | None = None  # the marker's regression tolerance, e.g. "5%,0.01"

    @property
    def weighted(self) -> float | None:
        return None if self.score is None else self.weight * self.score


def suite_loss(results: Iterable[SoftResult]) -> float:
    """Sum of weight x score over the results that have a score (exactly rounded, so the
    order in which results arrive, e.g. from xdist workers, does not change the last digit).
    """
    return _fsum([r.weighted for r in results if r.weighted is not None])


def _fsum(parts: list[float]) -> float:
    try:
        return math.fsum(parts)
    except (OverflowError, ValueError):  # a sum beyond the range of a float: inf (or nan)
        return sum(parts)


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
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(widths[i]) if i < numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row[:-1])
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    total = f"suite loss {format_number(suite_loss(results))}"
    scored = [r for r in results if r.score is not None]
    if before is not None and scored and all(r.nodeid in before for r in scored):
        loss_before = _fsum([r.weight * before[r.nodeid] for r in scored])
        total += f" (before the fit {format_number(loss_before)})"
    lines.append(total)
    return lines


def format_change(old: float | None, new: float | None) -> str:
    """The change from ``old`` to ``new`` as a percentage of ``old`` ("-" when undefined;
    "up from 0" or "down from 0" when ``old`` is 0, where no percentage exists)."""
    if old is None or new is None:
        return "-"
    if old == new:
        return "0%"
    if old == 0 and math.isfinite(new):
        return "up from 0" if new > 0 else "down from 0"
    if old == 0 or not math.isfinite(old) or not math.isfinite(new):
        return "-"
    return f"{(new - old) / abs(old):+.1%}"


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
    if result.screened:
        lines.append(
            f"restarts screened from {result.screened} sample points; the {result.starts_run} "
            f"starts run ended in {result.minima} distinct minim"
            f"{'um' if result.minima == 1 else 'a'}"
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


# -- file reports: JSON, Markdown, github-action-benchmark ---------------------------------------
# Each renderer takes the JSON report (a plain dict, see build_report and the README), so a
# saved report can be rendered again later without the run.


def to_snapshot(results: Iterable[SoftResult]) -> Snapshot:
    """This run's scores in the form the tracking module compares and stores."""
    from .tracking import Entry, Snapshot

    results = list(results)
    tests = {r.nodeid: Entry(r.score, r.weight, r.fingerprint, r.tolerance) for r in results}
    return Snapshot(tests=tests, loss=suite_loss(results))


def _value(value: Any) -> Any:
    """A parameter value for JSON: a float, or nested lists for an array."""
    from .tracking import encode_number

    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_value(v) for v in value]
    return encode_number(float(value))


def _fit_document(
    fit: FitResult, written: Sequence[Path], dry_run: bool, root: Path | None
) -> dict[str, Any]:
    from .tracking import encode_number

    def shown(path: Path) -> str:
        if root is not None:
            try:
                return path.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                pass
        return str(path)

    holdout = None
    if fit.holdout_terms:
        holdout = {
            "tests": fit.holdout_terms,
            "loss_before": encode_number(fit.holdout_before),
            "loss_after": encode_number(fit.holdout_after),
        }
    return {
        "method": fit.method,
        "tests": fit.terms,
        "cases": fit.cases,
        "parameters": [
            {"name": p.full_name, "before": _value(p.before), "after": _value(p.after)}
            for p in fit.parameters
        ],
        "loss_before": encode_number(fit.loss_before),
        "loss_after": encode_number(fit.loss_after),
        "improved": bool(fit.improved),
        "holdout": holdout,
        "history": [encode_number(x) for x in fit.history],
        "iterations": fit.iterations,
        "loss_evaluations": fit.loss_evaluations,
        "gradient_evaluations": fit.gradient_evaluations,
        "starts": fit.starts,
        "starts_run": fit.starts_run,
        "starts_at_best": fit.starts_at_best,
        "screened": fit.screened,
        "minima": fit.minima,
        "stop_reason": fit.stop_reason,
        "converged": bool(fit.converged),
        "seconds": fit.seconds,
        "warnings": list(fit.warnings),
        "dry_run": dry_run,
        "written": [shown(p) for p in written],
    }


def build_report(
    results: Sequence[SoftResult],
    meta: Mapping[str, Any],
    *,
    fit: FitResult | None = None,
    fit_written: Sequence[Path] = (),
    dry_run: bool = False,
    comparison: Comparison | None = None,
    root: Path | None = None,
) -> dict[str, Any]:
    """The JSON report of a run (format "pytest-soft report", version 1; documented in the README).

    ``meta`` is :func:`pytest_soft.tracking.run_metadata` plus anything the caller adds
    (``duration``, ``args``, ``workers``).
    """
    from .tracking import REPORT_FORMAT, VERSION, comparison_document, encode_number

    before = fit.scores_before if fit is not None else None
    tests = []
    for r in worst_first(results):
        item: dict[str, Any] = {
            "nodeid": r.nodeid,
            "score": encode_number(r.score),
            "weight": r.weight,
            "weighted": encode_number(r.weighted),
            "threshold": r.threshold,
            "tolerance": r.tolerance,
            "outcome": r.outcome,
            "cases": r.cases,
            "fingerprint": r.fingerprint,
        }
        if before is not None:
            item["before"] = encode_number(before.get(r.nodeid))
        tests.append(item)
    counts = {"tests": len(results)}
    for outcome in (PASSED, ABOVE_THRESHOLD, ERROR):
        counts[outcome] = sum(r.outcome == outcome for r in results)
    return {
        "format": REPORT_FORMAT,
        "version": VERSION,
        "run": dict(meta),
        "loss": encode_number(suite_loss(results)),
        "counts": counts,
        "tests": tests,
        "fit": None if fit is None else _fit_document(fit, fit_written, dry_run, root),
        "baseline": None if comparison is None else comparison_document(comparison),
    }


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def render_benchmark(report: Mapping[str, Any]) -> str:
    """github-action-benchmark's "customSmallerIsBetter" input: the suite loss, then one entry
    per soft test with a finite score (a test without a score has no number to chart)."""
    entries: list[dict[str, Any]] = []
    loss = report.get("loss")
    if isinstance(loss, (int, float)):
        counts = report.get("counts", {})
        entries.append(
            {
                "name": "suite loss",
                "unit": "loss",
                "value": loss,
                "extra": f"{counts.get('tests', 0)} soft tests, sum of weight x score",
            }
        )
    for test in report.get("tests", []):
        score = test.get("score")
        if not isinstance(score, (int, float)):
            continue
        extra = f"weight {format_number(test['weight'])}"
        if test.get("cases") is not None:
            extra += f", {test['cases']} cases"
        entries.append({"name": test["nodeid"], "unit": "score", "value": score, "extra": extra})
    return json.dumps(entries, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def visible(text: str) -> str:
    """``text`` with control characters (newlines, ANSI escapes, ...) shown as escapes, so that
    one test id stays on one line of any report."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\x{ord(ch):02x}"))
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "".join(out)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~&$])")


def md_text(text: str) -> str:
    """``text`` as literal Markdown inline text, safe inside a GitHub table cell: every
    character Markdown (or GitHub's table syntax) would act on is backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", visible(text))


def _md_number(x: Any) -> str:
    return format_number(x) if isinstance(x, (int, float)) else ("-" if x is None else str(x))


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
    git = run.get("git") or {}
    if not git.get("commit"):
        return ""
    text = f"commit `{git['commit'][:12]}`"
    if git.get("dirty"):
        text += " with uncommitted changes"
    return text


def render_markdown(report: Mapping[str, Any], worst: int = 10, listed: int = 20) -> str:
    """A Markdown summary for a CI job summary or a pull-request comment: suite loss, the fit,
    the changes against the baseline, the worst tests. Every test id is escaped."""
    counts = report.get("counts", {})
    run = report.get("run", {})
    lines = [f"## Soft tests: suite loss {_md_number(report.get('loss'))}", ""]
    facts = [
        f"{counts.get('tests', 0)} soft tests",
        f"suite loss **{_md_number(report.get('loss'))}**",
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
            f"**Fit** ({md_text(str(fit['method']))}): loss {_md_number(fit['loss_before'])} → "
            f"{_md_number(fit['loss_after'])} ({_md_change(fit['loss_before'], fit['loss_after'])}"
            f"), {fit['iterations']} iterations; stopped: {md_text(str(fit['stop_reason']))}.",
            "",
        ]
        params = [
            (md_text(p["name"]), _md_param(p["before"]), _md_param(p["after"]))
            for p in fit["parameters"]
        ]
        if params:
            lines += [*_md_table(("parameter", "before", "after"), params[:listed], (1, 2)), ""]

    baseline = report.get("baseline")
    if baseline:
        lines += _md_baseline(baseline, listed)

    tests = [t for t in report.get("tests", [])][: max(worst, 0)]
    if tests:
        lines += [f"### Worst {len(tests)} soft tests", ""]
        rows = [
            (
                md_text(t["nodeid"]),
                _md_number(t["score"]),
                _md_number(t["weight"]),
                _md_number(t["weighted"]),
                _md_number(t["threshold"]),
                md_text(t["outcome"]),
            )
            for t in tests
        ]
        header = ("test", "score", "weight", "weighted", "threshold", "outcome")
        lines += [*_md_table(header, rows, (1, 2, 3, 4)), ""]
    return "\n".join(lines).rstrip() + "\n"


def _md_param(value: Any) -> str:
    if isinstance(value, list):
        flat = _flatten(value)
        return f"array of {len(flat)}" if flat else "empty array"
    return _md_number(value)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [x for v in value for x in _flatten(v)]
    return [value]


def _md_change(old: Any, new: Any) -> str:
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        return format_change(float(old), float(new))
    return "-"


def baseline_sentences(baseline: Mapping[str, Any]) -> tuple[str, str]:
    """The verdict and the suite-loss comparison of a report's ``baseline`` section, as text."""
    loss = baseline.get("loss", {})
    tolerance = baseline.get("tolerance")
    regressed = sum(t["status"] == "regressed" for t in baseline.get("tests", []))
    if not baseline.get("regressed"):
        verdict = f"no regression (tolerance {tolerance})"
    elif regressed:
        verdict = (
            f"regressed: {regressed} soft test{'s' if regressed != 1 else ''} worse than the "
            "baseline by more than the tolerance"
        )
        if loss.get("status") == "regressed":
            verdict += f", and the suite loss by more than {tolerance}"
    else:
        verdict = f"regressed: the suite loss is worse by more than {tolerance}"
    if not loss.get("tests"):
        return verdict, "no soft test was scored in both runs"
    old, new = loss.get("old"), loss.get("new")
    compared = (
        f"suite loss {_md_number(old)} → {_md_number(new)} ({_md_change(old, new)}) over the "
        f"{loss['tests']} soft tests scored in both runs: {loss.get('status')}"
    )
    return verdict, compared


def _md_baseline(baseline: Mapping[str, Any], listed: int) -> list[str]:
    from .tracking import DISAPPEARED, NOT_RUN, REGRESSED, STATUSES, UNCHANGED

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
                    _md_number(t["old"]),
                    new or _md_number(t["new"]),
                    _md_change(t["old"], t["new"]),
                )
            )
        if len(changes) > limit:
            rows.append((md_text(status), f"… and {len(changes) - limit} more", "", "", ""))
    if rows:
        lines += [*_md_table(("status", "test", "old", "new", "change"), rows, (2, 3, 4)), ""]
    return lines


# -- comparisons and history in the terminal ----------------------------------------------------


def _when(meta: Mapping[str, Any]) -> str:
    git = meta.get("git") or {}
    parts = []
    if git.get("commit"):
        parts.append(f"commit {git['commit'][:12]}{' (dirty)' if git.get('dirty') else ''}")
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
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [(*header, "test"), *rows]:
        cells = [cell.rjust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  " + "  ".join([*cells, row[-1]]))
    return lines


def render_comparison(
    comparison: Comparison,
    listed: int = 10,
    missing: str = "not run in this selection",
    list_regressed: bool = True,
) -> list[str]:
    """This run against a baseline: the suite loss, counts, then the tests that changed.
    ``missing`` says why baseline tests absent from this run were not compared; without
    ``list_regressed`` the regressed tests are left to the failure summary."""
    from .tracking import (
        CHANGED,
        DISAPPEARED,
        IMPROVED,
        NEW,
        NOT_RUN,
        REGRESSED,
        WORSE,
    )

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
    from .tracking import REGRESSED

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
        git = run.get("git") or {}
        commit = (git.get("commit") or "-")[:12] + ("+dirty" if git.get("dirty") else "")
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
                commit,
                str(run.get("count", len(run.get("tests", {})))),
                format_number(loss),
                change,
            )
        )
        previous = run
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {2, 3}
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    if note:
        lines.append(
            "* another set of soft tests than the run before: the change is not like for like"
        )
    return lines


def _short_time(text: Any) -> str:
    if not isinstance(text, str):
        return "-"
    return text.replace("T", " ")[:16] + (" UTC" if text.endswith("+00:00") else "")
