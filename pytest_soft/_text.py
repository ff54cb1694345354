"""Small text helpers every report shares: numbers as text, and text made safe to show on one line.

Plain Python, no pytest, no numpy.
"""

from __future__ import annotations

__all__ = ["format_number", "visible"]


def format_number(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.6g}"


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
