"""The charts of the reports: horizontal bars and a line, drawn as plain SVG so they need no
plotting library; and the history as a PNG, drawn with matplotlib (the ``pytest-soft[plot]``
extra) for ``python -m pytest_soft history --png``.

Every label is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .._text import format_number, visible

WIDTH = 760


def _e(text: Any) -> str:
    return escape(visible(str(text)), quote=True)


def finite(x: Any) -> bool:
    """Whether ``x`` (a value of a JSON report) is a finite number."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# -- charts -------------------------------------------------------------------------------------


def _ellipsis(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def bar_chart_svg(items: Sequence[tuple[str, float]], title: str, unit: str = "") -> str:
    """Horizontal bars, one per (label, value), largest first as given. Labels are shortened from
    the left (the end of a test id is the telling part); the full label is the bar's tooltip."""
    items = [(label, value) for label, value in items if finite(value)]
    if not items:
        return ""
    row, label_width, top = 22, 330, 28
    height = top + row * len(items) + 24
    low = min(0.0, *(v for _, v in items))
    high = max(0.0, *(v for _, v in items))
    span = (high - low) or 1.0
    plot = WIDTH - label_width - 90

    def x(value: float) -> float:
        return label_width + (value - low) / span * plot

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" class="chart bars">',
        f"<title>{_e(title)}</title>",
        f'<text x="4" y="16" class="chart-title">{_e(title)}</text>',
        f'<line x1="{x(0):.1f}" y1="{top - 4}" x2="{x(0):.1f}" y2="{height - 20}" class="axis"/>',
    ]
    for index, (label, value) in enumerate(items):
        y = top + index * row
        x0, x1 = sorted((x(0.0), x(value)))
        parts.append(
            f"<g><title>{_e(label)}: {format_number(value)}{_e(unit)}</title>"
            f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end" class="label">'
            f"{_e(_ellipsis(visible(label), 52))}</text>"
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 0.5):.1f}" height="{row - 6}" '
            f'class="bar"/>'
            f'<text x="{x1 + 4:.1f}" y="{y + 14}" class="value">{format_number(value)}</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def line_chart_svg(
    values: Sequence[float | None],
    title: str,
    x_label: str = "",
    y_label: str = "",
    point_labels: Sequence[str] | None = None,
    log: bool | None = None,
) -> str:
    """A line through ``values`` (x = 0, 1, 2, ...). A logarithmic y axis when ``log`` is True,
    or by default when every value is positive and they span more than two decades. Points that
    are not finite numbers are left out. ``point_labels`` become the points' tooltips."""
    points = [(i, float(v)) for i, v in enumerate(values) if finite(v)]
    if not points:
        return ""
    ys = [y for _, y in points]
    if log is None:
        log = min(ys) > 0 and max(ys) / min(ys) > 100
    if log and min(ys) <= 0:
        log = False
    height, left, right, top, bottom = 300, 78, 18, 30, 46
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    f = math.log10 if log else (lambda v: v)
    lo, hi = f(min(ys)), f(max(ys))
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.1 or 1.0), hi + (abs(hi) * 0.1 or 1.0)
    n = max(len(values) - 1, 1)

    def px(i: float) -> float:
        return left + i / n * plot_w

    def py(v: float) -> float:
        return top + (1 - (f(v) - lo) / (hi - lo)) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" class="chart line">',
        f"<title>{_e(title)}</title>",
        f'<text x="4" y="16" class="chart-title">{_e(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>',
    ]
    if log:
        ticks = [10.0**k for k in range(math.floor(lo), math.ceil(hi) + 1)]
        step = max(1, len(ticks) // 6)
        ticks = [t for t in ticks[::step] if lo - 1e-9 <= math.log10(t) <= hi + 1e-9]
    else:
        ticks = _nice_ticks(lo, hi)
    for tick in ticks:
        y = py(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{format_number(tick)}</text>"
        )
    for i in sorted({0, n // 2, n} if len(values) > 1 else {0}):
        parts.append(
            f'<text x="{px(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="tick">'
            f"{i + 1 if point_labels is not None else i}</text>"
        )
    if x_label:
        parts.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
            f'class="axis-label">{_e(x_label)}</text>'
        )
    if y_label:
        parts.append(
            f'<text x="12" y="{top + plot_h / 2:.1f}" text-anchor="middle" class="axis-label" '
            f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">'
            f"{_e(y_label + (' (log scale)' if log else ''))}</text>"
        )
    path = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in points)
    parts.append(f'<polyline points="{path}" class="series"/>')
    if len(points) <= 80:
        for i, v in points:
            tip = f"{point_labels[i]}: " if point_labels is not None else f"{x_label} {i}: "
            parts.append(
                f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="3" class="point">'
                f"<title>{_e(tip)}{format_number(v)}</title></circle>"
            )
    parts.append("</svg>")
    return "\n".join(parts)


def history_svg(history: Sequence[Mapping[str, Any]], point_labels: Sequence[str]) -> str:
    """The suite loss over the runs of a history file, one point per run (empty without any
    finite loss)."""
    return line_chart_svg(
        [run.get("loss") for run in history],
        f"suite loss over the last {len(history)} runs",
        "run",
        "suite loss",
        point_labels=point_labels,
    )


def history_png(history: Sequence[Mapping[str, Any]]) -> bytes:
    """The suite loss over the runs as a PNG, drawn with matplotlib (the ``pytest-soft[plot]``
    extra). Raises ImportError without matplotlib."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    xs = [i + 1 for i, run in enumerate(history) if finite(run.get("loss"))]
    ys = [float(run["loss"]) for run in history if finite(run.get("loss"))]
    figure, axes = plt.subplots(figsize=(8, 3.5), dpi=100)
    try:
        axes.plot(xs, ys, marker="o" if len(xs) <= 80 else None)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ys and min(ys) > 0 and max(ys) / min(ys) > 100:
            axes.set_yscale("log")
        axes.set_xlabel("run")
        axes.set_ylabel("suite loss")
        axes.set_title(f"suite loss over the last {len(history)} runs")
        axes.grid(True, alpha=0.3)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return buffer.getvalue()
