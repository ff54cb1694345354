"""Small text helpers every report shares: numbers and changes as text, text made safe to show
on one line, aligned columns, commits and paths as the reports show them.

Plain Python, no pytest, no numpy.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "align_columns",
    "commit_label",
    "format_change",
    "format_number",
    "is_dirty",
    "number_cell",
    "short_commit",
    "shown_path",
    "value_change",
    "visible",
]


def format_number(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.6g}"


def number_cell(x: Any) -> str:
    """A value of a JSON report as a table cell: numbers formatted, null as "-", anything else
    (the strings "inf", "nan") as it is."""
    return format_number(x) if isinstance(x, (int, float)) else ("-" if x is None else str(x))


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


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def value_change(old: Any, new: Any) -> str:
    """:func:`format_change` between two values of a JSON report ("-" unless both are finite
    numbers: the report writes inf and nan as strings)."""
    if _finite(old) and _finite(new):
        return format_change(float(old), float(new))
    return "-"


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


def align_columns(
    rows: Sequence[Sequence[str]],
    right: Collection[int],
    *,
    pad_last: bool = False,
    indent: str = "",
    strip: bool = True,
) -> list[str]:
    """``rows`` (the header first) as lines of columns two spaces apart, padded to the widest
    cell; the columns numbered in ``right`` are right-aligned. The last column is left as it is
    unless ``pad_last`` (it holds test ids, which would make every line as long as the longest);
    ``strip`` drops the spaces padding leaves at the end of a line."""
    count = len(rows[0])
    padded = count if pad_last else count - 1
    widths = [max(len(row[i]) for row in rows) for i in range(padded)]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row[:padded])
        ]
        line = indent + "  ".join([*cells, *row[padded:]])
        lines.append(line.rstrip() if strip else line)
    return lines


# -- run metadata as the reports show it --------------------------------------------------------


def short_commit(meta: Mapping[str, Any]) -> str | None:
    """The first 12 digits of the commit in a run's metadata (its ``git`` entry), or None."""
    commit = (meta.get("git") or {}).get("commit")
    return commit[:12] if commit else None


def is_dirty(meta: Mapping[str, Any]) -> bool:
    """Whether the run's work tree had uncommitted changes."""
    return bool((meta.get("git") or {}).get("dirty"))


def commit_label(meta: Mapping[str, Any]) -> str:
    """The commit of a run in one short cell: ``0123456789ab``, ``0123456789ab+dirty``, or -."""
    return (short_commit(meta) or "-") + ("+dirty" if is_dirty(meta) else "")


def shown_path(path: Path, root: Path | None, *, resolve: bool = True) -> Path:
    """``path`` relative to ``root`` when it lies below it (compared after resolving links and
    ``..`` when ``resolve``), else ``path`` as it is."""
    if root is not None:
        try:
            if resolve:
                return path.resolve().relative_to(root.resolve())
            return path.relative_to(root)
        except ValueError:
            pass
    return path
