"""Baselines, the run history and the JSON numbers in them: writing (atomically, or one appended
line at a time) and loading (checked, executing nothing). Every problem with a file is a
:class:`TrackingFileError` that names the file and says what to do.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .._files import _refuse_read_only, atomic_write_text
from .._numeric import exact_sum
from ..errors import ToleranceError, TrackingFileError
from ._compare import Comparison, Entry, Snapshot, tolerance_text

REPORT_FORMAT = "pytest-soft report"
BASELINE_FORMAT = "pytest-soft baseline"
HISTORY_FORMAT = "pytest-soft history"
VERSION = 1


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
    try:
        tolerance = tolerance_text(data.get("tolerance"))
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
        # What the run saw beyond its scores (reports since run.complete_files was added).
        meta["interrupted"] = run.get("interrupted") is True
        for key in ("complete_files", "not_run"):
            if isinstance(run.get(key), list) and all(isinstance(x, str) for x in run[key]):
                meta[key] = run[key]
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
        "loss": encode_number(exact_sum(scored)),
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
        try:
            import fcntl
        except ImportError:  # Windows: O_APPEND alone
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
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
