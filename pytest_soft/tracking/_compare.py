"""Regression tolerances and the comparison of two runs: which soft tests improved, got worse
within their tolerance, regressed, changed, appeared or disappeared, and whether the suite loss
regressed. Plain Python: no pytest, no numpy, no files.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .._numeric import exact_sum
from ..errors import ToleranceError

# Statuses of a soft test in a comparison, in the order they are shown.
REGRESSED = "regressed"  # worse by more than its tolerance (or gave no score this time)
WORSE = "worse within tolerance"
IMPROVED = "improved"
CHANGED = "changed"  # its source changed: not compared
NEW = "new"
DISAPPEARED = "disappeared"  # no longer collected: removed or renamed
NOT_RUN = "not run"  # not in this run's selection (deselected, other paths, skipped)
UNCHANGED = "unchanged"
STATUSES = (REGRESSED, WORSE, IMPROVED, CHANGED, NEW, DISAPPEARED, NOT_RUN, UNCHANGED)

#: Relative differences up to this are rounding noise (another BLAS, another summation order),
#: never a change.
NOISE = 1e-12


# -- tolerances ---------------------------------------------------------------------------------

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_PART = re.compile(rf"(?P<number>{_NUMBER})(?P<percent>%?)")
TOLERANCE_HELP = (
    "a relative tolerance such as 5%, an absolute one such as 0.01, or both as 5%,0.01 "
    "(then a score fails only when it is worse by more than both)"
)


@dataclass(frozen=True)
class Tolerance:
    """How much worse a score may get before it counts as a regression.

    ``relative`` is a fraction of the old score (0.05 for ``5%``); ``absolute`` is in score
    units. With both, a score regresses only when it is worse by more than both. With neither,
    any worsening beyond rounding noise is a regression.
    """

    relative: float | None = None
    absolute: float | None = None

    def allowance(self, old: float) -> float:
        """How much ``old`` may grow (always at least rounding noise)."""
        limits = []
        if self.relative is not None:
            limits.append(self.relative * abs(old))
        if self.absolute is not None:
            limits.append(self.absolute)
        return max([*limits, NOISE * abs(old)])

    def __str__(self) -> str:
        parts = []
        if self.relative is not None:
            parts.append(f"{_short(self.relative * 100)}%")
        if self.absolute is not None:
            parts.append(_short(self.absolute))
        return ",".join(parts) or "exact"


def _short(x: float) -> str:
    return f"{x:.12g}"


EXACT = Tolerance()


def parse_tolerance(text: str | float | int) -> Tolerance:
    """Parse ``5%``, ``0.01`` or ``5%,0.01`` (a number alone is absolute)."""
    if isinstance(text, bool):
        raise ToleranceError(f"a tolerance is {TOLERANCE_HELP}; got {text!r}.")
    if isinstance(text, (int, float)):
        value = float(text)
        if not math.isfinite(value) or value < 0:
            raise ToleranceError(f"a tolerance must be a finite number of 0 or more, got {text!r}.")
        return Tolerance(absolute=value)
    if not isinstance(text, str):
        raise ToleranceError(f"a tolerance is {TOLERANCE_HELP}; got {text!r}.")
    relative = absolute = None
    parts = text.split(",")
    if len(parts) > 2 or not text.strip():
        raise ToleranceError(f"a tolerance is {TOLERANCE_HELP}; got {text!r}.")
    for raw in parts:
        part = raw.strip()
        match = _PART.fullmatch(part)
        if match is None:
            hint = ""
            if part.startswith("-"):
                hint = " A tolerance cannot be negative."
            elif " " in part or "\t" in part:
                hint = f" Write it without spaces: {''.join(part.split())!r}."
            raise ToleranceError(
                f"a tolerance is {TOLERANCE_HELP}; got {text!r} ({part!r} is not a number "
                f"or a percentage).{hint}"
            )
        value = float(match["number"])
        if not math.isfinite(value):
            raise ToleranceError(f"a tolerance must be finite, got {text!r}.")
        if match["percent"]:
            if relative is not None:
                raise ToleranceError(f"tolerance {text!r} gives two percentages; give one.")
            relative = value / 100.0
        else:
            if absolute is not None:
                raise ToleranceError(f"tolerance {text!r} gives two absolute values; give one.")
            absolute = value
    return Tolerance(relative=relative, absolute=absolute)


def tolerance_text(value: Any) -> str | None:
    """A tolerance as written in a marker or a file, in its one canonical spelling (None stays
    None); a :class:`ToleranceError` when it does not follow the grammar."""
    return None if value is None else str(parse_tolerance(value))


def tolerance_type(text: str) -> Tolerance:
    """:func:`parse_tolerance` for argparse (``type=``): a bad tolerance is a usage error that
    says what a tolerance looks like."""
    try:
        return parse_tolerance(text)
    except ToleranceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


tolerance_type.__name__ = "tolerance"  # argparse names the type in its messages


# -- one run's scores ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One soft test in a snapshot. ``score`` is None when the test gave no score."""

    score: float | None
    weight: float = 1.0
    fingerprint: str | None = None
    tolerance: str | None = None  # the marker's tolerance, in the grammar of parse_tolerance

    @property
    def weighted(self) -> float | None:
        return None if self.score is None else self.weight * self.score


