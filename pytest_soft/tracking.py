"""Scores over time: baselines, the run history, regression tolerances, and the comparison of
two runs that decides whether a run regressed. Plain Python (json, no pytest, no numpy).

Every file here is JSON with a ``format`` and a ``version``; loading one executes nothing, and
every problem with a file is a :class:`TrackingFileError` that names the file and says what to do.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import inspect
import json
import math
import os
import platform
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._files import _refuse_read_only, atomic_write_text
from .errors import ToleranceError, TrackingFileError

__all__ = [
    "BASELINE_FORMAT",
    "HISTORY_FORMAT",
    "REPORT_FORMAT",
    "Change",
    "Comparison",
    "Entry",
    "Snapshot",
    "Tolerance",
    "append_history",
    "baseline_document",
    "compare",
    "git_info",
    "history_record",
    "load_baseline",
    "load_history",
    "load_snapshot",
    "parse_tolerance",
    "run_metadata",
    "source_fingerprint",
    "updated_entries",
    "write_baseline",
]

REPORT_FORMAT = "pytest-soft report"
BASELINE_FORMAT = "pytest-soft baseline"
HISTORY_FORMAT = "pytest-soft history"
VERSION = 1

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


def source_fingerprint(function: Callable[..., Any]) -> str | None:
    """A short hash of a test function's source from its ``def`` line on, or None without source.

    Decorators are left out: adding a case to a ``parametrize`` list must not mark the other
    cases as changed, and a changed weight or tolerance is shown in the report anyway. Line
    endings and trailing spaces are normalised, so a CRLF checkout has the same fingerprint.
    """
    function = getattr(function, "__func__", function)
    try:
        lines, _ = inspect.getsourcelines(function)
    except (OSError, TypeError):
        return None
    lines = textwrap.dedent("".join(lines)).splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"(async\s+)?def\s", line)), 0)
    body = "\n".join(line.rstrip() for line in lines[start:])
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return f"sha256:{digest[:16]}"


# -- run metadata -------------------------------------------------------------------------------


def git_info(root: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The commit, branch and dirtiness of the git work tree at ``root``; nulls without git."""
    info: dict[str, Any] = {"commit": None, "branch": None, "dirty": None}
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            # A status for a report must not take git's index lock from the user's own git.
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return info
    if done.returncode != 0:
        return info
    dirty = False
    for line in done.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2].strip()
            info["commit"] = oid if re.fullmatch(r"[0-9a-f]{40,64}", oid) else None
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2].strip()
            info["branch"] = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    info["dirty"] = dirty
    return info


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def now_iso(timestamp: float | None = None) -> str:
    moment = _dt.datetime.fromtimestamp(
        timestamp if timestamp is not None else _dt.datetime.now().timestamp(), _dt.timezone.utc
    )
    return moment.isoformat(timespec="seconds")


def run_metadata(
    root: str | os.PathLike[str] | None, started: float | None = None
) -> dict[str, Any]:
    """When, on which commit and with which versions a run ran (no numpy import needed)."""
    from . import __version__

    return {
        "time": now_iso(started),
        "git": git_info(root),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            "pytest-soft": __version__,
            "pytest": _version("pytest"),
            "numpy": _version("numpy"),
            "autograd": _version("autograd"),
            "scipy": _version("scipy"),
        },
    }


# -- numbers in JSON ----------------------------------------------------------------------------


def encode_number(x: float | None) -> float | str | None:
    """A float for JSON: finite as is; inf and nan as the strings "inf", "-inf", "nan"."""
    if x is None:
        return None
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _decode_number(value: Any, where: str, path: str, *, optional: bool = True) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if value in ("inf", "-inf", "nan"):
        return float(value)
    raise TrackingFileError(
        f"{path}: {where} must be a number{' or null' if optional else ''}, got {value!r}. "
        "Fix the file, or write it again with pytest-soft."
    )


# -- loading ------------------------------------------------------------------------------------


