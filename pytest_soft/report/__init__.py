"""Soft test results and how they are shown: a results model (:class:`SoftResult`), the
terminal sections, and the JSON, Markdown, HTML and benchmark file reports.

Plain Python: the pytest glue hands over :class:`SoftResult` records and prints the lines these
functions return. Each audience has its own private module; this package's names are the surface.
"""

from __future__ import annotations

from .._text import format_change, format_number, visible
from ._charts import bar_chart_svg, history_png, history_svg, line_chart_svg
from ._fit_section import render_fit, render_fit_check, render_parameters, render_uncertainty
from ._html import render_history_html, render_html
from ._json import build_report, render_benchmark, render_json
from ._markdown import md_text, render_markdown
from ._model import (
    ABOVE_THRESHOLD,
    ERROR,
    PASSED,
    SoftResult,
    baseline_sentences,
    suite_loss,
    to_snapshot,
    worst_first,
)
from ._terminal import (
    render_comparison,
    render_history,
    render_regressions,
    render_summary,
    render_table,
)

__all__ = [
    "ABOVE_THRESHOLD",
    "ERROR",
    "PASSED",
    "SoftResult",
    "bar_chart_svg",
    "baseline_sentences",
    "build_report",
    "format_change",
    "format_number",
    "history_png",
    "history_svg",
    "line_chart_svg",
    "md_text",
    "render_benchmark",
    "render_comparison",
    "render_fit",
    "render_fit_check",
    "render_history",
    "render_history_html",
    "render_html",
    "render_json",
    "render_markdown",
    "render_parameters",
    "render_regressions",
    "render_summary",
    "render_table",
    "render_uncertainty",
    "suite_loss",
    "to_snapshot",
    "visible",
    "worst_first",
]