@dataclass
class Snapshot:
    """The scores of one run (or of a baseline): node id -> entry, plus the recorded suite loss
    and the run's metadata (``git``, ``time``)."""

    tests: dict[str, Entry]
    loss: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    @property
    def label(self) -> str:
        return self.path or "this run"


# -- comparison ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One soft test compared: its status, old and new scores, and the tolerance that applied."""

    nodeid: str
    status: str
    old: float | None
    new: float | None
    tolerance: Tolerance = EXACT

    @property
    def delta(self) -> float | None:
        if self.old is None or self.new is None:
            return None
        return self.new - self.old

    @property
    def relative(self) -> float | None:
        delta = self.delta
        if delta is None or self.old == 0:
            return None
        return delta / abs(self.old)


@dataclass
class Comparison:
    """Two runs compared. The suite loss is compared over the tests scored in both with the same
    source, so that a partial selection or a new test does not look like a change."""

    old: Snapshot
    new: Snapshot
    tolerance: Tolerance
    changes: list[Change]
    loss_old: float
    loss_new: float
    loss_tests: int
    loss_status: str

    def by_status(self, status: str) -> list[Change]:
        return [c for c in self.changes if c.status == status]

    @property
    def counts(self) -> dict[str, int]:
        return {s: n for s in STATUSES if (n := len(self.by_status(s)))}

    @property
    def regressions(self) -> list[Change]:
        return self.by_status(REGRESSED)

    @property
    def regressed(self) -> bool:
        """Whether the suite loss or any test is worse by more than its tolerance."""
        return self.loss_status == REGRESSED or bool(self.regressions)


def _judge(old: float | None, new: float | None, tolerance: Tolerance, extra: float = 0.0) -> str:
    if old is None:
        return UNCHANGED if new is None else IMPROVED
    if new is None or math.isnan(new):
        return REGRESSED
    if math.isnan(old):
        return IMPROVED
    delta = new - old
    if old == new or abs(delta) <= NOISE * max(abs(old), abs(new)):
        return UNCHANGED
    if delta < 0:
        return IMPROVED
    return WORSE if delta <= tolerance.allowance(old) + extra else REGRESSED


_ORDER = {status: index for index, status in enumerate(STATUSES)}


def compare(
    old: Snapshot,
    new: Snapshot,
    tolerance: Tolerance | None = None,
    disappeared: Iterable[str] = (),
) -> Comparison:
    """Compare ``new`` with ``old``. Tests in ``old`` but not in ``new`` are "not run" unless
    listed in ``disappeared``. A test's own tolerance (from its marker) overrides ``tolerance``;
    without either, any worsening beyond rounding noise is a regression. The suite loss is
    judged with ``tolerance``, widened by the worsening that tests' own tolerances allow (a
    test allowed 50% worse must not fail the suite loss for being 40% worse).
    """
    default = tolerance if tolerance is not None else EXACT
    gone = set(disappeared)
    changes = []
    before, after = [], []
    excused = 0.0
    for nodeid, entry in new.tests.items():
        previous = old.tests.get(nodeid)
        own = entry.tolerance or (previous.tolerance if previous is not None else None)
        applies = parse_tolerance(own) if own else default
        if previous is None:
            changes.append(Change(nodeid, NEW, None, entry.score, applies))
            continue
        if (
            previous.fingerprint is not None
            and entry.fingerprint is not None
            and previous.fingerprint != entry.fingerprint
        ):
            changes.append(Change(nodeid, CHANGED, previous.score, entry.score, applies))
            continue
        status = _judge(previous.score, entry.score, applies)
        changes.append(Change(nodeid, status, previous.score, entry.score, applies))
        if previous.weighted is not None and entry.weighted is not None:
            before.append(previous.weighted)
            after.append(entry.weighted)
            if own and status == WORSE:
                excused += max(entry.weighted - previous.weighted, 0.0)
    for nodeid, previous in old.tests.items():
        if nodeid not in new.tests:
            status = DISAPPEARED if nodeid in gone else NOT_RUN
            changes.append(Change(nodeid, status, previous.score, None))

    def order(c: Change) -> tuple[int, float, str]:
        size = 0.0
        if c.delta is not None and not math.isnan(c.delta):
            size = -abs(c.delta)
        elif c.status == REGRESSED:
            size = -math.inf  # no score at all: the worst regression
        return (_ORDER[c.status], size, c.nodeid)

    changes.sort(key=order)
    loss_old, loss_new = exact_sum(before), exact_sum(after)
    loss_status = _judge(loss_old, loss_new, default, excused) if before else UNCHANGED
    return Comparison(
        old=old,
        new=new,
        tolerance=default,
        changes=changes,
        loss_old=loss_old,
        loss_new=loss_new,
        loss_tests=len(before),
        loss_status=loss_status,
    )


def disappeared_between(old: Snapshot, new: Snapshot) -> set[str]:
    """The tests of ``old`` that ``new``'s JSON report shows to be gone: its run collected
    their file in full, and they were neither scored nor among the soft tests it collected
    without running (deselected, skipped). Without that record (a baseline, a report of an
    older pytest-soft, an interrupted run), none: every missing test counts as not run."""
    files = new.meta.get("complete_files")
    if not isinstance(files, list) or new.meta.get("interrupted"):
        return set()
    complete, not_run = set(files), set(new.meta.get("not_run") or ())
    return {
        nodeid
        for nodeid in old.tests
        if nodeid not in new.tests and nodeid not in not_run and nodeid.split("::")[0] in complete
    }
