"""The JSON report of a run (format "pytest-soft report", documented in the README) and the
github-action-benchmark file made from it. The Markdown and HTML renderers read this same
document, so a saved report can be rendered again later without the run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._text import format_number, shown_path
from ._model import ABOVE_THRESHOLD, ERROR, PASSED, SoftResult, suite_loss, worst_first

if TYPE_CHECKING:
    from ..fit import FitResult
    from ..tracking import Comparison


def _value(value: Any) -> Any:
    """A parameter value for JSON: a float, or nested lists for an array."""
    from ..tracking import encode_number

    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_value(v) for v in value]
    return encode_number(float(value))


def _or_null(value: Any) -> Any:
    """A standard error or correlation for JSON: a float, null where there is none, or nested
    lists of those for an array."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_or_null(v) for v in value]
    return float(value) if value is not None and math.isfinite(float(value)) else None


def _uncertainty_document(fit: FitResult) -> dict[str, Any]:
    """The fit's fields on how well the parameters are determined (all of them: no summary)."""
    u = fit.uncertainty
    if u is None:
        return {"correlation": None, "undetermined": [], "uncertainty_note": None}
    correlation = None
    if u.correlation is not None:
        correlation = {"names": list(u.names), "matrix": _or_null(u.correlation)}
    return {
        "correlation": correlation,
        "undetermined": [
            {"names": list(g.names), "description": g.describe()} for g in u.undetermined
        ],
        "uncertainty_note": u.note or None,
    }


def _fit_document(
    fit: FitResult, written: Sequence[Path], dry_run: bool, root: Path | None
) -> dict[str, Any]:
    from ..tracking import encode_number

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
            {
                "name": p.full_name,
                "before": _value(p.before),
                "after": _value(p.after),
                "stderr": _or_null(
                    fit.uncertainty.stderr.get(p.full_name) if fit.uncertainty else None
                ),
            }
            for p in fit.parameters
        ],
        **_uncertainty_document(fit),
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
        "starts_left": fit.starts_left,
        "stop_reason": fit.stop_reason,
        "converged": bool(fit.converged),
        "seconds": fit.seconds,
        "backend": fit.backend,
        "compiled": fit.compiled,
        "compile_seconds": fit.compile_seconds,
        "float64": bool(fit.float64),
        "workers": None
        if fit.workers is None
        else {
            "cases": dict(fit.workers.shards),
            "requests": fit.workers.requests,
            "rounds": fit.workers.rounds,
            "wait_seconds": fit.workers.wait_seconds,
            "busy_seconds": fit.workers.busy_seconds,
        },
        "warnings": list(fit.warnings),
        "notes": list(fit.notes),
        "dry_run": dry_run,
        "written": [shown_path(p, root).as_posix() for p in written],
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
    (``duration``, ``args``, ``workers``, ``interrupted``).
    """
    from ..tracking import REPORT_FORMAT, VERSION, comparison_document, encode_number

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