def _read_json(path: str | os.PathLike[str], what: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TrackingFileError(f"{path}: no such {what} file. Check the path.") from None
    except IsADirectoryError:
        raise TrackingFileError(f"{path}: is a directory, not a {what} file.") from None
    except UnicodeDecodeError:
        raise TrackingFileError(
            f"{path}: not a {what} file (not UTF-8 text). Check the path."
        ) from None
    except OSError as exc:
        raise TrackingFileError(f"{path}: cannot read the {what} file: {exc.strerror}.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = "Restore it from version control, or write it again with pytest-soft."
        if exc.msg == "Extra data" and HISTORY_FORMAT in text.partition("\n")[0]:
            hint = "It is a history file: `python -m pytest_soft history` reads those."
        raise TrackingFileError(
            f"{path}: not a {what} file: invalid JSON at line {exc.lineno} column {exc.colno} "
            f"({exc.msg}). {hint}"
        ) from None
    except (ValueError, RecursionError) as exc:  # nesting too deep, an integer too long
        raise TrackingFileError(
            f"{path}: not a {what} file: {exc}. Restore it from version control, or write it "
            "again with pytest-soft."
        ) from None


def _check_format(document: Any, path: str, formats: tuple[str, ...], what: str) -> str:
    if not isinstance(document, dict) or "format" not in document:
        raise TrackingFileError(
            f'{path}: not a {what} file (a JSON object with "format": '
            f"{' or '.join(map(repr, formats))} was expected). Check the path."
        )
    kind = document["format"]
    if kind not in formats:
        raise TrackingFileError(
            f"{path}: this is a {kind!r} file, but a {' or '.join(map(repr, formats))} file was "
            "expected. Check the path."
        )
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise TrackingFileError(f'{path}: the {what} file has no valid "version" number.')
    if version > VERSION:
        raise TrackingFileError(
            f"{path}: {what} format version {version} is newer than this pytest-soft reads "
            f"(version {VERSION}). Upgrade pytest-soft."
        )
    if version < 1:
        raise TrackingFileError(f"{path}: unknown {what} format version {version}.")
    return kind


def _entry(nodeid: str, data: Any, path: str) -> Entry:
    where = f"soft test {nodeid!r}"
    if not isinstance(data, dict):
        raise TrackingFileError(f"{path}: {where}: expected an object, got {data!r}.")
    score = _decode_number(data.get("score"), f"{where}: score", path)
    weight = _decode_number(data.get("weight", 1.0), f"{where}: weight", path, optional=False)
    fingerprint = data.get("fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise TrackingFileError(f"{path}: {where}: fingerprint must be a string or null.")
    tolerance = data.get("tolerance")
    if tolerance is not None:
        try:
            tolerance = str(parse_tolerance(tolerance))
        except ToleranceError as exc:
            raise TrackingFileError(f"{path}: {where}: {exc}") from None
    assert weight is not None
    return Entry(score=score, weight=weight, fingerprint=fingerprint, tolerance=tolerance)


def load_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """Load the scores of a JSON report (``--soft-json``) or a baseline (``--soft-baseline``)."""
    name = os.fspath(path)
    document = _read_json(path, "pytest-soft report or baseline")
    kind = _check_format(
        document, name, (REPORT_FORMAT, BASELINE_FORMAT), "pytest-soft report or baseline"
    )
    raw_tests = document.get("tests")
    tests: dict[str, Entry] = {}
    if kind == BASELINE_FORMAT:
        if not isinstance(raw_tests, dict):
            raise TrackingFileError(
                f'{name}: "tests" must be an object of node id -> entry. Write the baseline '
                "again with --soft-update-baseline."
            )
        for nodeid, data in raw_tests.items():
            tests[nodeid] = _entry(nodeid, data, name)
        meta = {"time": document.get("time"), "git": document.get("git")}
    else:
        if not isinstance(raw_tests, list):
            raise TrackingFileError(f'{name}: "tests" must be a list of soft tests.')
        for data in raw_tests:
            nodeid = data.get("nodeid") if isinstance(data, dict) else None
            if not isinstance(nodeid, str):
                raise TrackingFileError(f'{name}: a soft test without a "nodeid": {data!r}.')
            tests[nodeid] = _entry(nodeid, data, name)
        run = document.get("run") if isinstance(document.get("run"), dict) else {}
        meta = {"time": run.get("time"), "git": run.get("git")}
    loss = _decode_number(document.get("loss"), 'the suite loss ("loss")', name)
    return Snapshot(tests=tests, loss=loss, meta=meta, path=name)


def load_baseline(path: str | os.PathLike[str]) -> Snapshot | None:
    """The baseline at ``path``, or None when there is no such file (not an error)."""
    if not os.path.lexists(path):
        return None
    return load_snapshot(path)


# -- writing baselines --------------------------------------------------------------------------


def updated_entries(
    old: Snapshot | None, new: Snapshot, disappeared: Iterable[str] = ()
) -> dict[str, Entry]:
    """The baseline after this run: entries of the tests that gave a score now replace theirs;
    tests not run (or without a score now) keep their old entry; disappeared tests are dropped.
    """
    entries = dict(old.tests) if old is not None else {}
    for nodeid in disappeared:
        entries.pop(nodeid, None)
    for nodeid, entry in new.tests.items():
        if entry.score is not None:
            entries[nodeid] = entry
    return entries


def baseline_document(entries: Mapping[str, Entry], meta: Mapping[str, Any]) -> dict[str, Any]:
    scored = [e.weighted for e in entries.values() if e.weighted is not None]
    tests = {}
    for nodeid in sorted(entries):
        entry = entries[nodeid]
        item: dict[str, Any] = {"score": encode_number(entry.score), "weight": entry.weight}
        if entry.fingerprint is not None:
            item["fingerprint"] = entry.fingerprint
        if entry.tolerance is not None:
            item["tolerance"] = entry.tolerance
        tests[nodeid] = item
    return {
        "format": BASELINE_FORMAT,
        "version": VERSION,
        "time": meta.get("time"),
        "git": meta.get("git"),
        "loss": encode_number(_fsum(scored)),
        "tests": tests,
    }


def write_baseline(
    path: str | os.PathLike[str], entries: Mapping[str, Entry], meta: Mapping[str, Any]
) -> None:
    """Write a baseline atomically (sorted keys, one test per line group: diffs stay small)."""
    text = json.dumps(baseline_document(entries, meta), indent=2, ensure_ascii=False) + "\n"
    _write(path, text, "baseline")


def _write(path: str | os.PathLike[str], text: str, what: str) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    except OSError as exc:
        raise TrackingFileError(
            f"{path}: cannot write the {what}: {exc.strerror or exc}. Check the directory "
            "exists and is writable."
        ) from None


def _fsum(values: Iterable[float]) -> float:
    values = list(values)
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):
        return sum(values)


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
        if delta is None or self.old is None or self.old == 0:
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
    loss_old, loss_new = _fsum(before), _fsum(after)
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


def comparison_document(comparison: Comparison) -> dict[str, Any]:
    """The comparison as it appears in the JSON report's ``baseline`` section."""
    return {
        "path": comparison.old.path,
        "tolerance": str(comparison.tolerance),
        "regressed": comparison.regressed,
        "loss": {
            "old": encode_number(comparison.loss_old),
            "new": encode_number(comparison.loss_new),
            "tests": comparison.loss_tests,
            "status": comparison.loss_status,
        },
        "counts": comparison.counts,
        "tests": [
            {
                "nodeid": c.nodeid,
                "status": c.status,
                "old": encode_number(c.old),
                "new": encode_number(c.new),
                "tolerance": str(c.tolerance),
            }
            for c in comparison.changes
        ],
    }


# -- history ------------------------------------------------------------------------------------


def history_record(snapshot: Snapshot, meta: Mapping[str, Any], fit: Any = None) -> dict[str, Any]:
    """One line of the history file: when, which commit, the suite loss, every test's score."""
    record: dict[str, Any] = {
        "format": HISTORY_FORMAT,
        "version": VERSION,
        "time": meta.get("time"),
        "git": meta.get("git"),
        "versions": meta.get("versions"),
        "loss": encode_number(snapshot.loss),
        "count": len(snapshot.tests),
        "tests": {nodeid: encode_number(e.score) for nodeid, e in sorted(snapshot.tests.items())},
    }
    if fit is not None:
        record["fit"] = {
            "method": fit.method,
            "loss_before": encode_number(fit.loss_before),
            "loss_after": encode_number(fit.loss_after),
            "improved": bool(fit.improved),
        }
    return record


def append_history(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Append one JSON line to the history file, safely with other writers.

    The line goes in one ``write()`` on a descriptor opened with O_APPEND, so concurrent runs
    (CI jobs sharing a cache) never interleave inside a line; an exclusive ``flock`` on the file
    itself (where fcntl exists) also covers file systems where O_APPEND is not atomic, without
    leaving a separate lock file behind.
    """
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    data = (line + "\n").encode("utf-8")
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _refuse_read_only(Path(path))
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as exc:
        raise TrackingFileError(
            f"{path}: cannot open the history file for appending: {exc.strerror or exc}."
        ) from None
    try:
        if sys.platform != "win32":  # Windows: O_APPEND alone
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a hand-edited file without a final newline: keep lines apart
        try:
            written = os.write(fd, data)
            while written < len(data):  # only on exotic file systems
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except BaseException:
            # A full disk, or an interrupt, in the middle: never leave half a line behind.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    except OSError as exc:
        raise TrackingFileError(
            f"{path}: cannot append to the history file: {exc.strerror or exc}."
        ) from None
    finally:
        os.close(fd)  # closing releases the lock


def load_history(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every run in a history file, oldest first, each checked (numbers decoded to floats)."""
    name = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise TrackingFileError(
            f"{name}: no such history file. A run with --soft-history {name} starts it."
        ) from None
    except OSError as exc:
        raise TrackingFileError(
            f"{name}: cannot read the history file: {exc.strerror or exc}."
        ) from None
    runs = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        where = f"{name}, line {number}"
        try:
            record = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):  # not UTF-8, not JSON, too deep, too long a number
            raise TrackingFileError(
                f"{where}: not a JSON line. Delete or fix that line (a history file has one "
                "JSON object per line)."
            ) from None
        _check_format(record, where, (HISTORY_FORMAT,), "pytest-soft history")
        record["loss"] = _decode_number(record.get("loss"), "the suite loss", where)
        tests = record.get("tests", {})
        if not isinstance(tests, dict):
            raise TrackingFileError(f'{where}: "tests" must be an object. Delete that line.')
        record["tests"] = {k: _decode_number(v, f"test {k!r}", where) for k, v in tests.items()}
        if not isinstance(record.get("git"), dict):
            record["git"] = {"commit": None, "branch": None, "dirty": None}
        runs.append(record)
    return runs
