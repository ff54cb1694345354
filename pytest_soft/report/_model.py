"""The results model the reports are made from: one :class:`SoftResult` per soft test, the suite
loss, the order reports list tests in, and the sentences every report uses for a baseline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._numeric import exact_sum
from .._text import number_cell, value_change

if TYPE_CHECKING:
    from ..tracking import Snapshot

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
    return exact_sum([r.weighted for r in results if r.weighted is not None])


def worst_first(results: Iterable[SoftResult]) -> list[SoftResult]:
    """Results without a score first (they are the worst), then by weighted score, largest first."""
    return sorted(
        results,
        key=lambda r: (r.score is not None, -(r.weighted or 0.0), r.nodeid),
    )


def to_snapshot(results: Iterable[SoftResult]) -> Snapshot:
    """This run's scores in the form the tracking module compares and stores."""
    from ..tracking import Entry, Snapshot

    results = list(results)
    tests = {r.nodeid: Entry(r.score, r.weight, r.fingerprint, r.tolerance) for r in results}
    return Snapshot(tests=tests, loss=suite_loss(results))


def flat_values(value: Any) -> list[Any]:
    """The numbers of a parameter value in a JSON report (a number, or nested lists), flat."""
    if isinstance(value, list):
        return [x for v in value for x in flat_values(v)]
    return [value]


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
        f"suite loss {number_cell(old)} → {number_cell(new)} ({value_change(old, new)}) over the "
        f"{loss['tests']} soft tests scored in both runs: {loss.get('status')}"
    )
    return verdict, compared


def stderr_summary(stderr: Any) -> str:
    """A standard error from the JSON report: the number, the median and largest of an array's,
    or "-" where there is none."""
    if isinstance(stderr, list):
        known = sorted(v for v in flat_values(stderr) if v is not None)
        if not known:
            return "-"
        middle = len(known) // 2
        median = known[middle] if len(known) % 2 else (known[middle - 1] + known[middle]) / 2
        return f"median {median:.3g}, max {known[-1]:.3g}"
    return "-" if stderr is None else f"{stderr:.3g}"


def uncertainty_sentences(fit: Mapping[str, Any], listed: int = 10) -> list[str]:
    """From the JSON report's fit: why there are no standard errors, the strongly correlated
    pairs, the undetermined parameters (plain text; each renderer escapes it)."""
    from ..fit._uncertainty import CORRELATION_SHOWN

    out = []
    if fit.get("uncertainty_note"):
        out.append(str(fit["uncertainty_note"]))
    correlation = fit.get("correlation") or {}
    names, matrix = correlation.get("names", []), correlation.get("matrix", [])
    pairs = sorted(
        (
            (-abs(matrix[i][j]), names[i], names[j], matrix[i][j])
            for i in range(len(names))
            for j in range(i + 1, len(names))
            if matrix[i][j] is not None and abs(matrix[i][j]) > CORRELATION_SHOWN
        ),
    )
    if pairs:
        shown = ", ".join(f"{a} ~ {b} {c:+.3f}" for _, a, b, c in pairs[:listed])
        more = f" and {len(pairs) - listed} more" if len(pairs) > listed else ""
        out.append(f"strongly correlated (|correlation| > {CORRELATION_SHOWN}): {shown}{more}")
    for group in fit.get("undetermined") or []:
        out.append(f"not determined: {group['description']}")
    return out
