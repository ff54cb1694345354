"""Scores over time: regression tolerances and the comparison of two runs that decides whether
a run regressed; baselines and the run history on disk; the metadata of a run.
Plain Python (json, no pytest, no numpy).

Every file here is JSON with a ``format`` and a ``version``; loading one executes nothing, and
every problem with a file is a :class:`~pytest_soft.errors.TrackingFileError` that names the
file and says what to do.
"""

from __future__ import annotations

from ._compare import (
    CHANGED,
    DISAPPEARED,
    EXACT,
    IMPROVED,
    NEW,
    NOISE,
    NOT_RUN,
    REGRESSED,
    STATUSES,
    TOLERANCE_HELP,
    UNCHANGED,
    WORSE,
    Change,
    Comparison,
    Entry,
    Snapshot,
    Tolerance,
    compare,
    disappeared_between,
    parse_tolerance,
    tolerance_text,
    tolerance_type,
)
from ._metadata import git_info, now_iso, run_metadata, source_fingerprint
from ._storage import (
    BASELINE_FORMAT,
    HISTORY_FORMAT,
    REPORT_FORMAT,
    VERSION,
    append_history,
    baseline_document,
    comparison_document,
    encode_number,
    history_record,
    load_baseline,
    load_history,
    load_snapshot,
    updated_entries,
    write_baseline,
)

__all__ = [
    "BASELINE_FORMAT",
    "CHANGED",
    "DISAPPEARED",
    "EXACT",
    "HISTORY_FORMAT",
    "IMPROVED",
    "NEW",
    "NOISE",
    "NOT_RUN",
    "REGRESSED",
    "REPORT_FORMAT",
    "STATUSES",
    "TOLERANCE_HELP",
    "UNCHANGED",
    "VERSION",
    "WORSE",
    "Change",
    "Comparison",
    "Entry",
    "Snapshot",
    "Tolerance",
    "append_history",
    "baseline_document",
    "compare",
    "comparison_document",
    "disappeared_between",
    "encode_number",
    "git_info",
    "history_record",
    "load_baseline",
    "load_history",
    "load_snapshot",
    "now_iso",
    "parse_tolerance",
    "run_metadata",
    "source_fingerprint",
    "tolerance_text",
    "tolerance_type",
    "updated_entries",
    "write_baseline",
]
